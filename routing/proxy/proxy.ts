import { readFile, rename, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createLogger, type Logger } from '../../platform/logger';
import { FieldReader, isPlainObject, ValidationError } from '../../core/validation';
import { startAdminServer, urlOf, type AdminServer, type ProxyStateBody } from './admin';
import { ProxyMetrics, type ErrorReason, type UpstreamRole } from './metrics';
import {
  parseBuiltinProxyOptions,
  readOrigin,
  type BuiltinProxyOptions,
  type StickyOptions,
} from './options';
import { Upstream } from './upstream';
import { UpstreamError, type PendingRequest, type RequestBody, type UpstreamExchange } from './upstream-pool';

export type { BuiltinProxyOptions } from './options';

/** What a library caller passes; durations as milliseconds or strings like `2s`. */
export interface BuiltinProxyInput {
  /** host:port; port 0 picks a free one. */
  listen: string;
  adminListen: string;
  adminToken: string;
  upstreams: { baseline: string; canary: string };
  share?: number;
  sticky?: { by: 'cookie' | 'header'; name: string; maxAge?: string | number };
  /** `false` turns active health checks off. */
  healthCheck?:
    | false
    | { path?: string; interval?: string | number; timeout?: string | number; fall?: number; rise?: number };
  connections?: number;
  upstreamTimeout?: string | number;
  stateFile?: string;
}

export type ProxyState = ProxyStateBody;

/** Shares are kept in basis points so a request's side is one integer comparison. */
const BASIS_POINTS = 10_000;

/**
 * Hop-by-hop headers (RFC 9110 7.6.1) and `expect` (Node's server has answered it already);
 * tested by length first.
 */
const HOP_BY_HOP_BY_LENGTH: ReadonlyMap<number, readonly string[]> = new Map([
  [2, ['te']],
  [6, ['expect']],
  [7, ['trailer', 'upgrade']],
  [10, ['connection', 'keep-alive']],
  [16, ['proxy-connection']],
  [17, ['transfer-encoding']],
]);

function isHopByHop(name: string): boolean {
  const candidates = HOP_BY_HOP_BY_LENGTH.get(name.length);
  return candidates !== undefined && candidates.includes(name.toLowerCase());
}

/**
 * The header names a `Connection` header lists (RFC 9110 7.6.1): hop-by-hop for this message, so
 * not forwarded. Undefined when it names only `close`/`keep-alive` or other hop-by-hop headers.
 */
function connectionOptions(value: string | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  let names: Set<string> | undefined;
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === '' || name === 'close' || isHopByHop(name)) continue;
    (names ??= new Set()).add(name);
  }
  return names;
}

/** `headers` (name, value, name, value...) without the pairs whose name is in `names`. */
function withoutNamed(headers: string[], names: Set<string>): string[] {
  const kept: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    if (!names.has(name.toLowerCase())) kept.push(name, headers[i + 1] as string);
  }
  return kept;
}

/** FNV-1a: a fast, well-spread hash of a user id onto the 0-9999 bucket line. */
export function bucketOf(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i += 1) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % BASIS_POINTS;
}

/** The bucket in a `name=1234` cookie, or -1. */
function bucketFromCookie(cookie: string, prefix: string): number {
  let at = cookie.indexOf(prefix);
  while (at > 0 && cookie.charCodeAt(at - 1) !== 0x20 && cookie.charCodeAt(at - 1) !== 0x3b) {
    at = cookie.indexOf(prefix, at + 1);
  }
  if (at < 0) return -1;
  let bucket = 0;
  let digits = 0;
  for (let i = at + prefix.length; i < cookie.length; i += 1) {
    const code = cookie.charCodeAt(i);
    if (code === 0x3b || code === 0x20) break;
    if (code < 0x30 || code > 0x39 || digits === 4) return -1;
    bucket = bucket * 10 + (code - 0x30);
    digits += 1;
  }
  return digits === 0 ? -1 : bucket;
}

const CRLF = '\r\n';

/** Methods sent again after a reset before any answer: safe, so a second copy does no harm. */
function isSafe(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS';
}

function uncork(res: http.ServerResponse): void {
  res.uncork();
}

/** What a client's request becomes on its way to an upstream; the same for a resend. */
interface ForwardedRequest {
  method: string;
  /** Request line's target and header lines, each ending in CRLF, minus Host when the client sent none. */
  requestLine: string;
  headerLines: string;
  hasHost: boolean;
  body: RequestBody | undefined;
  client: http.IncomingMessage;
}

/** One request in flight to an upstream, on the proxy's own HTTP/1.1 connections. */
class Exchange implements UpstreamExchange {
  private pending: PendingRequest | undefined;
  private finished = false;
  private retried = false;
  private waitingForDrain = false;

  constructor(
    private readonly proxy: BuiltinProxy,
    private readonly res: http.ServerResponse,
    private upstream: Upstream,
    private readonly request: ForwardedRequest,
    private readonly startedAt: number,
    private readonly setCookie: string | undefined,
  ) {
    res.once('close', this.onClientClose);
  }

  start(): void {
    const request = this.request;
    const pool = this.upstream.pool;
    const head = request.hasHost
      ? `${request.requestLine}${request.headerLines}${CRLF}`
      : `${request.requestLine}${request.headerLines}host: ${pool.hostHeader}${CRLF}${CRLF}`;
    this.pending = pool.request(head, request.method === 'HEAD', request.body, isSafe(request.method), this);
  }

  onResponseHead(statusCode: number, statusText: string, rawHeaders: string[]): void {
    let headers: string[] = [];
    let connection: string | undefined;
    let transferEncoding = false;
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i] as string;
      const value = rawHeaders[i + 1] as string;
      if (!isHopByHop(name)) headers.push(name, value);
      else if (name.length === 17) transferEncoding = true;
      else if (name.length === 10 && name.toLowerCase() === 'connection')
        connection = connection === undefined ? value : `${connection},${value}`;
    }
    let named = connectionOptions(connection);
    // A chunked body's length is not its Content-Length, whatever the upstream also sent.
    if (transferEncoding) (named ??= new Set()).add('content-length');
    if (named) headers = withoutNamed(headers, named);
    if (this.setCookie !== undefined) headers.push('set-cookie', this.setCookie);
    // The upstream's Date is passed on; headers, a small body and its end leave in one write.
    const res = this.res;
    res.sendDate = false;
    this.closeIfUploading();
    try {
      res.writeHead(statusCode, statusText, headers);
    } catch (error) {
      // Node refuses a header the parser let through: nothing was written, so a 502 still can be.
      this.pending?.abort();
      this.onUpstreamError(new UpstreamError('other', (error as Error).message));
      return;
    }
    res.cork();
    process.nextTick(uncork, res);
  }

  onResponseBody(chunk: Buffer): void {
    // After a refused head the parser may still be reading this chunk's body: it is dropped.
    if (this.finished || this.res.write(chunk) || this.waitingForDrain) return;
    this.waitingForDrain = true;
    this.pending?.connection?.pause();
    this.res.once('drain', this.onClientDrain);
  }

  onResponseEnd(): void {
    if (this.finished) return;
    this.finished = true;
    this.res.end();
    const metrics = this.upstream.metrics;
    metrics.responses[(this.res.statusCode / 100) | 0]?.inc();
    metrics.latency.observe((performance.now() - this.startedAt) / 1000);
  }

  onUpstreamError(error: UpstreamError): void {
    if (this.finished) return;
    const reason = error.reason;
    const metrics = this.upstream.metrics;
    if (this.res.destroyed || this.res.writableEnded) {
      this.finished = true;
      metrics.errors.client_abort.inc();
      return;
    }
    metrics.errors[reason].inc();
    if (error.code === 'ECONNREFUSED') this.upstream.markRefused();
    if (!this.res.headersSent && !this.retried && this.canResend(reason)) {
      // Sent again once: to the other side if it is up (as NGINX's proxy_next_upstream does),
      // else to the same one.
      this.retried = true;
      this.upstream = this.proxy.fallbackFor(this.upstream);
      this.start();
      return;
    }
    this.finished = true;
    if (this.res.headersSent) {
      // Part of the answer is out: only closing the connection tells the client it is cut short.
      this.res.destroy(error);
      return;
    }
    const status = reason === 'timeout' ? 504 : 502;
    metrics.responses[5]?.inc();
    this.closeIfUploading();
    this.res.writeHead(status, { 'content-type': 'text/plain', 'content-length': status === 504 ? 16 : 12 });
    this.res.end(status === 504 ? 'gateway timeout\n' : 'bad gateway\n');
  }

  /**
   * Answering before the client has sent its whole body: the connection closes after the answer,
   * as clients often stop sending then, which would leave it waiting for the rest.
   */
  private closeIfUploading(): void {
    if (this.request.body !== undefined && !this.request.client.complete) this.res.shouldKeepAlive = false;
  }

  /** A refused connection never reached the upstream; a reset one may have, so only safe methods. */
  private canResend(reason: ErrorReason): boolean {
    if (this.request.body !== undefined) return false;
    if (reason === 'connect') return true;
    return reason === 'reset' && isSafe(this.request.method);
  }

  private readonly onClientDrain = (): void => {
    this.waitingForDrain = false;
    // Once the answer has ended its connection may carry another request, not ours to resume.
    if (!this.finished) this.pending?.connection?.resume();
  };

  private readonly onClientClose = (): void => {
    if (this.finished) return;
    this.finished = true;
    this.upstream.metrics.errors.client_abort.inc();
    this.pending?.abort();
  };
}

/** A reverse proxy that splits requests between baseline and canary by weight. */
export class BuiltinProxy {
  readonly metrics: ProxyMetrics;
  private shareBasisPoints: number;
  private baseline: Upstream;
  private canary: Upstream;
  private readonly server: http.Server;
  private admin: AdminServer | undefined;
  private readonly sticky: StickyOptions | undefined;
  private readonly cookiePrefix: string;
  private persisting: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly options: BuiltinProxyOptions,
    private readonly logger: Logger,
    state: { share: number; upstreams: { baseline: string; canary: string } },
  ) {
    this.metrics = new ProxyMetrics();
    this.sticky = options.sticky;
    this.cookiePrefix = `${options.sticky?.name ?? ''}=`;
    this.shareBasisPoints = Math.round(state.share * 100);
    this.metrics.share.set(state.share);
    this.baseline = this.createUpstream('baseline', state.upstreams.baseline);
    this.canary = this.createUpstream('canary', state.upstreams.canary);
    this.server = http.createServer({ keepAliveTimeout: 65_000, noDelay: true }, this.handle);
  }

  static async start(
    input: BuiltinProxyInput,
    logger = createLogger('builtin-proxy'),
  ): Promise<BuiltinProxy> {
    const options = parseBuiltinProxyOptions(input as unknown as Record<string, unknown>);
    const saved = options.stateFile ? await readStateFile(options.stateFile) : undefined;
    const state = saved ?? { share: options.share, upstreams: options.upstreams };
    if (saved) logger.info({ stateFile: options.stateFile, ...saved }, 'restored routing state');
    const proxy = new BuiltinProxy(options, logger, state);
    try {
      await new Promise<void>((resolve, reject) => {
        proxy.server.once('error', reject);
        proxy.server.listen(options.listen.port, options.listen.host, () => resolve());
      });
      proxy.admin = await startAdminServer(proxy, options.adminToken, options.adminListen);
    } catch (error) {
      await proxy.close();
      throw error;
    }
    logger.info({ url: proxy.url, adminUrl: proxy.adminUrl, ...proxy.state() }, 'builtin proxy listening');
    return proxy;
  }

  get url(): string {
    return urlOf(this.server.address() as AddressInfo);
  }

  get adminUrl(): string {
    if (!this.admin) throw new Error('the admin endpoint is not listening');
    return this.admin.url;
  }

  state(): ProxyState {
    const view = (upstream: Upstream) => ({ url: upstream.origin, healthy: upstream.healthy });
    return {
      share: this.shareBasisPoints / 100,
      upstreams: { baseline: view(this.baseline), canary: view(this.canary) },
      sticky: this.sticky ? { by: this.sticky.by, name: this.sticky.name } : null,
    };
  }

  async setShare(share: number): Promise<ProxyState> {
    if (!Number.isFinite(share) || share < 0 || share > 100)
      throw new ValidationError([{ field: 'share', rule: 'must be a number from 0 to 100' }]);
    const basisPoints = Math.round(share * 100);
    if (basisPoints !== this.shareBasisPoints) {
      this.logger.info({ from: this.shareBasisPoints / 100, to: basisPoints / 100 }, 'canary share changed');
      this.shareBasisPoints = basisPoints;
      this.metrics.share.set(basisPoints / 100);
    }
    await this.persist();
    return this.state();
  }

  /** Points the sides at other origins; requests in flight finish on the old pools. */
  async setUpstreams(upstreams: { baseline: string; canary: string }): Promise<ProxyState> {
    const r = new FieldReader();
    const baseline = readOrigin(r, upstreams.baseline, 'baseline');
    const canary = readOrigin(r, upstreams.canary, 'canary');
    r.throwIfAny();
    const retired: Upstream[] = [];
    if (baseline !== this.baseline.origin) {
      retired.push(this.baseline);
      this.baseline = this.createUpstream('baseline', baseline!);
    }
    if (canary !== this.canary.origin) {
      retired.push(this.canary);
      this.canary = this.createUpstream('canary', canary!);
    }
    if (retired.length > 0) this.logger.info({ baseline, canary }, 'upstreams changed');
    await this.persist();
    void Promise.all(retired.map((upstream) => upstream.close())).catch((error: unknown) =>
      this.logger.warn({ err: error }, 'closing a retired upstream pool failed'),
    );
    return this.state();
  }

  /**
   * The other side when it is up and has a share, else the same one. A side at 0 % never takes
   * traffic, not even as a fallback: after a rollback a baseline health blip must not send users to
   * the bad canary (nor, after a promotion, a canary blip send them to the old baseline).
   */
  fallbackFor(upstream: Upstream): Upstream {
    const otherIsCanary = upstream !== this.canary;
    const other = otherIsCanary ? this.canary : this.baseline;
    const otherShare = otherIsCanary ? this.shareBasisPoints : BASIS_POINTS - this.shareBasisPoints;
    return other.healthy && otherShare > 0 ? other : upstream;
  }

  /** Stops listening, lets requests in flight finish, closes the pools; safe to call twice. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await this.admin?.close();
    if (this.server.listening) {
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.server.closeIdleConnections();
      await closed;
    }
    await Promise.all([this.baseline.close(), this.canary.close()]);
    await this.persisting;
  }

  private readonly handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const startedAt = performance.now();
    const raw = req.rawHeaders;
    let headers: string[] = [];
    let connection: string | undefined;
    const stickyHeader = this.sticky ? (this.sticky.by === 'cookie' ? 'cookie' : this.sticky.name) : '';
    let stickyValue: string | undefined;
    let forwardedFor: string | undefined;
    let chunkedBody = false;
    let lengthBody = false;
    let hasHost = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      const value = raw[i + 1] as string;
      if (isHopByHop(name)) {
        if (name.length === 17)
          chunkedBody = true; // transfer-encoding: Node has decoded it, it is sent chunked again
        else if (name.length === 10 && name.toLowerCase() === 'connection')
          connection = connection === undefined ? value : `${connection},${value}`;
        continue;
      }
      if (name.length === 15 && name.toLowerCase() === 'x-forwarded-for') {
        forwardedFor = value;
        continue;
      }
      if (name.length === 14 && value !== '0' && name.toLowerCase() === 'content-length') lengthBody = true;
      else if (name.length === 4 && name.toLowerCase() === 'host') hasHost = true;
      if (name.length === stickyHeader.length && name.toLowerCase() === stickyHeader) stickyValue = value;
      headers.push(name, value);
    }
    const named = connectionOptions(connection);
    if (named) {
      // Framing stays: the body is read by this proxy whatever the client listed.
      named.delete('content-length');
      named.delete('host');
      headers = withoutNamed(headers, named);
      if (named.has('x-forwarded-for')) forwardedFor = undefined;
    }
    const client = req.socket.remoteAddress ?? 'unknown';
    headers.push('x-forwarded-for', forwardedFor === undefined ? client : `${forwardedFor}, ${client}`);
    if (chunkedBody) headers.push('transfer-encoding', 'chunked');

    let bucket = -1;
    let setCookie: string | undefined;
    if (this.sticky && stickyValue !== undefined) {
      bucket =
        this.sticky.by === 'cookie'
          ? bucketFromCookie(stickyValue, this.cookiePrefix)
          : bucketOf(stickyValue);
    }
    if (bucket < 0) {
      bucket = (Math.random() * BASIS_POINTS) | 0;
      if (this.sticky?.by === 'cookie') {
        setCookie = `${this.cookiePrefix}${bucket}; Path=/; Max-Age=${this.sticky.maxAgeS}; HttpOnly; SameSite=Lax`;
      }
    }
    // A user's bucket is fixed, so raising the share only moves users baseline -> canary.
    let upstream = bucket < this.shareBasisPoints ? this.canary : this.baseline;
    if (!upstream.healthy) upstream = this.fallbackFor(upstream);

    let headerLines = '';
    for (let i = 0; i < headers.length; i += 2) headerLines += `${headers[i]}: ${headers[i + 1]}${CRLF}`;
    const method = req.method ?? 'GET';
    const request: ForwardedRequest = {
      method,
      requestLine: `${method} ${req.url ?? '/'} HTTP/1.1${CRLF}`,
      headerLines,
      hasHost,
      body: chunkedBody || lengthBody ? { chunked: chunkedBody, source: req } : undefined,
      client: req,
    };
    new Exchange(this, res, upstream, request, startedAt, setCookie).start();
  };

  private createUpstream(role: UpstreamRole, origin: string): Upstream {
    return new Upstream(
      role,
      origin,
      { connections: this.options.connections, timeoutMs: this.options.upstreamTimeoutMs },
      this.metrics.upstreams[role],
      this.options.healthCheck,
      this.logger,
    );
  }

  /**
   * Writes the admin-set state atomically, one write at a time, in the order of the changes. A
   * failed write is logged and reported to its caller only: the next change still gets written, so
   * one bad write cannot freeze the file at an old share that a restart would bring back.
   */
  private persist(): Promise<void> {
    const file = this.options.stateFile;
    if (!file) return Promise.resolve();
    const { share, upstreams } = this.state();
    const body = JSON.stringify({
      share,
      upstreams: { baseline: upstreams.baseline.url, canary: upstreams.canary.url },
    });
    const write = this.persisting
      .catch(() => {})
      .then(async () => {
        await writeFile(`${file}.tmp`, `${body}\n`);
        await rename(`${file}.tmp`, file);
      });
    this.persisting = write.catch((error: unknown) => {
      this.logger.error({ err: error, stateFile: file, share }, 'writing the state file failed');
    });
    return write;
  }
}

async function readStateFile(
  file: string,
): Promise<{ share: number; upstreams: { baseline: string; canary: string } } | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return undefined;
    throw error;
  }
  const r = new FieldReader();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const state = r.object(parsed, 'stateFile');
  const upstreams = state && isPlainObject(state.upstreams) ? state.upstreams : undefined;
  if (!upstreams) r.fail('stateFile.upstreams', 'must be an object');
  const share = r.number(state?.share, 'stateFile.share', { min: 0, max: 100 });
  const baseline = readOrigin(r, upstreams?.baseline, 'stateFile.upstreams.baseline');
  const canary = readOrigin(r, upstreams?.canary, 'stateFile.upstreams.canary');
  r.throwIfAny();
  return { share: share!, upstreams: { baseline: baseline!, canary: canary! } };
}

/** Starts the proxy and its admin endpoint; see BuiltinProxyInput for the options. */
export function startBuiltinProxy(input: BuiltinProxyInput, logger?: Logger): Promise<BuiltinProxy> {
  return BuiltinProxy.start(input, logger);
}
