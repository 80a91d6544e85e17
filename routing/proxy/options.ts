import { FieldReader } from '../../core/validation';

export interface ListenAddress {
  host: string;
  /** 0 lets the kernel pick (tests). */
  port: number;
}

export interface StickyOptions {
  /** `cookie`: the proxy hands out a bucket cookie; `header`: a user id header is hashed. */
  by: 'cookie' | 'header';
  name: string;
  /** Cookie lifetime; ignored for headers. */
  maxAgeS: number;
}

export interface HealthCheckOptions {
  path: string;
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive failures that mark an upstream down. */
  fall: number;
  /** Consecutive successes that bring it back. */
  rise: number;
}

export interface BuiltinProxyOptions {
  listen: ListenAddress;
  adminListen: ListenAddress;
  /** Bearer token for the admin endpoint's weight and upstream routes. */
  adminToken: string;
  upstreams: { baseline: string; canary: string };
  /** Canary share at start, unless the state file holds a later one. */
  share: number;
  sticky: StickyOptions | undefined;
  healthCheck: HealthCheckOptions | undefined;
  /** Keep-alive connections per upstream. */
  connections: number;
  /** Time to the upstream's response headers, and between body chunks. */
  upstreamTimeoutMs: number;
  /** Where the admin-set share and upstreams survive a restart. */
  stateFile: string | undefined;
}

const ORIGIN_PATTERN = /^https?:\/\/[^\s/?#@]+\/?$/;
const HOST_PORT_PATTERN = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
const TOKEN_NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_-]*$/;
export const MIN_ADMIN_TOKEN_LENGTH = 16;

export function readOrigin(r: FieldReader, value: unknown, field: string): string | undefined {
  const url = r.string(value, field, ORIGIN_PATTERN, 'must be an http:// or https:// origin (no path)');
  return url?.replace(/\/$/, '');
}

export function readListenAddress(r: FieldReader, value: unknown, field: string): ListenAddress | undefined {
  const text = r.string(value, field, HOST_PORT_PATTERN, 'must be host:port, e.g. 127.0.0.1:8080');
  if (text === undefined) return undefined;
  const match = HOST_PORT_PATTERN.exec(text) as RegExpExecArray;
  const port = Number(match[2]);
  if (port > 65_535) return r.fail(field, 'must have a port from 0 to 65535');
  return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port };
}

/**
 * Validates the proxy's options (from the library caller or the command line, already split
 * into fields) and fills in defaults; throws a ValidationError naming every bad field.
 */
export function parseBuiltinProxyOptions(input: Record<string, unknown>): BuiltinProxyOptions {
  const r = new FieldReader();
  r.onlyKeys(
    input,
    [
      'listen',
      'adminListen',
      'adminToken',
      'upstreams',
      'share',
      'sticky',
      'healthCheck',
      'connections',
      'upstreamTimeout',
      'stateFile',
    ],
    '',
  );
  const listen = readListenAddress(r, input.listen, 'listen');
  const adminListen = readListenAddress(r, input.adminListen, 'adminListen');
  const adminToken = r.string(input.adminToken, 'adminToken');
  if (adminToken !== undefined && adminToken.length < MIN_ADMIN_TOKEN_LENGTH)
    r.fail('adminToken', `must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters`);

  const upstreamsIn = r.object(input.upstreams, 'upstreams');
  if (upstreamsIn) r.onlyKeys(upstreamsIn, ['baseline', 'canary'], 'upstreams');
  const baseline = upstreamsIn ? readOrigin(r, upstreamsIn.baseline, 'upstreams.baseline') : undefined;
  const canary = upstreamsIn ? readOrigin(r, upstreamsIn.canary, 'upstreams.canary') : undefined;

  const share = r.number(input.share, 'share', { min: 0, max: 100 }, 0);
  const sticky = input.sticky === undefined ? undefined : readSticky(r, input.sticky, 'sticky');
  const healthCheck =
    input.healthCheck === false ? undefined : readHealthCheck(r, input.healthCheck, 'healthCheck');
  const connections = r.number(input.connections, 'connections', { min: 1, max: 10_000, integer: true }, 128);
  const upstreamTimeoutMs = r.duration(
    input.upstreamTimeout,
    'upstreamTimeout',
    { minMs: 100, maxMs: 3_600_000 },
    30_000,
  );
  const stateFile = r.optionalString(input.stateFile, 'stateFile');
  r.throwIfAny();
  return {
    listen: listen!,
    adminListen: adminListen!,
    adminToken: adminToken!,
    upstreams: { baseline: baseline!, canary: canary! },
    share: share!,
    sticky,
    healthCheck,
    connections: connections!,
    upstreamTimeoutMs: upstreamTimeoutMs!,
    stateFile,
  };
}

function readSticky(r: FieldReader, value: unknown, field: string): StickyOptions | undefined {
  const sticky = r.object(value, field);
  if (!sticky) return undefined;
  r.onlyKeys(sticky, ['by', 'name', 'maxAge'], field);
  const by = r.oneOf(sticky.by, `${field}.by`, ['cookie', 'header'] as const);
  const name = r.string(sticky.name, `${field}.name`, TOKEN_NAME_PATTERN, 'must be a cookie or header name');
  const maxAgeMs = r.duration(
    sticky.maxAge,
    `${field}.maxAge`,
    { minMs: 1000, maxMs: 400 * 86_400_000 },
    86_400_000,
  );
  if (by === undefined || name === undefined || maxAgeMs === undefined) return undefined;
  return { by, name: by === 'header' ? name.toLowerCase() : name, maxAgeS: Math.round(maxAgeMs / 1000) };
}

function readHealthCheck(r: FieldReader, value: unknown, field: string): HealthCheckOptions | undefined {
  const check = r.optionalObject(value, field);
  if (!check) return undefined;
  r.onlyKeys(check, ['path', 'interval', 'timeout', 'fall', 'rise'], field);
  const path =
    check.path === undefined ? '/' : r.string(check.path, `${field}.path`, /^\/\S*$/, 'must start with /');
  const intervalMs = r.duration(check.interval, `${field}.interval`, { minMs: 50, maxMs: 600_000 }, 1000);
  const timeoutMs = r.duration(check.timeout, `${field}.timeout`, { minMs: 10, maxMs: 60_000 }, 1000);
  const fall = r.number(check.fall, `${field}.fall`, { min: 1, max: 100, integer: true }, 2);
  const rise = r.number(check.rise, `${field}.rise`, { min: 1, max: 100, integer: true }, 2);
  if (timeoutMs !== undefined && intervalMs !== undefined && timeoutMs > intervalMs)
    r.fail(`${field}.timeout`, `must not exceed ${field}.interval`);
  if ([path, intervalMs, timeoutMs, fall, rise].includes(undefined)) return undefined;
  return { path: path!, intervalMs: intervalMs!, timeoutMs: timeoutMs!, fall: fall!, rise: rise! };
}
