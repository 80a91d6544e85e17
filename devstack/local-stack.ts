/**
 * The embedded local stack: everything a rollout needs, on loopback, with its data under one
 * folder (`.data/` by default) so it survives a restart. Ports and secrets chosen on the first
 * start are kept in `<dataDir>/stack.json` and reused, because running rollouts have the target
 * and router URLs in their history.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { request } from 'undici';
import type { ShopFaults } from '../examples/shop/faults';
import { temporalWorkflowUrl } from '../rollout/links';
import { generateProfiles } from '../profiles/generator';
import { PROFILE_EQUALITY_FIELDS, PROFILES_COLLECTION, ProfileStore } from '../profiles/store';
import { BuiltinProxyServer } from './builtin-proxy';
import { FerretDbServer, embeddedBackend } from './ferretdb';
import { NodeService } from './node-service';
import { freePort, isListening } from './ports';
import { TemporalDevServer } from './temporal-server';

export interface StackPorts {
  temporal: number;
  temporalUi: number;
  mongo: number;
  baseline: number;
  canary: number;
  proxy: number;
  proxyAdmin: number;
  api: number;
  profilesApi: number;
}

export const PREFERRED_PORTS: StackPorts = {
  temporal: 7233,
  temporalUi: 8233,
  mongo: 27017,
  baseline: 9081,
  canary: 9082,
  proxy: 9080,
  proxyAdmin: 9079,
  api: 8080,
  profilesApi: 8090,
};

interface StackState {
  ports: StackPorts;
  proxyToken: string;
  apiToken: string;
  shopAdminToken: string;
}

export interface LocalStackOptions {
  dataDir: string;
  /** Faults the canary starts with (the demo's regression scenario after a restart). */
  canaryFaults?: ShopFaults;
  /** Profiles generated into an empty store. */
  profiles?: number;
  log?: (line: string) => void;
}

export const MONGO_DB = 'canary';

function faultFlags(faults: ShopFaults | undefined): string[] {
  if (!faults) return [];
  return [
    ...faults.latency.flatMap((f) => ['--latency', `${f.action}:${f.extraMs}ms@${f.fraction}`]),
    ...faults.errors.flatMap((f) => ['--errors', `${f.action}:${f.rate}`]),
    ...faults.cpu.flatMap((f) => ['--cpu', `${f.action}:${f.ms}ms`]),
    ...(faults.leakBytesPerSecond > 0 ? ['--leak', String(faults.leakBytesPerSecond)] : []),
    ...(faults.load ?? []).flatMap((f) => ['--load', `${f.action}:${f.extraMs}ms@${f.aboveRps}rps`]),
    ...(faults.activeForMs === undefined ? [] : ['--active-for', `${faults.activeForMs}ms`]),
  ];
}

async function loadOrChooseState(file: string): Promise<StackState> {
  const saved = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Partial<StackState>) : {};
  const busy: string[] = [];
  for (const [name, port] of Object.entries(saved.ports ?? {}) as [string, number][]) {
    if (await isListening(port)) busy.push(`${name} (${port})`);
  }
  if (busy.length > 0) {
    throw new Error(
      `ports of the stack in ${path.dirname(file)} are in use: ${busy.join(', ')}. Stop what uses them ` +
        '(another demo?), or remove that folder to start afresh.',
    );
  }
  // Ports and secrets saved by an earlier start are kept; only what is missing is chosen.
  const ports = { ...saved.ports } as StackPorts;
  const taken = new Set<number>(Object.values(ports));
  for (const [name, preferred] of Object.entries(PREFERRED_PORTS) as [keyof StackPorts, number][]) {
    if (ports[name] !== undefined) continue;
    let port = preferred;
    if (taken.has(port) || (await isListening(port))) {
      do port = await freePort();
      while (taken.has(port));
    }
    taken.add(port);
    ports[name] = port;
  }
  const secret = () => randomBytes(24).toString('base64url');
  const state: StackState = {
    ports,
    proxyToken: saved.proxyToken ?? secret(),
    apiToken: saved.apiToken ?? secret(),
    shopAdminToken: saved.shopAdminToken ?? secret(),
  };
  writeFileSync(file, JSON.stringify(state, null, 2), { mode: 0o600 });
  return state;
}

export class LocalStack {
  private readonly stops: (() => Promise<void>)[] = [];
  baseline!: NodeService;
  canary!: NodeService;
  proxy!: BuiltinProxyServer;
  worker!: NodeService;
  api!: NodeService;
  profilesApi!: NodeService;

  private constructor(
    readonly options: LocalStackOptions,
    readonly state: StackState,
    readonly temporal: TemporalDevServer,
    readonly ferret: FerretDbServer,
  ) {}

  static async start(options: LocalStackOptions): Promise<LocalStack> {
    const log = options.log ?? (() => undefined);
    const dataDir = path.resolve(options.dataDir);
    const logs = path.join(dataDir, 'logs');
    mkdirSync(logs, { recursive: true });
    const state = await loadOrChooseState(path.join(dataDir, 'stack.json'));
    const { ports } = state;

    log(
      `starting the Temporal dev server and FerretDB (${embeddedBackend(path.join(dataDir, 'ferretdb'))})...`,
    );
    const [temporal, ferret] = await startTogether([
      TemporalDevServer.start({
        dbFile: path.join(dataDir, 'temporal', 'temporal.db'),
        port: ports.temporal,
        uiPort: ports.temporalUi,
        logFile: path.join(logs, 'temporal.log'),
      }),
      FerretDbServer.start({
        dataDir: path.join(dataDir, 'ferretdb'),
        backend: embeddedBackend(path.join(dataDir, 'ferretdb')),
        port: ports.mongo,
        logFile: path.join(logs, 'ferretdb.log'),
      }),
    ]);
    const stack = new LocalStack(options, state, temporal, ferret);
    stack.stops.push(
      () => temporal.stop(),
      () => ferret.stop(),
    );
    try {
      await stack.startServices(log, dataDir, logs);
    } catch (error) {
      await stack.stop();
      throw error;
    }
    return stack;
  }

  private async startServices(log: (line: string) => void, dataDir: string, logs: string): Promise<void> {
    const { ports } = this.state;
    log('starting the sample shop as baseline and canary, and the built-in router...');
    const shop = (role: 'baseline' | 'canary', version: string, extra: string[]) =>
      NodeService.start({
        name: `shop ${role}`,
        entry: 'examples/shop/server.ts',
        args: ['--role', role, '--version', version, '--port', String(ports[role]), ...extra],
        env: { SHOP_ADMIN_TOKEN: this.state.shopAdminToken },
        logFile: path.join(logs, `shop-${role}.log`),
        readyUrl: `http://127.0.0.1:${ports[role]}/healthz`,
      });
    const [baseline, canary, proxy] = await startTogether([
      shop('baseline', '1.0.0', []),
      shop('canary', '1.1.0', faultFlags(this.options.canaryFaults)),
      BuiltinProxyServer.start({
        baseline: this.baselineUrl,
        canary: this.canaryUrl,
        adminToken: this.state.proxyToken,
        port: ports.proxy,
        adminPort: ports.proxyAdmin,
        flags: ['--state-file', path.join(dataDir, 'proxy-state.json'), '--sticky-cookie', 'canary_user'],
        logFile: path.join(logs, 'proxy.log'),
      }),
    ]);
    this.stops.push(
      () => baseline.stop(),
      () => canary.stop(),
      () => proxy.stop(),
    );
    Object.assign(this, { baseline, canary, proxy });

    await this.seedProfiles(log);

    log('starting the worker, the dashboard and the profiles API...');
    const common = {
      TEMPORAL_ADDRESS: this.temporal.address,
      CANARY_MONGO_URI: this.ferret.uri,
      CANARY_MONGO_DB: MONGO_DB,
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
    };
    const [worker, api, profilesApi] = await startTogether([
      NodeService.start({
        name: 'worker',
        entry: 'workers/main.ts',
        env: {
          ...common,
          CANARY_PROXY_TOKEN: this.state.proxyToken,
        },
        logFile: path.join(logs, 'worker.log'),
        readyLine: 'worker running',
        readyTimeoutMs: 120_000,
      }),
      NodeService.start({
        name: 'dashboard',
        entry: 'dashboard/server.ts',
        env: {
          ...common,
          DASHBOARD_HOST: '127.0.0.1',
          DASHBOARD_PORT: String(ports.api),
          DASHBOARD_API_TOKEN: this.state.apiToken,
          DASHBOARD_TEMPORAL_UI_URL: this.temporal.uiUrl,
        },
        logFile: path.join(logs, 'dashboard.log'),
        readyUrl: `${this.apiUrl}/healthz`,
      }),
      NodeService.start({
        name: 'profiles API',
        entry: 'profiles/api/server.ts',
        args: ['--port', String(ports.profilesApi)],
        env: { ...common, PROFILES_API_TOKEN: this.state.apiToken },
        logFile: path.join(logs, 'profiles-api.log'),
        readyUrl: `${this.profilesApiUrl}/healthz`,
      }),
    ]);
    this.stops.push(
      () => worker.stop(),
      () => api.stop(),
      () => profilesApi.stop(),
    );
    Object.assign(this, { worker, api, profilesApi });
  }

  private async seedProfiles(log: (line: string) => void): Promise<void> {
    const client = await MongoClient.connect(this.ferret.uri, { serverSelectionTimeoutMS: 10_000 });
    try {
      const store = new ProfileStore(client.db(MONGO_DB));
      await store.ensureIndexes();
      // On PostgreSQL samples are then read by sample key, without a scan.
      await this.ferret.indexPushedDownEqualities(MONGO_DB, PROFILES_COLLECTION, PROFILE_EQUALITY_FIELDS);
      const count = await store.collection.estimatedDocumentCount();
      if (count > 0) {
        log(`profile store has ${count} profiles`);
        return;
      }
      const wanted = this.options.profiles ?? 2000;
      log(`seeding the profile store with ${wanted} generated profiles...`);
      await store.load(generateProfiles({ seed: 42, count: wanted }));
    } finally {
      await client.close();
    }
  }

  get baselineUrl(): string {
    return `http://127.0.0.1:${this.state.ports.baseline}`;
  }

  get canaryUrl(): string {
    return `http://127.0.0.1:${this.state.ports.canary}`;
  }

  get proxyUrl(): string {
    return `http://127.0.0.1:${this.state.ports.proxy}`;
  }

  get proxyAdminUrl(): string {
    return `http://127.0.0.1:${this.state.ports.proxyAdmin}`;
  }

  /** The dashboard and its control API. */
  get apiUrl(): string {
    return `http://127.0.0.1:${this.state.ports.api}`;
  }

  get profilesApiUrl(): string {
    return `http://127.0.0.1:${this.state.ports.profilesApi}`;
  }

  temporalUiLink(workflowId: string): string {
    return temporalWorkflowUrl(this.temporal.uiUrl ?? '', 'default', workflowId);
  }

  /** Changes the canary's faults at run time (the demo's regression appears mid-rollout). */
  async injectCanaryFaults(faults: ShopFaults): Promise<void> {
    const response = await request(`${this.canaryUrl}/admin/faults`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.state.shopAdminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(faults),
    });
    const body = await response.body.text();
    if (response.statusCode !== 200)
      throw new Error(`canary refused the faults (${response.statusCode}): ${body}`);
  }

  /** Stops everything, last started first. */
  async stop(): Promise<void> {
    while (this.stops.length > 0)
      await this.stops
        .pop()?.()
        .catch(() => undefined);
  }
}

type Stoppable = { stop(): unknown };

/** Starts servers side by side; if one fails, stops those that did start (no orphans), then throws. */
async function startTogether<T extends readonly Stoppable[]>(starts: {
  readonly [K in keyof T]: Promise<T[K]>;
}): Promise<T> {
  const settled = await Promise.allSettled(starts as readonly Promise<Stoppable>[]);
  const failure = settled.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failure) {
    await Promise.all(
      settled.map(async (result) => {
        if (result.status === 'fulfilled') await Promise.resolve(result.value.stop()).catch(() => undefined);
      }),
    );
    throw failure.reason;
  }
  return settled.map((result) => (result as PromiseFulfilledResult<Stoppable>).value) as unknown as T;
}
