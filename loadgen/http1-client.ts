/**
 * One virtual user's keep-alive connection to a plain-http target, one request at a time: the
 * closed model's client. It takes undici's dispatch call and drives the same raw handler
 * callbacks (onConnect/onHeaders/onData/onComplete/onError), so Exchange works with either; a
 * request costs one string write and the shared HTTP/1.1 parser, where undici spends most of the
 * generator's own CPU (docs/loadgen.md). HTTPS targets and the open model's pools stay on undici.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { ResponseParser, type ResponseSink } from '../platform/http/response-parser';

/** What the engine asks of a dispatcher: undici's Client, Pool and Agent, and Http1Client. */
export interface RequestDispatcher {
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
  destroy(): Promise<void>;
}

export interface Http1ClientOptions {
  /** Connect, then headers, then each gap in the body. */
  timeoutMs: number;
  /** Idle keep-alive time before a fresh connection is used (less when the server says less). */
  keepAliveMs: number;
  /** false: every request on its own connection (`Connection: close`). */
  keepAlive: boolean;
  lookup?: net.LookupFunction;
}

/** An error with the code classifyError reads. */
class ClientError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

const CRLF = '\r\n';

export class Http1Client implements RequestDispatcher, ResponseSink {
  private socket: net.Socket | undefined;
  private readonly parser = new ResponseParser();
  private handler: Dispatcher.DispatchHandler | undefined;
  private options: Dispatcher.DispatchOptions | undefined;
  private readonly host: string;
  private readonly port: number;
  private readonly hostHeader: string;
  /** Request heads by options object: a step's options are reused for every request. */
  private readonly heads = new WeakMap<Dispatcher.DispatchOptions, string>();
  /** The socket has answered a request before, so the server may have closed it while idle. */
  private reused = false;
  private answered = false;
  private resent = false;
  private completed = false;
  private idleSince = 0;
  private idleLimitMs: number;
  private destroyed = false;

  constructor(
    origin: string,
    private readonly settings: Http1ClientOptions,
  ) {
    const url = new URL(origin);
    this.host = url.hostname.replace(/^\[|\]$/g, '');
    this.port = url.port === '' ? 80 : Number(url.port);
    this.hostHeader = url.host;
    this.idleLimitMs = settings.keepAliveMs;
  }

  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.handler !== undefined) throw new ClientError('a request is already in flight', 'UND_ERR_INFO');
    if (this.destroyed) throw new ClientError('the client is destroyed', 'UND_ERR_DESTROYED');
    this.handler = handler;
    this.options = options;
    this.resent = false;
    this.send();
    return true;
  }

  destroy(): Promise<void> {
    this.destroyed = true;
    this.fail(new ClientError('the client is destroyed', 'UND_ERR_DESTROYED'));
    this.socket?.destroy();
    this.socket = undefined;
    return Promise.resolve();
  }

  // ResponseSink ------------------------------------------------------------------------------

  onResponseHead(status: number, statusText: string, headers: string[]): void {
    this.handler?.onHeaders?.(status, headers as unknown as Buffer[], noop, statusText);
  }

  onResponseBody(chunk: Buffer): void {
    this.handler?.onData?.(chunk);
  }

  onResponseEnd(): void {
    // Reported once the parser is done with this chunk: the handler may send the next request.
    this.completed = true;
  }

  // -------------------------------------------------------------------------------------------

  private send(): void {
    const options = this.options as Dispatcher.DispatchOptions;
    let socket = this.socket;
    if (
      socket !== undefined &&
      (socket.destroyed || performance.now() - this.idleSince >= this.idleLimitMs)
    ) {
      socket.destroy();
      socket = undefined;
    }
    if (socket === undefined) socket = this.connect();
    this.answered = false;
    this.completed = false;
    this.parser.reset(this, options.method === 'HEAD');
    this.handler?.onConnect?.(this.abort);
    let head = this.heads.get(options);
    if (head === undefined) {
      head = this.headOf(options);
      this.heads.set(options, head);
    }
    const body = options.body as Buffer | null | undefined;
    if (body) {
      socket.cork();
      socket.write(head, 'latin1');
      socket.write(body);
      socket.uncork();
    } else socket.write(head, 'latin1');
  }

  private headOf(options: Dispatcher.DispatchOptions): string {
    let head = `${options.method} ${options.path} HTTP/1.1${CRLF}host: ${this.hostHeader}${CRLF}`;
    const headers = (options.headers ?? []) as string[];
    for (let i = 0; i + 1 < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}${CRLF}`;
    const body = options.body as Buffer | null | undefined;
    if (body) head += `content-length: ${body.length}${CRLF}`;
    if (!this.settings.keepAlive) head += `connection: close${CRLF}`;
    return head + CRLF;
  }

  private connect(): net.Socket {
    const socket = net.connect({ host: this.host, port: this.port, lookup: this.settings.lookup });
    socket.setNoDelay(true);
    socket.setTimeout(this.settings.timeoutMs);
    this.reused = false;
    this.idleLimitMs = this.settings.keepAliveMs;
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
    socket.on('end', () => this.onEnd(socket));
    socket.on('error', (error: Error) => this.onSocketError(socket, error));
    socket.on('close', () => this.onSocketError(socket, undefined));
    socket.on('timeout', () => this.onTimeout(socket));
    this.socket = socket;
    return socket;
  }

  private onData(socket: net.Socket, chunk: Buffer): void {
    if (socket !== this.socket || this.handler === undefined) {
      socket.destroy(); // bytes nobody asked for: this connection is out of step
      return;
    }
    this.answered = true;
    try {
      this.parser.execute(chunk);
    } catch (error) {
      this.fail(new ClientError((error as Error).message, 'HPE_INVALID_RESPONSE'));
      return;
    }
    if (this.completed) this.complete();
  }

  private onEnd(socket: net.Socket): void {
    if (socket !== this.socket || this.handler === undefined) return;
    try {
      this.parser.finish();
    } catch {
      this.failOrResend(new ClientError('the server closed the connection', 'UND_ERR_SOCKET'));
      return;
    }
    this.parser.reusable = false;
    this.complete();
  }

  private onSocketError(socket: net.Socket, error: Error | undefined): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    if (this.handler === undefined) return;
    this.failOrResend(error ?? new ClientError('the connection closed', 'UND_ERR_SOCKET'));
  }

  private onTimeout(socket: net.Socket): void {
    if (socket !== this.socket) return;
    if (this.handler === undefined) {
      socket.destroy();
      this.socket = undefined;
      return;
    }
    this.fail(new ClientError('no answer in time', 'ETIMEDOUT'));
  }

  private complete(): void {
    const handler = this.handler;
    this.handler = undefined;
    this.options = undefined;
    this.reused = true;
    const keepAliveMs = this.parser.keepAliveMs;
    this.idleLimitMs =
      keepAliveMs === undefined
        ? this.settings.keepAliveMs
        : Math.min(this.settings.keepAliveMs, keepAliveMs - 1000);
    if (!this.parser.reusable || !this.settings.keepAlive) {
      this.socket?.destroy();
      this.socket = undefined;
    }
    this.idleSince = performance.now();
    handler?.onComplete?.([]);
  }

  /** A keep-alive connection the server closed as it was reused: a safe request goes again once. */
  private failOrResend(error: Error): void {
    const method = this.options?.method;
    if (
      this.reused &&
      !this.answered &&
      !this.resent &&
      !this.destroyed &&
      (method === 'GET' || method === 'HEAD') &&
      !this.options?.body
    ) {
      this.resent = true;
      this.socket?.destroy();
      this.socket = undefined;
      this.send();
      return;
    }
    this.fail(error);
  }

  private readonly abort = (reason?: Error): void => {
    this.fail(reason ?? new ClientError('aborted', 'UND_ERR_ABORTED'));
  };

  private fail(error: Error): void {
    const handler = this.handler;
    this.handler = undefined;
    this.options = undefined;
    this.socket?.destroy();
    this.socket = undefined;
    handler?.onError?.(error);
  }
}

function noop(): void {}
