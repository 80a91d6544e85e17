/**
 * The API's bearer-token scheme, the same as the profiles API's (platform/http/auth.ts): every
 * control needs `Authorization: Bearer <token>`; a server without a token refuses controls.
 * Reads are open unless `protectReads` is set.
 *
 * The page keeps the token in sessionStorage and sends it in that header: the browser never
 * attaches it by itself, so another site cannot make a logged-in browser send a control (no
 * CSRF), and without CORS headers it cannot read the API either.
 */
import type { preHandlerAsyncHookHandler } from 'fastify';
import { checkBearer } from '../../platform/http/auth';

export interface AuthConfig {
  token?: string;
  protectReads: boolean;
}

const UNCONFIGURED = 'this server has no token configured (API_TOKEN), so it accepts no controls';

/** For controls: always needs the token. */
export function requireToken(auth: AuthConfig): preHandlerAsyncHookHandler {
  return async (request, reply) => checkBearer(auth.token, request, reply, UNCONFIGURED);
}

/** For reads: open unless the server protects reads. */
export function readAccess(auth: AuthConfig): preHandlerAsyncHookHandler {
  return async (request, reply) => {
    if (auth.protectReads) checkBearer(auth.token, request, reply, UNCONFIGURED);
  };
}
