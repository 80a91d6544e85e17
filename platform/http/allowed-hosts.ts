/**
 * DNS rebinding: a web page whose name an attacker re-points at 127.0.0.1 can make a browser
 * send requests to a loopback service, with the attacker's name in the `Host` header. Services
 * that act on requests therefore answer only to loopback names and the names they are configured
 * with.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from './errors';

/** 127.0.0.0/8, ::1 (also bracketed or IPv4-mapped) and localhost: reachable from this host only. */
export function isLoopbackHost(host: string): boolean {
  const name = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  if (name === 'localhost' || name === '::1' || name === '0:0:0:0:0:0:0:1') return true;
  return /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/** The name of a `Host` header, without port, brackets or a trailing dot, lower case. */
export function hostNameOf(header: string): string {
  const trimmed = header.trim().toLowerCase();
  const bracketed = /^\[([^\]]*)\](?::\d*)?$/.exec(trimmed);
  const name = bracketed ? (bracketed[1] as string) : trimmed.replace(/:\d*$/, '');
  return name.replace(/\.$/, '');
}

/**
 * An onRequest hook answering 421 to a request whose `Host` is neither a loopback name nor one
 * of `allowed` (names or addresses, compared without port). `setting` names where to add one.
 */
export function requireAllowedHost(allowed: readonly string[], setting: string) {
  const names = new Set(allowed.map((name) => hostNameOf(name)));
  return async function checkHost(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const header = request.headers.host;
    const name = typeof header === 'string' ? hostNameOf(header) : '';
    if (name !== '' && (isLoopbackHost(name) || names.has(name))) return;
    const shown = name === '' ? 'a missing Host header' : `host ${JSON.stringify(name.slice(0, 100))}`;
    throw new HttpError(
      421,
      'misdirected_request',
      `host: ${shown} is not a name this service answers to (loopback names, or add it to ${setting}); refused so that a re-pointed DNS name cannot reach it`,
      [{ field: 'host', rule: `must be a loopback name or one listed in ${setting}` }],
    );
  };
}
