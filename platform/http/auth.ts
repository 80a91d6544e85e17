/**
 * The bearer-token scheme of our HTTP APIs (profiles API, dashboard, loadgen service, the
 * built-in proxy's admin endpoint): `Authorization: Bearer <token>`, compared in constant time
 * (both sides hashed to one length first). A server without a token refuses what needs one
 * rather than allowing it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from './errors';

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export function tokenMatches(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

export function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  return /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
}

/**
 * Throws 403 when the server has no token (`unconfigured` says which setting is missing), 401
 * (with WWW-Authenticate) when the request's token is missing or wrong.
 */
export function checkBearer(
  expected: string | undefined,
  request: FastifyRequest,
  reply: FastifyReply,
  unconfigured: string,
): void {
  if (expected === undefined) throw new HttpError(403, 'forbidden', unconfigured);
  const presented = bearerOf(request);
  if (presented !== undefined && tokenMatches(presented, expected)) return;
  void reply.header('www-authenticate', 'Bearer');
  const rule = presented === undefined ? 'must be "Bearer <token>"' : 'the token is not valid';
  throw new HttpError(401, 'unauthorized', `authorization: ${rule}`, [{ field: 'authorization', rule }]);
}

/** A route hook (onRequest or preHandler) that lets only requests with the token through. */
export type BearerHook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

/** `unconfigured`: what a server without a token answers (403), naming the setting it lacks. */
export function requireBearer(expected: string | undefined, unconfigured: string): BearerHook {
  return async (request, reply) => checkBearer(expected, request, reply, unconfigured);
}

export interface TokenAuth {
  /** Absent: whatever needs the token is refused (403), never open. */
  token?: string;
  /** Reads need the token too. */
  protectReads: boolean;
}

/** The hooks of a service whose changes need the token and whose reads may: `{ changes, reads }`. */
export function bearerAuth(
  auth: TokenAuth,
  unconfigured: string,
): { changes: BearerHook; reads: BearerHook } {
  const changes = requireBearer(auth.token, unconfigured);
  return { changes, reads: auth.protectReads ? changes : async () => undefined };
}
