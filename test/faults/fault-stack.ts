/**
 * The servers the fault suite breaks, all real and on loopback: a Temporal dev server on a SQLite
 * file, FerretDB, two upstreams, the built-in proxy (with its state file) and HAProxy in front of
 * them, two alert receivers (one that never answers) and the rollout worker as a child process
 * with the real routers, alert sinks and tick store (test/support/worker-main.ts, `real-routing`).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BuiltinProxyServer } from '../../devstack/builtin-proxy';
import { HaproxyServer } from '../../devstack/haproxy';
import { ManagedProcess } from '../../devstack/managed-process';
import { freePort } from '../../devstack/ports';
import { projectRoot } from '../../devstack/tools';
import { renderHaproxyBackend } from '../../routing/haproxy-router';
import { createRouter, validateRouterSpec } from '../../routing/routers';
import type { AdapterSpec, RolloutSpec } from '../../rollout/spec';
import { HttpReceiver } from '../alerts/receiver';
import { startTestServers, workflowBundle, type TestServers } from '../support/environment';
import { TestUpstream } from '../routing/support';

export const TASK_QUEUE = 'faults';
const WEBHOOK_SECRET_ENV = 'FAULTS_WEBHOOK_SECRET';

export class FaultStack {
  worker: ManagedProcess | undefined;
  /** The token the worker sends; a test rotates the proxy's and then fixes the worker's. */
  workerProxyToken: string;
  private workerStarts = 0;

  private constructor(
    readonly servers: TestServers,
    readonly baseline: TestUpstream,
    readonly canary: TestUpstream,
    public proxy: BuiltinProxyServer,
    public proxyToken: string,
    readonly haproxy: HaproxyServer,
    readonly haproxySpec: AdapterSpec,
    readonly alerts: HttpReceiver,
    readonly hangingSink: HangingServer,
    private readonly bundlePath: string,
    readonly webhookSecret: string,
  ) {
    this.workerProxyToken = proxyToken;
  }

  static async start(): Promise<FaultStack> {
    const servers = await startTestServers('faults');
    const started: { stop(): Promise<unknown> }[] = [];
    try {
      return await FaultStack.startOn(servers, started);
    } catch (error) {
      // Nothing left running when a server does not start: jest would wait for it for ever.
      await Promise.all(started.map((server) => server.stop().catch(() => undefined)));
      await servers.stop();
      throw error;
    }
  }

  private static async startOn(
    servers: TestServers,
    started: { stop(): Promise<unknown> }[],
  ): Promise<FaultStack> {
    const dir = servers.dataDir;
    const [baseline, canary, alerts, hangingSink] = await Promise.all([
      TestUpstream.start('baseline'),
      TestUpstream.start('canary'),
      HttpReceiver.start(),
      HangingServer.start(),
    ]);
    started.push(baseline, canary, alerts, hangingSink);
    const targets = { baseline: { url: baseline.url }, canary: { url: canary.url } };
    const proxyToken = randomBytes(18).toString('base64url');
    const proxy = await startProxy(dir, targets, proxyToken);
    started.push(proxy);
    const haproxySpec: AdapterSpec = {
      kind: 'haproxy',
      runtimeApi: path.join(dir, 'haproxy', 'admin.sock'),
      backend: 'shop',
      settleTimeout: '1500ms',
      healthCheck: { path: '/healthz', interval: '200ms' },
    };
    const config = validateRouterSpec(haproxySpec, targets);
    if (config.kind !== 'haproxy') throw new Error('expected a haproxy config');
    const haproxy = await HaproxyServer.start({
      dir: path.join(dir, 'haproxy'),
      listen: `127.0.0.1:${await freePort()}`,
      backends: renderHaproxyBackend(config.options, targets),
      defaultBackend: 'shop',
      logFile: path.join(dir, 'haproxy.log'),
    });
    started.push(haproxy);
    const bundlePath = path.join(dir, 'workflow-bundle.js');
    writeFileSync(bundlePath, (await workflowBundle()).code);
    const stack = new FaultStack(
      servers,
      baseline,
      canary,
      proxy,
      proxyToken,
      haproxy,
      haproxySpec,
      alerts,
      hangingSink,
      bundlePath,
      randomBytes(18).toString('base64url'),
    );
    await stack.startWorker();
    return stack;
  }

  get targets(): RolloutSpec['targets'] {
    return { baseline: { url: this.baseline.url }, canary: { url: this.canary.url } };
  }

  get builtinSpec(): AdapterSpec {
    return { kind: 'builtin', adminUrl: this.proxy.adminUrl, tokenEnv: 'CANARY_PROXY_TOKEN', timeout: '2s' };
  }

  webhook(receiver: { url: string }, name: string): AdapterSpec {
    return {
      kind: 'webhook',
      name,
      url: `${receiver.url}/hooks`,
      secretEnv: WEBHOOK_SECRET_ENV,
      timeout: '1s',
    };
  }

  /** The share the real router applies now, read through its own adapter. */
  async routerShare(router: AdapterSpec): Promise<number> {
    const adapter = createRouter(router, this.targets, { CANARY_PROXY_TOKEN: this.proxyToken });
    try {
      return await adapter.getCanaryWeight();
    } finally {
      await adapter.close();
    }
  }

  /** Restarts the proxy on its ports and state file with a new admin token (a rotation). */
  async rotateProxyToken(): Promise<void> {
    await this.proxy.stop();
    this.proxyToken = randomBytes(18).toString('base64url');
    this.proxy = await startProxy(this.servers.dataDir, this.targets, this.proxyToken, {
      port: this.proxy.port,
      adminPort: this.proxy.adminPort,
    });
  }

  async startWorker(): Promise<ManagedProcess> {
    this.workerStarts += 1;
    const logFile = path.join(this.servers.dataDir, `worker-${this.workerStarts}.log`);
    this.worker = await ManagedProcess.start({
      name: `fault worker ${this.workerStarts}`,
      command: process.execPath,
      args: ['--import', 'tsx', path.join(projectRoot, 'test/support/worker-main.ts')],
      env: {
        TEMPORAL_ADDRESS: this.servers.temporal.address,
        CANARY_MONGO_URI: this.servers.ferret.uri,
        CANARY_MONGO_DB: this.servers.db.databaseName,
        TASK_QUEUE,
        WORKFLOW_BUNDLE: this.bundlePath,
        WORKER_COMPONENTS: 'real-routing',
        CANARY_PROXY_TOKEN: this.workerProxyToken,
        [WEBHOOK_SECRET_ENV]: this.webhookSecret,
      },
      cwd: projectRoot,
      logFile,
      readyTimeoutMs: 60_000,
      isReady: async () => readFileSync(logFile, 'utf8').includes('worker running'),
    });
    return this.worker;
  }

  async stop(): Promise<void> {
    await this.worker?.stop();
    await Promise.all([
      this.proxy.stop(),
      this.haproxy.stop(),
      this.alerts.stop(),
      this.hangingSink.stop(),
      this.baseline.stop(),
      this.canary.stop(),
    ]).catch(() => undefined);
    await this.servers.stop();
  }
}

function startProxy(
  dir: string,
  targets: RolloutSpec['targets'],
  token: string,
  ports: { port?: number; adminPort?: number } = {},
): Promise<BuiltinProxyServer> {
  return BuiltinProxyServer.start({
    baseline: targets.baseline.url,
    canary: targets.canary.url,
    adminToken: token,
    ...ports,
    flags: [
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
}

/** An alert sink that accepts connections and reads requests but never answers. */
export class HangingServer {
  /** Everything the sink was sent, for a test to see it was tried. */
  received = '';
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server) {}

  static async start(): Promise<HangingServer> {
    const server = net.createServer();
    const hanging = new HangingServer(server);
    server.on('connection', (socket) => {
      hanging.sockets.add(socket);
      socket.on('data', (chunk: Buffer) => (hanging.received += chunk.toString('utf8')));
      socket.on('close', () => hanging.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return hanging;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
