/**
 * The bearer-token hooks of platform/http/auth.ts, the same scheme as the profiles API's: every
 * control needs `Authorization: Bearer <token>`; a server without a token refuses controls.
 * Reads are open unless `protectReads` is set.
 *
 * The page keeps the token in sessionStorage and sends it in that header: the browser never
 * attaches it by itself, so another site cannot make a logged-in browser send a control (no
 * CSRF), and without CORS headers it cannot read the API either.
 */
import { bearerAuth, type BearerHook, type TokenAuth } from '../../platform/http/auth';

export type AuthConfig = TokenAuth;

const UNCONFIGURED = 'this server has no token configured (API_TOKEN), so it accepts no controls';

/** For controls: always needs the token. */
export function requireToken(auth: AuthConfig): BearerHook {
  return bearerAuth(auth, UNCONFIGURED).changes;
}

/** For reads: open unless the server protects reads. */
export function readAccess(auth: AuthConfig): BearerHook {
  return bearerAuth(auth, UNCONFIGURED).reads;
}
