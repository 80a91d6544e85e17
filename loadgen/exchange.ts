/**
 * One HTTP exchange of the load engine: a (virtual user, target) slot that sends a step's
 * request on undici's `dispatch` and records the answer. It checks status and body, keeps the
 * session's cookies, enforces the body limit and follows redirects, stripping credentials when
 * a redirect leaves the target's origin.
 *
 * The exchange is its own undici handler and is reused for every request of its slot, so after
 * warm-up a request allocates only what undici itself needs. undici's raw handler callbacks
 * (onConnect/onHeaders/onData/onComplete/onError) are used because the newer controller API
 * wraps every request in two objects and parses every header block.
 */
import { performance } from 'node:perf_hooks';
import type { Dispatcher, Pool } from 'undici';
import { hasJsonField } from '../core/json';
import { TargetNotAllowedError } from './allowlist';
import type { ActionRecorder, ErrorKind, SentRequest } from './stats';
import type { EnginePlan, RequestStep } from './options';

export interface PreparedStep {
  step: RequestStep;
  actionIndex: number;
  body: Buffer | null;
  /** Per target, reused for every dispatch of this step. */
  options: Dispatcher.DispatchOptions[];
  expectStatus: number[];
  expectJson: string[] | null;
  /** Scaled offset from the session start, ms. */
  offsetMs: number;
}

export interface TargetRuntime {
  index: number;
  name: string;
  origin: string;
  basePath: string;
  /** Open model: one pool per target; closed model: one client per virtual user instead. */
  pool: Pool | null;
}

/** What an exchange needs of the engine that owns it. */
export interface ExchangeOwner {
  readonly plan: Pick<EnginePlan, 'maxRedirects' | 'maxBodyBytes' | 'timeoutMs'>;
  readonly tagHeader: string | null;
  /** Requests in flight on this thread: an exchange counts its own in and out. */
  inFlight: number;
  readonly counters: { unfinished: number };
  readonly stopping: boolean;
  readonly closing: boolean;
  recorderFor(target: number, action: number): ActionRecorder;
  mayRedirectTo(url: URL): boolean;
  redirectAgent(): Dispatcher;
  /** Called when the last request of a stopping engine settles. */
  settled(): void;
}

/** The virtual user an exchange plays for: it moves on when all its exchanges are done. */
export interface ExchangeRunner {
  /** The session being played; its id (the profile's) names the requests kept as exemplars. */
  readonly session: { readonly id: string };
  exchangeDone(): void;
}

class BodyTooLargeError extends Error {
  readonly code = 'ERR_LOADGEN_BODY_TOO_LARGE';
}

class RequestCutError extends Error {
  readonly code = 'ERR_LOADGEN_CUT';
}

const CUT = new RequestCutError('the run ended before the response');
const TOO_LARGE = new BodyTooLargeError('response body larger than the limit');
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export function classifyError(error: unknown): ErrorKind {
  if (error instanceof BodyTooLargeError) return 'body_too_large';
  if (error instanceof TargetNotAllowedError) return 'not_allowed';
  const code = (error as { code?: unknown }).code;
  const text = typeof code === 'string' ? code : '';
  switch (text) {
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return 'timeout';
    case 'ECONNREFUSED':
      return 'connection_refused';
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
    case 'ECONNABORTED':
      return 'connection_reset';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NONAME':
      return 'dns';
    case 'UND_ERR_RES_EXCEEDED_MAX_SIZE':
      return 'body_too_large';
  }
  if (
    /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|ERR_OSSL)/.test(text) ||
    /SSL routines|certificate/i.test(String((error as Error).message))
  )
    return 'tls';
  return 'other';
}

/** `a.b.c` exists in the JSON body. */
function bodyHasJsonField(body: Buffer, path: string[]): boolean {
  try {
    return hasJsonField(JSON.parse(body.toString('utf8')), path);
  } catch {
    return false;
  }
}

const SET_COOKIE = Buffer.from('set-cookie');
const LOCATION = Buffer.from('location');

function headerIs(raw: Buffer | string, name: Buffer): boolean {
  if (typeof raw === 'string') return raw.toLowerCase() === name.toString();
  if (raw.length !== name.length) return false;
  for (let i = 0; i < raw.length; i++) if (((raw[i] as number) | 0x20) !== name[i]) return false;
  return true;
}

/**
 * One request slot: a (session runner, target) pair. It is its own undici handler, so nothing is
 * allocated to track a request.
 */
export class Exchange {
  step!: PreparedStep;
  /**
   * Latency is measured from here: when undici writes the request to the connection (onConnect),
   * or, for a step the server made overdue, from when it was due.
   */
  measuredFrom = 0;
  private measureFromWrite = true;
  status = 0;
  bytes = 0;
  chunks: Buffer[] | null = null;
  abort: ((error?: Error) => void) | null = null;
  inFlight = false;
  redirects = 0;
  location: string | null = null;
  currentOrigin: string;
  method = 'GET';
  /** When this exchange's last answer ended (performance.now()): whose lateness an overdue step is. */
  lastEnd = 0;
  private cookies: Map<string, string> | null = null;
  private cookieHeader: string | null = null;
  private readonly headerBuffer: string[] = [];

  constructor(
    private readonly engine: ExchangeOwner,
    readonly runner: ExchangeRunner,
    readonly target: TargetRuntime,
    readonly dispatcher: Dispatcher,
  ) {
    this.currentOrigin = target.origin;
  }

  /** The request as the step sent it, before any redirect: what an exemplar shows. */
  private get sentOptions(): SentRequest {
    return this.step.options[this.target.index] as SentRequest;
  }

  resetSession(): void {
    this.cookies?.clear();
    this.cookieHeader = null;
  }

  /** `overdueSince`: when the step was due, if the server made it late; otherwise NaN. */
  send(step: PreparedStep, now: number, overdueSince: number, tag: string | null): void {
    this.step = step;
    // In a paired run the step waits for both answers: only the side that answered late owns the
    // delay, the other side's latency counts from the write.
    if (this.lastEnd <= overdueSince) overdueSince = NaN;
    this.measureFromWrite = overdueSince !== overdueSince;
    this.measuredFrom = this.measureFromWrite ? now : overdueSince;
    this.status = 0;
    this.bytes = 0;
    this.redirects = 0;
    this.location = null;
    this.abort = null;
    this.chunks = step.expectJson ? [] : null;
    this.currentOrigin = this.target.origin;
    this.method = step.step.method;
    this.inFlight = true;
    this.engine.inFlight++;
    const options = step.options[this.target.index] as Dispatcher.DispatchOptions;
    // A fresh options object when headers differ: a busy pool queues the object by reference, so
    // swapping the shared one's headers back would strip this session's cookie and tag.
    if (tag !== null || this.cookieHeader !== null) {
      this.dispatch({ ...options, headers: this.headersWith(step.step.headers, tag) });
    } else this.dispatch(options);
  }

  private headersWith(base: string[], tag: string | null): string[] {
    const headers = this.headerBuffer;
    headers.length = 0;
    for (let i = 0; i < base.length; i++) headers.push(base[i] as string);
    if (this.cookieHeader !== null) headers.push('cookie', this.cookieHeader);
    if (tag !== null) headers.push(this.engine.tagHeader as string, tag);
    return headers;
  }

  private dispatch(options: Dispatcher.DispatchOptions): void {
    try {
      this.dispatcher.dispatch(options, this);
    } catch (error) {
      this.onError(error as Error);
    }
  }

  // undici handler ------------------------------------------------------------------------

  onConnect(abort: (error?: Error) => void): void {
    this.abort = abort;
    // undici may hold a request for a loop turn before writing it (it first checks an idle
    // keep-alive socket for a close from the server): that wait is the client's, not the server's.
    if (this.measureFromWrite && this.redirects === 0) this.measuredFrom = performance.now();
  }

  onHeaders(status: number, rawHeaders: (Buffer | string)[], _resume: () => void, _text: string): boolean {
    if (status < 200) return true;
    this.status = status;
    const following = this.engine.plan.maxRedirects > 0 && REDIRECTS.has(status);
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i] as Buffer | string;
      if (headerIs(name, SET_COOKIE)) this.storeCookie(String(rawHeaders[i + 1]));
      else if (following && headerIs(name, LOCATION)) this.location = String(rawHeaders[i + 1]);
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.bytes += chunk.length;
    if (this.bytes > this.engine.plan.maxBodyBytes) {
      this.abort?.(TOO_LARGE);
      return false;
    }
    if (this.chunks !== null && this.location === null) this.chunks.push(chunk);
    return true;
  }

  onComplete(_trailers: unknown): void {
    if (!this.inFlight) return;
    if (this.location !== null && this.followRedirect()) return;
    this.inFlight = false;
    const end = performance.now();
    const micros = (end - this.measuredFrom) * 1000;
    const recorder = this.engine.recorderFor(this.target.index, this.step.actionIndex);
    const status = this.status;
    const sent = this.sentOptions;
    const profileId = this.runner.session.id;
    if (this.location !== null)
      recorder.recordError('too_many_redirects', micros, status, this.bytes, sent, profileId);
    else if (!this.step.expectStatus.includes(status))
      recorder.recordError('unexpected_status', micros, status, this.bytes, sent, profileId);
    else if (
      this.chunks !== null &&
      !bodyHasJsonField(Buffer.concat(this.chunks), this.step.expectJson as string[])
    )
      recorder.recordError('check_failed', micros, status, this.bytes, sent, profileId);
    else recorder.recordSuccess(micros, status, this.bytes, sent, profileId);
    this.chunks = null;
    this.done();
  }

  onError(error: Error): void {
    if (!this.inFlight) return;
    this.inFlight = false;
    this.chunks = null;
    if (error === CUT || this.engine.closing) {
      this.engine.counters.unfinished++;
    } else {
      const micros = (performance.now() - this.measuredFrom) * 1000;
      const kind = classifyError(error);
      // A response cut short still had a status; a refused connection had none.
      this.engine
        .recorderFor(this.target.index, this.step.actionIndex)
        .recordError(
          kind,
          micros,
          kind === 'body_too_large' ? this.status : 0,
          this.bytes,
          this.sentOptions,
          this.runner.session.id,
        );
    }
    // undici reports some errors while it walks its queue: dispatching the next request from
    // inside this callback would re-enter the client, so the session continues a moment later.
    queueMicrotask(this.doneLater);
  }

  private readonly doneLater = () => this.done();

  onBodySent(): void {}
  onResponseStarted(): void {}

  // ---------------------------------------------------------------------------------------

  /** Ends the request in flight without recording it; true when there was one. */
  cut(): boolean {
    if (!this.inFlight) return false;
    this.abort?.(CUT);
    if (!this.inFlight) return true;
    // Not connected yet (a DNS lookup or a connect in progress): undici cannot abort it, so the
    // slot lets go of it here and ignores whatever undici reports later.
    this.inFlight = false;
    this.engine.counters.unfinished++;
    this.engine.inFlight--;
    return true;
  }

  private done(): void {
    this.abort = null;
    this.lastEnd = performance.now();
    this.engine.inFlight--;
    this.runner.exchangeDone();
    if (this.engine.stopping) this.engine.settled();
  }

  private storeCookie(header: string): void {
    const end = header.indexOf(';');
    const pair = end < 0 ? header : header.slice(0, end);
    const eq = pair.indexOf('=');
    if (eq <= 0) return;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    this.cookies ??= new Map();
    const attributes = end < 0 ? '' : header.slice(end).toLowerCase();
    if (/;\s*max-age=(0|-\d+)/.test(attributes) || /;\s*expires=[^;]*19[0-9]{2}/.test(attributes))
      this.cookies.delete(name);
    else this.cookies.set(name, value);
    this.cookieHeader =
      this.cookies.size === 0 ? null : [...this.cookies].map(([key, val]) => `${key}=${val}`).join('; ');
  }

  /** Follows a redirect to an allowlisted origin; false when it may not (the caller records why). */
  private followRedirect(): boolean {
    const location = this.location as string;
    if (this.redirects >= this.engine.plan.maxRedirects) return false;
    let next: URL;
    try {
      next = new URL(location, `${this.currentOrigin}/`);
    } catch {
      return false;
    }
    if (this.status === 303 || ((this.status === 301 || this.status === 302) && this.method === 'POST'))
      this.method = 'GET';
    this.redirects++;
    this.location = null;
    this.chunks = this.step.expectJson ? [] : null;
    this.bytes = 0;
    this.status = 0;
    const sameOrigin = next.origin === this.target.origin;
    if (!sameOrigin && !this.engine.mayRedirectTo(next)) {
      const micros = (performance.now() - this.measuredFrom) * 1000;
      this.engine
        .recorderFor(this.target.index, this.step.actionIndex)
        .recordError('not_allowed', micros, 0, 0, this.sentOptions, this.runner.session.id);
      this.inFlight = false;
      this.done();
      return true;
    }
    this.currentOrigin = next.origin;
    const keepBody = this.method !== 'GET' && this.method !== 'HEAD';
    const options: Dispatcher.DispatchOptions = {
      origin: next.origin,
      path: next.pathname + next.search,
      method: this.method,
      headers: sameOrigin
        ? this.step.step.headers.concat(this.cookieHeader ? ['cookie', this.cookieHeader] : [])
        : withoutCredentials(this.step.step.headers),
      body: keepBody ? this.step.body : null,
      headersTimeout: this.engine.plan.timeoutMs,
      bodyTimeout: this.engine.plan.timeoutMs,
    };
    const dispatcher = sameOrigin ? this.dispatcher : this.engine.redirectAgent();
    try {
      dispatcher.dispatch(options, this);
    } catch (error) {
      this.onError(error as Error);
    }
    return true;
  }
}

const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);

/** Flat header list minus credentials: a redirect to another origin must not carry them (RFC 9110 15.4). */
function withoutCredentials(headers: string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i] as string;
    if (!CREDENTIAL_HEADERS.has(name.toLowerCase())) kept.push(name, headers[i + 1] as string);
  }
  return kept;
}
