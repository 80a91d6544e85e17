/**
 * Bearer-token checks as route hooks (the scheme of platform/http/auth.ts): a server without a
 * token refuses mutations instead of allowing them.
 */
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import { checkBearer } from '../../../platform/http/auth';
import type { AuthConfig } from '../config';

export { tokenMatches } from '../../../platform/http/auth';

function check(auth: AuthConfig, request: FastifyRequest, reply: FastifyReply): void {
  checkBearer(
    auth.token,
    request,
    reply,
    'this server has no token configured (PROFILES_API_TOKEN), so it accepts no changes',
  );
}

/** For endpoints that change data. */
export function requireWriteToken(auth: AuthConfig): preHandlerAsyncHookHandler {
  return async (request, reply) => check(auth, request, reply);
}

/** For reads: open unless the server protects reads. */
export function requireReadToken(auth: AuthConfig): preHandlerAsyncHookHandler {
  return async (request, reply) => {
    if (auth.protectReads) check(auth, request, reply);
  };
}
