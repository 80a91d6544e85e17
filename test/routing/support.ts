/**
 * Real servers for the router tests: two upstream HTTP servers that answer with their role, the
 * three routers each started as a real process in front of them, and a small load generator.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Pool, type Dispatcher } from 'undici';
import { renderHaproxyBackend } from '../../routing/haproxy-router';
import { renderNginxInclude } from '../../routing/nginx-router';
import { validateRouterSpec } from '../../routing/routers';
import { BuiltinProxyServer } from '../../devstack/builtin-proxy';
import { HaproxyServer } from '../../devstack/haproxy';
import { NginxServer, nginxProxyHttp } from '../../devstack/nginx';
import { freePort } from '../../devstack/ports';
import type { AdapterSpec, RolloutSpec } from '../../rollout/spec';
import type { RolloutActivityDeps } from '../../activities';
import type { RouterRegistry } from '../../routing/routers';
import { emptyWorkerPolicy } from '../../rollout/worker-policy';

export type Role = 'baseline' | 'canary';

/** An upstream that answers every request with its role; /healthz for health checks. */
export class TestUpstream {
  private server: http.Server | undefined;

  private constructor(
    readonly role: Role,
    readonly port: number,
  ) {}

  static async start(role: Role): Promise<TestUpstream> {
    const upstream = new TestUpstream(role, await freePort());
    await upstream.start();
    return upstream;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(req.url === '/healthz' ? 'ok' : this.role);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.server = server;
  }

  /** Gone at once, keep-alive connections included: what a crashed upstream looks like. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }
}

export interface Tally {
  baseline: number;
  canary: number;
  failed: number;
  /** Requests sent again because the connection closed before any response (see sendOne). */
  retried: number;
  errors: string[];
}

function newTally(): Tally {
  return { baseline: 0, canary: 0, failed: 0, retried: 0, errors: [] };
}

/**
 * One GET. As browsers do and RFC 9112 section 9.3.1 allows, a GET whose kept-alive connection
 * closed (or was reset) before any response is sent once more on a new connection, and counted
 * as retried. A failure after the response started is never retried.
 */
async function sendOne(pool: Pool, tally: Tally): Promise<void> {
  const fail = (reason: string) => {
    tally.failed += 1;
    if (tally.errors.length < 5) tally.errors.push(reason);
  };
  for (let attempt = 0; attempt < 2; attempt += 1) {
    let response: Dispatcher.ResponseData;
    try {
      response = await pool.request({ path: '/', method: 'GET' });
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (attempt === 0 && (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET')) {
        tally.retried += 1;
        continue;
      }
      return fail(error instanceof Error ? error.message : String(error));
    }
    try {
      const body = await response.body.text();
      if (response.statusCode === 200 && (body === 'baseline' || body === 'canary')) tally[body] += 1;
      else fail(`status ${response.statusCode}: ${body.slice(0, 80)}`);
    } catch (error) {
      fail(`after the response started: ${error instanceof Error ? error.message : String(error)}`);
    }
    return;
  }
}

/** `count` GET requests over keep-alive connections, `concurrency` at a time; no cookies kept. */
export async function sendRequests(url: string, count: number, concurrency = 16): Promise<Tally> {
  const pool = new Pool(url, { connections: concurrency });
  const tally = newTally();
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) {
          next += 1;
          await sendOne(pool, tally);
        }
      }),
    );
  } finally {
    await pool.close();
  }
  return tally;
}

/** Runs `work` while requests flow without pause; counts every answer and every failure. */
export async function underLoad(
  url: string,
  concurrency: number,
  work: () => Promise<void>,
): Promise<Tally & { sent: number }> {
  const pool = new Pool(url, { connections: concurrency });
  const tally = newTally();
  let sent = 0;
  let running = true;
  const workers = Array.from({ length: concurrency }, async () => {
    while (running) {
      sent += 1;
      await sendOne(pool, tally);
    }
  });
  try {
    await work();
  } finally {
    running = false;
    await Promise.all(workers);
    await pool.close();
  }
  return { ...tally, sent };
}

/** A browser-like user: keeps the sticky cookie it is given and sends it back. */
export class StickyUser {
  private cookie: string | undefined;

  constructor(private readonly cookieName: string) {}

  async visit(url: string, visits: number): Promise<Role[]> {
    const pool = new Pool(url, { connections: 1 });
    const sides: Role[] = [];
    try {
      for (let i = 0; i < visits; i += 1) {
        const headers: Record<string, string> = this.cookie ? { cookie: this.cookie } : {};
        const response = await pool.request({ path: '/', method: 'GET', headers });
        const body = await response.body.text();
        const setCookie = ([] as string[]).concat(response.headers['set-cookie'] ?? []);
        const ours = setCookie.find((value) => value.startsWith(`${this.cookieName}=`));
        if (ours) this.cookie = ours.split(';')[0];
        if (body !== 'baseline' && body !== 'canary')
          throw new Error(`visit failed: ${response.statusCode} ${body}`);
        sides.push(body);
      }
    } finally {
      await pool.close();
    }
    return sides;
  }
}

/**
 * Half-width of the acceptance band for a binomial count: `sigmas` standard deviations plus one
 * for rounding. At 5 sigma a correct router fails the check about once in 1.7 million runs.
 */
export function binomialTolerance(requests: number, share: number, sigmas = 5): number {
  const p = share / 100;
  return sigmas * Math.sqrt(requests * p * (1 - p)) + 1;
}

export async function eventually(check: () => Promise<void>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

export const STICKY_COOKIE = 'canary_user';

/** Somewhere nothing listens: routers start pointed at it so reconcile has something to fix. */
const NOWHERE = 'http://127.0.0.1:9';

/** A router started as a real process in front of the two upstreams, with its rollout spec. */
export interface RouterHarness {
  kind: string;
  spec: AdapterSpec;
  env: NodeJS.ProcessEnv;
  /** Where clients send traffic. */
  trafficUrl: string;
  /**
   * NGINX applies a weight by a graceful reload, whose old workers close idle keep-alive
   * connections: a request sent on one at that moment must be retried by the client.
   */
  closesIdleConnectionsOnChange: boolean;
  stopRouter(): Promise<void>;
  restartRouter(): Promise<void>;
  close(): Promise<void>;
}

export type HarnessFactory = (dir: string, targets: RolloutSpec['targets']) => Promise<RouterHarness>;

export const startBuiltinHarness: HarnessFactory = async (dir, targets) => {
  const token = randomBytes(24).toString('hex');
  const proxy = await BuiltinProxyServer.start({
    baseline: targets.baseline.url,
    canary: NOWHERE,
    adminToken: token,
    flags: [
      '--sticky-cookie',
      STICKY_COOKIE,
      '--health-path',
      '/healthz',
      '--health-interval',
      '200ms',
      '--health-timeout',
      '150ms',
      '--state-file',
      path.join(dir, 'proxy-state.json'),
    ],
    logFile: path.join(dir, 'builtin-proxy.log'),
  });
  return {
    kind: 'builtin',
    spec: { kind: 'builtin', adminUrl: proxy.adminUrl, tokenEnv: 'CANARY_TEST_PROXY_TOKEN' },
    env: { CANARY_TEST_PROXY_TOKEN: token },
    trafficUrl: proxy.url,
    closesIdleConnectionsOnChange: false,
    stopRouter: () => proxy.stop(),
    restartRouter: () => proxy.restart(),
    close: () => proxy.stop(),
  };
};

export const startHaproxyHarness: HarnessFactory = async (dir, targets) => {
  const port = await freePort();
  const socketPath = path.join(dir, 'admin.sock');
  const spec: AdapterSpec = {
    kind: 'haproxy',
    runtimeApi: socketPath,
    backend: 'shop',
    settleTimeout: '1500ms',
    sticky: { by: 'cookie', name: STICKY_COOKIE },
    healthCheck: { path: '/healthz', interval: '200ms' },
  };
  const config = validateRouterSpec(spec);
  if (config.kind !== 'haproxy') throw new Error('expected a haproxy config');
  const haproxy = await HaproxyServer.start({
    dir,
    listen: `127.0.0.1:${port}`,
    backends: renderHaproxyBackend(config.options, { baseline: targets.baseline, canary: { url: NOWHERE } }),
    defaultBackend: 'shop',
    logFile: path.join(dir, 'haproxy.log'),
  });
  if (haproxy.socketPath !== socketPath) throw new Error(`haproxy listens on ${haproxy.socketPath}`);
  return {
    kind: 'haproxy',
    spec,
    env: {},
    trafficUrl: `http://127.0.0.1:${port}`,
    closesIdleConnectionsOnChange: false,
    stopRouter: () => haproxy.stop(),
    restartRouter: () => haproxy.restart(),
    close: () => haproxy.stop(),
  };
};

export const startNginxHarness: HarnessFactory = async (dir, targets) => {
  const port = await freePort();
  const statusListen = `127.0.0.1:${await freePort()}`;
  const includeFile = path.join(dir, 'canary-shop.conf');
  const rendering = {
    upstream: 'shop',
    statusListen,
    sticky: { by: 'cookie', name: STICKY_COOKIE },
    keepalive: 32,
  } as const;
  writeFileSync(
    includeFile,
    renderNginxInclude(
      rendering,
      { baseline: targets.baseline, canary: { url: NOWHERE } },
      { generation: 1, share: 0 },
    ),
  );
  const nginx = await NginxServer.start({
    dir,
    readyPort: port,
    http: nginxProxyHttp({ includeFile, listen: `127.0.0.1:${port}`, upstream: 'shop', stickyCookie: true }),
    logFile: path.join(dir, 'nginx.log'),
  });
  return {
    kind: 'nginx',
    spec: {
      kind: 'nginx',
      configFile: nginx.configFile,
      prefix: nginx.prefix,
      includeFile,
      pidFile: nginx.pidFile,
      upstream: 'shop',
      statusListen,
      sticky: { by: 'cookie', name: STICKY_COOKIE },
      healthPath: '/healthz',
      keepalive: 32,
      reloadTimeout: '5s',
    },
    env: {},
    trafficUrl: `http://127.0.0.1:${port}`,
    closesIdleConnectionsOnChange: true,
    stopRouter: () => nginx.stop(),
    restartRouter: () => nginx.restart(),
    close: () => nginx.stop(),
  };
};
/** Only the router port is used by these activities; the others fail loudly if touched. */
export function routingOnlyDeps(routers: RouterRegistry): RolloutActivityDeps {
  const unused = (name: string) => () =>
    Promise.reject(new Error(`${name} is not part of the routing tests`));
  return {
    profiles: { select: unused('profiles') },
    metrics: { collect: unused('metrics') },
    analyzer: { analyze: unused('analyzer') },
    routers,
    alerts: { dispatch: unused('alerts') },
    ticks: { recordTick: unused('ticks') },
    workerPolicy: emptyWorkerPolicy('production'),
  };
}
