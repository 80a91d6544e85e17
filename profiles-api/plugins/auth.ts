/**
 * Bearer-token checks as route hooks. The comparison is constant-time (both sides hashed to the
 * same length first), and a server without a token refuses mutations instead of allowing them.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { AuthConfig } from '../config';
import { HttpError } from './errors';

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export function tokenMatches(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

function check(auth: AuthConfig, request: FastifyRequest): void {
  if (auth.token === undefined)
    throw new HttpError(
      403,
      'forbidden',
      'this server has no token configured (PROFILES_API_TOKEN), so it accepts no changes',
    );
  const presented = bearerOf(request);
  if (presented === undefined)
    throw new HttpError(401, 'unauthorized', 'authorization: must be "Bearer <token>"', [
      { field: 'authorization', rule: 'must be "Bearer <token>"' },
    ]);
  if (!tokenMatches(presented, auth.token))
    throw new HttpError(401, 'unauthorized', 'authorization: the token is not valid', [
      { field: 'authorization', rule: 'the token is not valid' },
    ]);
}

/** For endpoints that change data. */
export function requireWriteToken(auth: AuthConfig): preHandlerAsyncHookHandler {
  return async (request) => check(auth, request);
}

/** For reads: open unless the server protects reads. */
export function requireReadToken(auth: AuthConfig): preHandlerAsyncHookHandler {
  return async (request) => {
    if (auth.protectReads) check(auth, request);
  };
}
