/**
 * The proxy's HTTP/1.1 client: a keep-alive pool of sockets to one upstream origin, each carrying
 * one request at a time. Node's and undici's clients cost most of the proxy's CPU per request
 * (docs/routing.md); this one writes a request head as one string and frames the answer with
 * ResponseParser, handing body bytes on without copies.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { ResponseParseError, ResponseParser, type ResponseSink } from './response-parser';

export type UpstreamFailure = 'connect' | 'timeout' | 'reset' | 'other';

/** Why a request to the upstream got no complete response. */
export class UpstreamError extends Error {
  constructor(
    readonly reason: UpstreamFailure,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** One request's view of its connection, as ResponseSink plus the failure report. */
export interface UpstreamExchange extends ResponseSink {
  /** Called at most once, never after onResponseEnd. */
  onUpstreamError(error: UpstreamError): void;
}

/** What a request streams to the upstream after its head: the client's request body. */
export interface RequestBody {
  /** Raw body bytes are written as they come; chunked framing is added when `chunked`. */
  readonly chunked: boolean;
  readonly source: NodeJS.ReadableStream;
}

export interface UpstreamPoolOptions {
  /** Most connections open at once; requests beyond wait in order. */
  connections: number;
  /** Limit on silence from the upstream while a response is awaited or being read. */
  timeoutMs: number;
  connectTimeoutMs: number;
  /** Idle keep-alive connections are closed after this (or 1 s less than the upstream announces). */
  idleMs?: number;
}

const DEFAULT_IDLE_MS = 4000;
const CRLF = '\r\n';
const LAST_CHUNK = '0\r\n\r\n';

/** One request waiting for, or holding, a connection. */
export class PendingRequest {
  connection: UpstreamConnection | undefined;
  cancelled = false;
  /** Sent again once already, after a reused connection turned out closed. */
  resent = false;

  constructor(
    readonly head: string,
    /** The answer has no body whatever its headers say (a HEAD request). */
    readonly noBody: boolean,
    readonly body: RequestBody | undefined,
    /** May be sent again when a reused connection closes before any answer (RFC 9112 9.3.1). */
    readonly idempotent: boolean,
    readonly exchange: UpstreamExchange,
  ) {}

  /** Stops the request: a connection carrying it is destroyed, nothing is reported. */
  abort(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.connection?.abandon();
  }
}

export class UpstreamConnection {
  private readonly parser = new ResponseParser();
  private request: PendingRequest | undefined;
  private connected = false;
  private closed = false;
  /** The sink asked us to wait (the client reads slower than the upstream sends). */
  private paused = false;
  private requestWritten = true;
  /** Response bytes arrived for the current request. */
  private answered = false;
  /** It has carried a request before: the upstream may have closed it while idle. */
  private reused = false;
  private connectTimer: NodeJS.Timeout | undefined;
  /** Set while a request body streams onto this connection. */
  private stopBody: (() => void) | undefined;
  idleSince = 0;
  idleLimitMs: number;

  constructor(
    private readonly pool: UpstreamPool,
    readonly socket: net.Socket,
  ) {
    this.idleLimitMs = pool.idleMs;
    socket.setNoDelay(true);
    socket.setTimeout(pool.options.timeoutMs);
    socket.on(socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect', this.onConnect);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    socket.on('timeout', this.onTimeout);
    this.connectTimer = setTimeout(this.onConnectTimeout, pool.options.connectTimeoutMs);
  }

  /** Writes the request; the connection is idle or new. */
  send(request: PendingRequest): void {
    this.request = request;
    request.connection = this;
    // The last request's client may have asked to wait as its answer ended.
    this.resume();
    this.answered = false;
    this.parser.reset(request.exchange, request.noBody);
    const body = request.body;
    if (body === undefined) {
      this.requestWritten = true;
      this.socket.write(request.head, 'latin1');
      return;
    }
    this.requestWritten = false;
    this.socket.write(request.head, 'latin1');
    this.streamBody(request, body);
  }

  /** Drops the connection under its request, which is not told (it was cancelled). */
  abandon(): void {
    this.request = undefined;
    this.stopBody?.();
    this.socket.destroy();
  }

  /** The request's sink cannot keep up: reading stops until resume(). */
  pause(): void {
    if (this.paused || this.request === undefined) return;
    this.paused = true;
    this.socket.pause();
  }

  /** The request's sink caught up: reading resumes. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket.resume();
  }

  private streamBody(request: PendingRequest, body: RequestBody): void {
    const { source, chunked } = body;
    const socket = this.socket;
    let waitingForDrain = false;
    const onDrain = (): void => {
      waitingForDrain = false;
      source.resume();
    };
    const onData = (chunk: Buffer): void => {
      if (this.request !== request || chunk.length === 0) return;
      let flushed: boolean;
      if (chunked) {
        socket.write(`${chunk.length.toString(16)}${CRLF}`, 'latin1');
        socket.write(chunk);
        flushed = socket.write(CRLF, 'latin1');
      } else flushed = socket.write(chunk);
      if (!flushed && !waitingForDrain) {
        waitingForDrain = true;
        source.pause();
        socket.once('drain', onDrain);
      }
    };
    const onEnd = (): void => {
      this.stopBody = undefined;
      source.removeListener('data', onData);
      socket.removeListener('drain', onDrain);
      if (this.request !== request) return;
      if (chunked) socket.write(LAST_CHUNK, 'latin1');
      this.requestWritten = true;
    };
    // When the request leaves this connection before its body is sent, the rest of the body is
    // read and dropped, so the client's upload (and Node's server) can finish.
    this.stopBody = () => {
      this.stopBody = undefined;
      source.removeListener('data', onData);
      source.removeListener('end', onEnd);
      socket.removeListener('drain', onDrain);
      source.resume();
    };
    source.on('data', onData);
    source.once('end', onEnd);
  }

  private readonly onConnect = (): void => {
    this.connected = true;
    clearTimeout(this.connectTimer);
  };

  private readonly onConnectTimeout = (): void => {
    this.fail(new UpstreamError('connect', 'timed out connecting to the upstream', 'ETIMEDOUT'));
  };

  private readonly onData = (chunk: Buffer): void => {
    const request = this.request;
    if (request === undefined) {
      // Bytes on an idle connection: the upstream is not speaking HTTP/1.1 as we are.
      this.socket.destroy();
      return;
    }
    this.answered = true;
    try {
      this.parser.execute(chunk);
    } catch (error) {
      const message = error instanceof ResponseParseError ? error.message : String(error);
      this.fail(
        new UpstreamError('other', `bad response from the upstream: ${message}`, 'ERR_UPSTREAM_RESPONSE'),
      );
      return;
    }
    // The sink may have aborted the request meanwhile; the connection is then gone.
    if (this.request === request && this.parser.done) this.finishRequest();
  };

  private readonly onEnd = (): void => {
    if (this.request === undefined) {
      this.socket.destroy();
      return;
    }
    try {
      this.parser.finish();
    } catch (error) {
      this.fail(new UpstreamError('reset', (error as Error).message, 'ECONNRESET'));
      return;
    }
    this.parser.reusable = false;
    this.finishRequest();
  };

  private readonly onError = (error: Error & { code?: string }): void => {
    const reason: UpstreamFailure =
      !this.connected &&
      (error.code === 'ECONNREFUSED' || error.code === 'ENOTFOUND' || error.code === 'EHOSTUNREACH')
        ? 'connect'
        : error.code === 'ECONNRESET' || error.code === 'EPIPE'
          ? 'reset'
          : this.connected
            ? 'other'
            : 'connect';
    this.fail(new UpstreamError(reason, error.message, error.code));
  };

  private readonly onTimeout = (): void => {
    if (this.request === undefined) {
      this.socket.destroy();
      return;
    }
    // Waiting on our own client (backpressure) is not the upstream's silence.
    if (this.paused) return;
    this.fail(new UpstreamError('timeout', 'the upstream did not answer in time', 'ETIMEDOUT'));
  };

  private readonly onClose = (): void => {
    clearTimeout(this.connectTimer);
    if (this.closed) return;
    this.closed = true;
    if (this.request !== undefined) {
      this.fail(new UpstreamError('reset', 'the upstream connection closed', 'ECONNRESET'));
    }
    this.pool.removed(this);
  };

  /** The response is complete: the connection goes back to the pool or is closed. */
  private finishRequest(): void {
    this.request = undefined;
    this.reused = true;
    this.resume();
    if (!this.requestWritten) {
      // Answered before the whole request body was sent: the rest cannot be framed apart.
      this.stopBody?.();
      this.socket.destroy();
      return;
    }
    const keepAliveMs = this.parser.keepAliveMs;
    this.idleLimitMs =
      keepAliveMs === undefined ? this.pool.idleMs : Math.min(this.pool.idleMs, keepAliveMs - 1000);
    if (this.parser.reusable && !this.closed && this.idleLimitMs > 0) this.pool.release(this);
    else this.socket.destroy();
  }

  private fail(error: UpstreamError): void {
    const request = this.request;
    this.request = undefined;
    this.stopBody?.();
    this.socket.destroy();
    if (request === undefined || request.cancelled) return;
    // The upstream closed a keep-alive connection as we reused it: a request it never answered
    // goes once more on a fresh connection, as browsers do.
    const stale = this.reused && !this.answered && (error.reason === 'reset' || error.reason === 'other');
    if (stale && request.idempotent && request.body === undefined && !request.resent) {
      request.resent = true;
      this.pool.resend(request);
      return;
    }
    request.exchange.onUpstreamError(error);
  }
}

/** Keep-alive connections to one origin (`http:` or `https:`). */
export class UpstreamPool {
  readonly idleMs: number;
  private readonly idle: UpstreamConnection[] = [];
  private readonly waiting: PendingRequest[] = [];
  private open = 0;
  private closing = false;
  private readonly host: string;
  private readonly port: number;
  private readonly secure: boolean;
  /** The Host header for requests that arrive without one. */
  readonly hostHeader: string;

  constructor(
    origin: string,
    readonly options: UpstreamPoolOptions,
  ) {
    const url = new URL(origin);
    this.secure = url.protocol === 'https:';
    this.host = url.hostname.replace(/^\[|\]$/g, '');
    this.port = url.port === '' ? (this.secure ? 443 : 80) : Number(url.port);
    this.hostHeader = url.host;
    this.idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
  }

  /** Sends `head` (and the body, if any) on a free connection, now or when one frees up. */
  request(
    head: string,
    noBody: boolean,
    body: RequestBody | undefined,
    idempotent: boolean,
    exchange: UpstreamExchange,
  ): PendingRequest {
    const pending = new PendingRequest(head, noBody, body, idempotent, exchange);
    if (this.closing) {
      exchange.onUpstreamError(new UpstreamError('connect', 'the upstream pool is closed', 'ECONNREFUSED'));
      return pending;
    }
    const connection = this.takeIdle();
    if (connection !== undefined) connection.send(pending);
    else if (this.open < this.options.connections) this.connect().send(pending);
    else this.waiting.push(pending);
    return pending;
  }

  /** Closes idle connections now and the others when their request is done. */
  close(): Promise<void> {
    this.closing = true;
    for (const connection of this.idle.splice(0)) connection.socket.destroy();
    for (const pending of this.waiting.splice(0))
      pending.exchange.onUpstreamError(
        new UpstreamError('connect', 'the upstream pool is closed', 'ECONNREFUSED'),
      );
    if (this.open === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.drained = resolve;
    });
  }

  private drained: (() => void) | undefined;

  /** A connection finished its request and may carry another. */
  release(connection: UpstreamConnection): void {
    if (this.closing) {
      connection.socket.destroy();
      return;
    }
    let next = this.waiting.shift();
    while (next !== undefined && next.cancelled) next = this.waiting.shift();
    if (next !== undefined) {
      connection.send(next);
      return;
    }
    connection.idleSince = performance.now();
    this.idle.push(connection);
  }

  /** Sends a request again on a fresh connection (its old one is closing). */
  resend(request: PendingRequest): void {
    if (this.closing) {
      request.exchange.onUpstreamError(
        new UpstreamError('connect', 'the upstream pool is closed', 'ECONNREFUSED'),
      );
      return;
    }
    this.connect().send(request);
  }

  /** A connection closed. */
  removed(connection: UpstreamConnection): void {
    this.open -= 1;
    const at = this.idle.indexOf(connection);
    if (at >= 0) this.idle.splice(at, 1);
    if (this.closing) {
      if (this.open === 0) this.drained?.();
      return;
    }
    // A waiting request gets the freed slot.
    let next = this.waiting.shift();
    while (next !== undefined && next.cancelled) next = this.waiting.shift();
    if (next !== undefined) this.connect().send(next);
  }

  /** The most recently used idle connection still inside its idle limit. */
  private takeIdle(): UpstreamConnection | undefined {
    const now = performance.now();
    let connection = this.idle.pop();
    while (connection !== undefined && now - connection.idleSince >= connection.idleLimitMs) {
      connection.socket.destroy();
      connection = this.idle.pop();
    }
    return connection;
  }

  private connect(): UpstreamConnection {
    this.open += 1;
    const socket = this.secure
      ? tls.connect({
          host: this.host,
          port: this.port,
          servername: net.isIP(this.host) ? undefined : this.host,
          ALPNProtocols: ['http/1.1'],
        })
      : net.connect({ host: this.host, port: this.port });
    return new UpstreamConnection(this, socket);
  }
}
