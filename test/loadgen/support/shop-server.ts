/**
 * A small real HTTP server for the traffic generator's tests: it answers the default ontology's
 * routes like the sample shop would and records every request it receives (with its arrival time
 * and the generator's tag), so tests can check what was actually sent, in what order and when.
 * It can stall (hold every response until a moment) to test coordinated omission.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  path: string;
  body: string;
  cookie: string | undefined;
  userAgent: string | undefined;
  /** From the x-canary-probe tag: the session number and the step within it. */
  session: number | undefined;
  seq: number | undefined;
  /** Epoch ms (with fractions) when the request's head arrived. */
  at: number;
}

const now = () => performance.timeOrigin + performance.now();

export class ShopServer {
  readonly requests: SeenRequest[] = [];
  /** Responses to requests arriving in [from, until) are held until `until` (epoch ms). */
  stall: { from: number; until: number } | null = null;
  /** Sets `stall` relative to the first request that arrives (the run's start). */
  stallAfterFirst: { afterMs: number; forMs: number } | null = null;

  private constructor(private readonly server: http.Server) {}

  static async start(): Promise<ShopServer> {
    const server = http.createServer({ keepAliveTimeout: 30_000 });
    const shop = new ShopServer(server);
    server.on('request', (request, response) => shop.handle(request, response));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return shop;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  reset(): void {
    this.requests.length = 0;
    this.stall = null;
    this.stallAfterFirst = null;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    const at = now();
    if (this.stallAfterFirst && this.requests.length === 0 && !this.stall) {
      const from = at + this.stallAfterFirst.afterMs;
      this.stall = { from, until: from + this.stallAfterFirst.forMs };
    }
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const tag = String(request.headers['x-canary-probe'] ?? '');
      const session = /session=(\d+)/.exec(tag)?.[1];
      const seq = /seq=(\d+)/.exec(tag)?.[1];
      const seen: SeenRequest = {
        method: request.method ?? 'GET',
        path: request.url ?? '/',
        body: Buffer.concat(chunks).toString('utf8'),
        cookie: request.headers.cookie,
        userAgent: request.headers['user-agent'],
        session: session === undefined ? undefined : Number(session),
        seq: seq === undefined ? undefined : Number(seq),
        at,
      };
      this.requests.push(seen);
      const answer = () => this.route(seen, response);
      const stall = this.stall;
      if (stall && at >= stall.from && at < stall.until) setTimeout(answer, stall.until - now());
      else answer();
    });
  }

  private route(seen: SeenRequest, response: http.ServerResponse): void {
    const url = new URL(seen.path, 'http://shop');
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      response.writeHead(status, { 'content-type': 'application/json', ...headers });
      response.end(JSON.stringify(body));
    };
    const route = `${seen.method} ${url.pathname}`;
    if (route === 'GET /search') return json(200, { results: [url.searchParams.get('q')] });
    if (seen.method === 'GET' && url.pathname.startsWith('/products/')) {
      const id = url.pathname.slice('/products/'.length);
      return id === 'nojson' ? json(200, { name: 'no id field' }) : json(200, { id });
    }
    if (route === 'POST /cart/items') return json(201, { items: [JSON.parse(seen.body || '{}')] });
    if (route === 'POST /login')
      return json(200, { token: 't' }, { 'set-cookie': 'session=s-123; Path=/; HttpOnly' });
    if (route === 'POST /checkout') {
      if (!seen.cookie?.includes('session=s-123')) return json(401, { error: 'not signed in' });
      return json(201, { order_id: 'o-1' });
    }
    if (route === 'POST /upload') return json(201, { id: 'u-1', size: seen.body.length });
    if (route === 'GET /api/status') return json(200, { ok: true });
    if (route === 'GET /api/broken') return json(500, { error: 'boom' });
    if (route === 'GET /api/slow') {
      setTimeout(() => json(200, { ok: true }), 2000);
      return;
    }
    if (route === 'GET /api/big') {
      response.writeHead(200, { 'content-type': 'application/octet-stream' });
      response.end(Buffer.alloc(256 * 1024, 120));
      return;
    }
    if (route === 'GET /api/redirect') {
      response.writeHead(302, { location: '/api/status' });
      response.end();
      return;
    }
    if (route === 'GET /api/away') {
      response.writeHead(302, { location: 'http://10.255.255.1/' });
      response.end();
      return;
    }
    response.writeHead(200, { 'content-type': 'text/html' });
    response.end('<html>shop</html>');
  }
}

/** A profile as the store or a file holds it, for the default ontology. */
export function profile(
  userId: string,
  patterns: { t: number; action: string; data?: Record<string, string | number> }[],
) {
  return {
    user_id: userId,
    behavioral_patterns: patterns.map((pattern) => ({
      timestamp: pattern.t,
      action: pattern.action,
      ...(pattern.data ? { data: pattern.data } : {}),
    })),
    resource_intensity: { period_ms: 60_000 },
    geo_location: { country: 'DE' },
    device_type: 'desktop' as const,
  };
}
