/**
 * The API's bearer-token scheme (the same as the profiles API's): `Authorization: Bearer <token>`
 * on every control, compared in constant time (both sides hashed to one length first). A server
 * without a token refuses controls rather than allowing them. Reads are open unless
 * `protectReads` is set.
 *
 * The page keeps the token in sessionStorage and sends it in the header: the browser never
 * attaches it by itself, so another site cannot make a logged-in browser send a control (no
 * CSRF), and without CORS headers it cannot read the API either.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import { HttpError } from './errors';

export interface AuthConfig {
  token?: string;
  protectReads: boolean;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export function tokenMatches(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  return /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
}

function check(auth: AuthConfig, request: FastifyRequest, reply: FastifyReply): void {
  if (auth.token === undefined)
    throw new HttpError(
      403,
      'forbidden',
      'this server has no token configured (API_TOKEN), so it accepts no controls',
    );
  const presented = bearerOf(request);
  if (presented === undefined || !tokenMatches(presented, auth.token)) {
    void reply.header('www-authenticate', 'Bearer realm="canary"');
    const rule = presented === undefined ? 'must be "Bearer <token>"' : 'the token is not valid';
    throw new HttpError(401, 'unauthorized', `authorization: ${rule}`, [{ field: 'authorization', rule }]);
  }
}

/** For controls: always needs the token. */
export function requireToken(auth: AuthConfig): preHandlerAsyncHookHandler {
  return async (request, reply) => check(auth, request, reply);
}

/** For reads: open unless the server protects reads. */
export function readAccess(auth: AuthConfig): preHandlerAsyncHookHandler {
  return async (request, reply) => {
    if (auth.protectReads) check(auth, request, reply);
  };
}
