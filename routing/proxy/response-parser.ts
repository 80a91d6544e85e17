/**
 * An incremental HTTP/1.1 response parser (RFC 9112) for the proxy's upstream connections: one
 * response at a time (no pipelining), fed the socket's chunks as they arrive. It frames the body
 * by the rules of RFC 9112 6.3: no body for HEAD, 1xx, 204 and 304; chunked when the last transfer
 * coding is chunked; Content-Length; else until the connection closes. Interim 1xx responses are
 * skipped. Body bytes are handed on as views of the socket's buffers, never copied.
 */

/** What the parser tells about the response it reads; called synchronously from execute/finish. */
export interface ResponseSink {
  /** `headers` is flat (name, value, name, value...), as received, hop-by-hop ones included. */
  onResponseHead(status: number, statusText: string, headers: string[]): void;
  onResponseBody(chunk: Buffer): void;
  onResponseEnd(): void;
}

export class ResponseParseError extends Error {
  readonly code = 'ERR_UPSTREAM_RESPONSE';
}

/** The head (status line and header fields) may not be larger than this. */
export const MAX_HEAD_BYTES = 64 * 1024;
const MAX_CHUNK_LINE_BYTES = 4 * 1024;
const MAX_TRAILER_BYTES = 16 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
/** A control character other than tab, or a CR or LF not part of a CRLF. */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const INVALID_HEAD_CHAR = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: ([^\r\n]*))?$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const enum State {
  Head,
  LengthBody,
  CloseBody,
  ChunkSize,
  ChunkExtension,
  ChunkSizeLf,
  ChunkData,
  ChunkDataCr,
  ChunkDataLf,
  TrailerLineStart,
  TrailerLine,
  TrailerLineLf,
  TrailerEndLf,
  Done,
}

const CR = 0x0d;
const LF = 0x0a;

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

export class ResponseParser {
  private state = State.Done;
  private sink: ResponseSink | undefined;
  private noBody = false;
  /** Head bytes received so far when a head spans several chunks. */
  private partialHead: Buffer | undefined;
  private remaining = 0;
  private lineBytes = 0;
  private sawChunkDigit = false;
  /** Whether the connection may carry another request once this response is done. */
  reusable = false;
  /** The idle time the upstream announced with `Keep-Alive: timeout=N`, in ms; undefined if none. */
  keepAliveMs: number | undefined;
  /** True once a final (non-1xx) head has been passed to the sink. */
  headDone = false;
  /** Bytes that arrived after the end of the response: a protocol error without pipelining. */
  trailingBytes = false;

  /** Expects a new response; `noBody` for the answer to a HEAD request. */
  reset(sink: ResponseSink, noBody: boolean): void {
    this.sink = sink;
    this.noBody = noBody;
    this.state = State.Head;
    this.partialHead = undefined;
    this.reusable = false;
    this.keepAliveMs = undefined;
    this.headDone = false;
    this.trailingBytes = false;
  }

  get done(): boolean {
    return this.state === State.Done;
  }

  /** Whether the response so far ends only when the connection closes. */
  get closeDelimited(): boolean {
    return this.state === State.CloseBody;
  }

  /** Parses one chunk of the connection's input; throws ResponseParseError on a malformed response. */
  execute(chunk: Buffer): void {
    let at = 0;
    const length = chunk.length;
    while (at < length) {
      switch (this.state) {
        case State.Head:
          at = this.readHead(chunk, at);
          break;
        case State.LengthBody: {
          const take = Math.min(this.remaining, length - at);
          this.remaining -= take;
          const body = at === 0 && take === length ? chunk : chunk.subarray(at, at + take);
          at += take;
          if (this.remaining === 0) this.state = State.Done;
          this.sink!.onResponseBody(body);
          if (this.state === State.Done) this.sink!.onResponseEnd();
          break;
        }
        case State.CloseBody:
          this.sink!.onResponseBody(at === 0 ? chunk : chunk.subarray(at));
          at = length;
          break;
        case State.ChunkData: {
          const take = Math.min(this.remaining, length - at);
          this.remaining -= take;
          const body = chunk.subarray(at, at + take);
          at += take;
          if (this.remaining === 0) this.state = State.ChunkDataCr;
          this.sink!.onResponseBody(body);
          break;
        }
        case State.Done:
          this.trailingBytes = true;
          this.reusable = false;
          return;
        default:
          at = this.readChunkFraming(chunk, at);
      }
    }
  }

  /** The connection's input ended: completes a close-delimited body, else throws. */
  finish(): void {
    if (this.state === State.CloseBody) {
      this.state = State.Done;
      this.sink!.onResponseEnd();
      return;
    }
    if (this.state !== State.Done)
      throw new ResponseParseError('the upstream closed the connection before the response ended');
  }

  private readHead(chunk: Buffer, at: number): number {
    let input = at === 0 ? chunk : chunk.subarray(at);
    // Where to search: a CRLFCRLF may straddle the previous part and this one.
    let searchFrom = 0;
    if (this.partialHead !== undefined) {
      searchFrom = Math.max(0, this.partialHead.length - 3);
      input = Buffer.concat([this.partialHead, input]);
      this.partialHead = undefined;
    }
    const end = input.indexOf(HEAD_END, searchFrom);
    if (end < 0) {
      if (input.length > MAX_HEAD_BYTES) throw new ResponseParseError('response head too large');
      this.partialHead = Buffer.from(input); // a copy: the socket's buffer is not ours to keep
      return chunk.length;
    }
    if (end > MAX_HEAD_BYTES) throw new ResponseParseError('response head too large');
    const consumedOfInput = end + 4;
    // Bytes of this chunk consumed: the input may begin with earlier chunks' bytes.
    const next = chunk.length - (input.length - consumedOfInput);
    this.parseHead(input.toString('latin1', 0, end));
    return next;
  }

  private parseHead(head: string): void {
    if (INVALID_HEAD_CHAR.test(head)) throw new ResponseParseError('invalid character in the response head');
    const lines = head.split('\r\n');
    const match = STATUS_LINE.exec(lines[0] as string);
    if (!match) throw new ResponseParseError('malformed status line');
    const status = Number(match[2]);
    const http10 = match[1] === '0';
    const headers: string[] = [];
    let contentLength = -1;
    let chunked = false;
    let transferEncoding = false;
    let connectionClose = http10;
    let keepAliveMs: number | undefined;
    for (let i = 1; i < lines.length; i += 1) {
      const line = lines[i] as string;
      const colon = line.indexOf(':');
      if (colon <= 0) throw new ResponseParseError('malformed header line');
      const name = line.slice(0, colon);
      if (!TOKEN.test(name)) throw new ResponseParseError('malformed header name');
      const value = line.slice(colon + 1).trim();
      headers.push(name, value);
      switch (name.length) {
        case 10:
          if (name.toLowerCase() === 'connection') {
            const tokens = value.toLowerCase();
            if (/(^|,)\s*close\s*(,|$)/.test(tokens)) connectionClose = true;
            else if (http10 && /(^|,)\s*keep-alive\s*(,|$)/.test(tokens)) connectionClose = false;
          } else if (name.toLowerCase() === 'keep-alive') {
            const timeout = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i.exec(value);
            if (timeout) keepAliveMs = Number(timeout[1]) * 1000;
          }
          break;
        case 14:
          if (name.toLowerCase() === 'content-length') {
            const length = parseContentLength(value);
            if (length < 0 || (contentLength >= 0 && length !== contentLength))
              throw new ResponseParseError('invalid Content-Length');
            contentLength = length;
          }
          break;
        case 17:
          if (name.toLowerCase() === 'transfer-encoding') {
            transferEncoding = true;
            // Only the last coding decides; a later header line adds codings after this one's.
            chunked = /(^|,)\s*chunked\s*$/i.test(value);
          }
          break;
      }
    }
    if (status < 200) {
      if (status === 101) throw new ResponseParseError('unexpected 101 Switching Protocols');
      return; // interim response: the final one follows
    }
    this.headDone = true;
    this.keepAliveMs = keepAliveMs;
    this.reusable = !connectionClose;
    if (this.noBody || status === 204 || status === 304) {
      this.state = State.Done;
    } else if (transferEncoding) {
      // Both framings at once may be a smuggling attempt: chunked wins, the connection is not reused.
      if (contentLength >= 0) this.reusable = false;
      if (chunked) {
        this.state = State.ChunkSize;
        this.remaining = 0;
        this.lineBytes = 0;
        this.sawChunkDigit = false;
      } else {
        this.state = State.CloseBody;
        this.reusable = false;
      }
    } else if (contentLength >= 0) {
      this.state = contentLength === 0 ? State.Done : State.LengthBody;
      this.remaining = contentLength;
    } else {
      this.state = State.CloseBody;
      this.reusable = false;
    }
    const sink = this.sink!;
    sink.onResponseHead(status, match[3] ?? '', headers);
    if (this.state === State.Done) sink.onResponseEnd();
  }

  private readChunkFraming(chunk: Buffer, at: number): number {
    const length = chunk.length;
    while (at < length) {
      const code = chunk[at] as number;
      switch (this.state) {
        case State.ChunkSize: {
          const digit = hexValue(code);
          if (digit >= 0) {
            this.remaining = this.remaining * 16 + digit;
            this.sawChunkDigit = true;
            if (this.remaining > Number.MAX_SAFE_INTEGER)
              throw new ResponseParseError('chunk size too large');
          } else if (!this.sawChunkDigit) {
            throw new ResponseParseError('malformed chunk size');
          } else if (code === CR) {
            this.state = State.ChunkSizeLf;
          } else if (code === 0x3b || code === 0x20 || code === 0x09) {
            this.state = State.ChunkExtension;
          } else {
            throw new ResponseParseError('malformed chunk size');
          }
          break;
        }
        case State.ChunkExtension:
          if (code === CR) this.state = State.ChunkSizeLf;
          else if (code === LF || ++this.lineBytes > MAX_CHUNK_LINE_BYTES)
            throw new ResponseParseError('malformed chunk extension');
          break;
        case State.ChunkSizeLf:
          if (code !== LF) throw new ResponseParseError('malformed chunk size line');
          this.lineBytes = 0;
          if (this.remaining === 0) {
            this.state = State.TrailerLineStart;
          } else {
            this.state = State.ChunkData;
            return at + 1;
          }
          break;
        case State.ChunkDataCr:
          if (code !== CR) throw new ResponseParseError('chunk data longer than its size');
          this.state = State.ChunkDataLf;
          break;
        case State.ChunkDataLf:
          if (code !== LF) throw new ResponseParseError('chunk data longer than its size');
          this.state = State.ChunkSize;
          this.remaining = 0;
          this.sawChunkDigit = false;
          break;
        case State.TrailerLineStart:
          this.state = code === CR ? State.TrailerEndLf : State.TrailerLine;
          this.countTrailerByte();
          break;
        case State.TrailerLine:
          if (code === CR) this.state = State.TrailerLineLf;
          else if (code === LF) throw new ResponseParseError('malformed trailer');
          this.countTrailerByte();
          break;
        case State.TrailerLineLf:
          if (code !== LF) throw new ResponseParseError('malformed trailer');
          this.state = State.TrailerLineStart;
          break;
        case State.TrailerEndLf:
          if (code !== LF) throw new ResponseParseError('malformed trailer');
          this.state = State.Done;
          this.sink!.onResponseEnd();
          return at + 1;
        default:
          return at;
      }
      at += 1;
    }
    return at;
  }

  private countTrailerByte(): void {
    if (++this.lineBytes > MAX_TRAILER_BYTES) throw new ResponseParseError('trailers too large');
  }
}

/** A Content-Length value (a list of equal values is allowed, RFC 9110 8.6), or -1 when invalid. */
function parseContentLength(value: string): number {
  let length = -1;
  for (const part of value.split(',')) {
    const text = part.trim();
    if (!/^\d{1,15}$/.test(text)) return -1;
    const parsed = Number(text);
    if (length >= 0 && parsed !== length) return -1;
    length = parsed;
  }
  return length;
}
