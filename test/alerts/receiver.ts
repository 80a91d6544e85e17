/**
 * A real HTTP server on loopback that records what it receives: the other end of a webhook, a
 * Slack-compatible incoming webhook, or Alertmanager's webhook receiver. Answers can be scripted
 * (a status per request, in order; 200 once the script runs out) to test retries.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}

export interface ScriptedAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Answer only after this long (to test client timeouts). */
  delayMs?: number;
}

export class HttpReceiver {
  readonly requests: ReceivedRequest[] = [];
  private readonly script: ScriptedAnswer[] = [];
  private readonly pathScripts = new Map<string, ScriptedAnswer[]>();
  private waiters: (() => void)[] = [];

  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<HttpReceiver> {
    const server = http.createServer();
    const receiver = new HttpReceiver(server);
    server.on('request', (request, response) => receiver.handle(request, response));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The next answers, in order. */
  answer(...answers: ScriptedAnswer[]): void {
    this.script.push(...answers);
  }

  /** The next answers to requests for `path` only (before the shared script). */
  answerPath(path: string, ...answers: ScriptedAnswer[]): void {
    const script = this.pathScripts.get(path) ?? [];
    script.push(...answers);
    this.pathScripts.set(path, script);
  }

  json<T>(index: number): T {
    const request = this.requests[index];
    if (!request) throw new Error(`no request #${index} (got ${this.requests.length})`);
    return JSON.parse(request.body) as T;
  }

  /** Resolves once `count` requests have arrived. */
  async received(count: number, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.requests.length < count) {
      if (Date.now() > deadline)
        throw new Error(`expected ${count} requests within ${timeoutMs} ms, got ${this.requests.length}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  reset(): void {
    this.requests.length = 0;
    this.script.length = 0;
    this.pathScripts.clear();
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      this.requests.push({
        method: request.method ?? '',
        path: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      });
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
      const answer = this.pathScripts.get(request.url ?? '')?.shift() ??
        this.script.shift() ?? { status: 200, body: 'ok' };
      setTimeout(() => {
        if (response.destroyed) return;
        response.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers });
        response.end(answer.body ?? '');
      }, answer.delayMs ?? 0);
    });
  }
}
