/**
 * The bearer-token hooks of platform/http/auth.ts for this API: a server without a token
 * refuses mutations instead of allowing them; reads are open unless it protects them.
 */
import { bearerAuth, type BearerHook } from '../../../platform/http/auth';
import type { AuthConfig } from '../config';

const UNCONFIGURED = 'this server has no token configured (PROFILES_API_TOKEN), so it accepts no changes';

/** For endpoints that change data. */
export function requireWriteToken(auth: AuthConfig): BearerHook {
  return bearerAuth(auth, UNCONFIGURED).changes;
}

/** For reads: open unless the server protects reads. */
export function requireReadToken(auth: AuthConfig): BearerHook {
  return bearerAuth(auth, UNCONFIGURED).reads;
}
