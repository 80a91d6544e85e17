import { execFile } from 'node:child_process';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { request } from 'undici';
import type { AdapterSpec, RolloutSpec } from '../rollout/spec';
import { NGINX_DEFAULT_BINARY } from '../rollout/worker-policy';
import { type FieldReader } from '../core/validation';
import {
  ObservedRouter,
  RouterUnavailableError,
  unavailable,
  type RoutingObservation,
} from './traffic-router';
import { readCallTimeout, readStickySpec, type StickySpec } from './spec-fields';
import { probeUpstream } from './upstream-probe';
import { shareOfWeights, weightsForShare, type ServerWeights } from './weights';
import { messageOf } from '../core/errors';

const run = promisify(execFile);

/** NGINX has no small upper bound on weights; this keeps the consistent-hash ring small. */
const MAX_WEIGHT = 10_000;
const STATUS_PATH = '/canary-router/state';
const STATE_MARKER = '# canary-router-state ';
/** Without /proc the router cannot see the old workers go; it waits this long past the first new answer. */
const NO_PROC_SETTLE_MS = 500;
const ABSOLUTE_PATH = /^\/\S*$/;

export interface NginxRouterOptions {
  binary: string;
  /** The main nginx.conf, which includes `includeFile` in its http block. */
  configFile: string;
  /** `-p` prefix the running NGINX was started with, if any. */
  prefix: string | undefined;
  /** The file this router owns and rewrites: the weighted upstream and its status server. */
  includeFile: string;
  pidFile: string;
  upstream: string;
  /** Loopback address NGINX serves the loaded weights on, proving a reload took effect. */
  statusListen: string;
  sticky: StickySpec | undefined;
  /** NGINX (open source) exposes no upstream health, so the router probes the targets itself. */
  healthPath: string;
  timeoutMs: number;
  reloadTimeoutMs: number;
  keepalive: number;
}

export function parseNginxRouterSpec(
  spec: AdapterSpec,
  r: FieldReader,
  field: string,
): NginxRouterOptions | undefined {
  r.onlyKeys(
    spec,
    [
      'kind',
      'binary',
      'configFile',
      'prefix',
      'includeFile',
      'pidFile',
      'upstream',
      'statusListen',
      'sticky',
      'healthPath',
      'timeout',
      'reloadTimeout',
      'keepalive',
    ],
    field,
  );
  const path = (key: string, fallback?: string) =>
    spec[key] === undefined && fallback !== undefined
      ? fallback
      : r.string(spec[key], `${field}.${key}`, ABSOLUTE_PATH, 'must be an absolute path');
  const binary = path('binary', NGINX_DEFAULT_BINARY);
  const configFile = path('configFile');
  const prefix = spec.prefix === undefined ? undefined : path('prefix');
  const includeFile = path('includeFile');
  const pidFile = path('pidFile');
  const upstream = r.string(
    spec.upstream,
    `${field}.upstream`,
    /^[A-Za-z][A-Za-z0-9_]{0,63}$/,
    'must be an NGINX upstream name: letters, digits and _',
  );
  const statusListen = r.string(
    spec.statusListen,
    `${field}.statusListen`,
    /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost):\d{1,5}$/,
    'must be a loopback host:port, e.g. 127.0.0.1:8099',
  );
  const sticky = readStickySpec(r, spec.sticky, `${field}.sticky`);
  // NGINX variable names stop at '-': `$cookie_canary-user` reads cookie `canary` then "-user".
  // (Header names are fine: $http_ variables turn '-' into '_'.)
  if (sticky?.by === 'cookie' && sticky.name.includes('-')) {
    r.fail(
      `${field}.sticky.name`,
      "must not contain '-' for kind nginx (an NGINX $cookie_ variable cannot name it); use letters, digits and _",
    );
  }
  const healthPath =
    spec.healthPath === undefined
      ? '/'
      : r.string(spec.healthPath, `${field}.healthPath`, /^\/\S*$/, 'must start with /');
  const timeoutMs = readCallTimeout(r, spec.timeout, `${field}.timeout`);
  const reloadTimeoutMs = r.duration(
    spec.reloadTimeout,
    `${field}.reloadTimeout`,
    { minMs: 100, maxMs: 300_000 },
    10_000,
  );
  const keepalive = r.number(
    spec.keepalive,
    `${field}.keepalive`,
    { min: 0, max: 10_000, integer: true },
    64,
  );
  const required = [binary, configFile, includeFile, pidFile, upstream, statusListen, healthPath];
  if (required.includes(undefined) || timeoutMs === undefined || reloadTimeoutMs === undefined)
    return undefined;
  if (keepalive === undefined) return undefined;
  return {
    binary: binary!,
    configFile: configFile!,
    prefix,
    includeFile: includeFile!,
    pidFile: pidFile!,
    upstream: upstream!,
    statusListen: statusListen!,
    sticky,
    healthPath: healthPath!,
    timeoutMs,
    reloadTimeoutMs,
    keepalive,
  };
}

interface RenderedState {
  generation: number;
  share: number;
}

/** The state line this router writes at the top of its include file. */
export function readRenderedState(text: string): RenderedState | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(STATE_MARKER));
  if (!line) return undefined;
  try {
    const state = JSON.parse(line.slice(STATE_MARKER.length)) as Partial<RenderedState>;
    if (typeof state.generation === 'number' && typeof state.share === 'number')
      return { generation: state.generation, share: state.share };
  } catch {
    // not ours, or damaged: treated as absent
  }
  return undefined;
}

/**
 * The include file: a weighted upstream (consistent hashing on the sticky key, else round
 * robin; a 0-weight side is `down`), and a loopback server that answers with the loaded
 * weights and generation. Cookie stickiness sets `$canary_set_cookie_<upstream>` for the
 * operator's `add_header Set-Cookie` (NGINX open source cannot insert cookies by itself).
 */
export function renderNginxInclude(
  options: Pick<NginxRouterOptions, 'upstream' | 'statusListen' | 'sticky' | 'keepalive'>,
  targets: RolloutSpec['targets'],
  state: RenderedState,
): string {
  const weights = weightsForShare(state.share, MAX_WEIGHT);
  const name = options.upstream;
  const lines = [
    `${STATE_MARKER}${JSON.stringify(state)}`,
    "# Written by the canary platform's NGINX router on every weight change; edits are overwritten.",
  ];
  let balance: string | undefined;
  if (options.sticky?.by === 'cookie') {
    const cookie = options.sticky.name;
    lines.push(
      `map $cookie_${cookie} $canary_key_${name} { "" $request_id; default $cookie_${cookie}; }`,
      `map $cookie_${cookie} $canary_set_cookie_${name} { "" "${cookie}=$request_id; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax"; default ""; }`,
    );
    balance = `hash $canary_key_${name} consistent`;
  } else if (options.sticky?.by === 'header') {
    // Requests without the header have an empty key, which NGINX balances round robin.
    balance = `hash $http_${options.sticky.name.toLowerCase().replace(/-/g, '_')} consistent`;
  }
  lines.push(`upstream ${name} {`);
  if (balance) lines.push(`    ${balance};`);
  for (const role of ['baseline', 'canary'] as const) {
    const url = new URL(targets[role].url);
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    const weight = weights[role];
    lines.push(
      `    server ${url.hostname}:${port} weight=${Math.max(weight, 1)} max_fails=1 fail_timeout=5s${weight === 0 ? ' down' : ''};`,
    );
  }
  if (options.keepalive > 0) lines.push(`    keepalive ${options.keepalive};`);
  lines.push('}');
  const status = JSON.stringify({ upstream: name, ...state, weights });
  lines.push(
    'server {',
    `    listen ${options.statusListen};`,
    '    access_log off;',
    `    location = ${STATUS_PATH} {`,
    '        default_type application/json;',
    `        return 200 '${status}\\n';`,
    '    }',
    '}',
  );
  return `${lines.join('\n')}\n`;
}

/**
 * NGINX: renders the weighted upstream into an include file, checks it with `nginx -t`, and
 * reloads gracefully (SIGHUP: old workers finish their requests). A failed check or reload
 * puts the previous file back, so file and running config stay the same.
 */
export class NginxRouter extends ObservedRouter {
  readonly kind = 'nginx';
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly options: NginxRouterOptions,
    private readonly targets: RolloutSpec['targets'],
  ) {
    super();
  }

  async reconcile(): Promise<void> {
    await this.exclusive(async () => {
      const text = await this.readInclude();
      const rendered = text === undefined ? undefined : readRenderedState(text);
      if (!rendered) return this.renderAndReload(0, text);
      if (renderNginxInclude(this.options, this.targets, rendered) !== text)
        return this.renderAndReload(rendered.share, text);
      const live = await this.status().catch(() => undefined);
      if (live?.generation !== rendered.generation) {
        // NGINX runs something else than the file says (restarted from an older copy, or a
        // reload never happened): load the file again.
        await this.reload(await this.masterPid(), rendered.generation);
      }
    });
  }

  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
  }

  protected describeUpstream(role: 'baseline' | 'canary'): string {
    return `${role} upstream ${this.targets[role].url}`;
  }

  protected async observe(): Promise<RoutingObservation> {
    const [live, baseline, canary] = await Promise.all([
      this.status(),
      this.probe('baseline'),
      this.probe('canary'),
    ]);
    return { share: shareOfWeights(live.weights), healthy: { baseline, canary } };
  }

  protected async apply(share: number): Promise<void> {
    await this.exclusive(async () => this.renderAndReload(share, await this.readInclude()));
  }

  private async renderAndReload(share: number, previous: string | undefined): Promise<void> {
    const pid = await this.masterPid();
    const generation = (previous === undefined ? 0 : (readRenderedState(previous)?.generation ?? 0)) + 1;
    await this.writeInclude(renderNginxInclude(this.options, this.targets, { generation, share }));
    const check = await this.test();
    if (check !== undefined) {
      await this.restore(previous);
      throw new RouterUnavailableError(
        `nginx router: nginx -t rejected the new upstream config, the previous one stays in place: ${check}`,
      );
    }
    try {
      await this.reload(pid, generation);
    } catch (error) {
      await this.restore(previous);
      throw error;
    }
  }

  /** `nginx -t` on the main config; the error text, or undefined when it passes. */
  private async test(): Promise<string | undefined> {
    const args = ['-t', '-q', '-c', this.options.configFile, '-e', 'stderr'];
    if (this.options.prefix) args.push('-p', this.options.prefix);
    try {
      await run(this.options.binary, args, { timeout: 30_000 });
      return undefined;
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr?.trim();
      return stderr || messageOf(error);
    }
  }

  /**
   * SIGHUP, then waits until NGINX serves `generation` and the old workers stopped accepting:
   * the master lets old and new workers accept side by side for about 100 ms before it tells
   * the old ones to shut down, so one answer from a new worker is not enough.
   */
  private async reload(pid: number, generation: number): Promise<void> {
    const oldWorkers = await workersOf(pid);
    this.signalMaster('SIGHUP', pid);
    const deadline = Date.now() + this.options.reloadTimeoutMs;
    let seen: number | string = 'nothing';
    let firstSeenAt: number | undefined;
    while (Date.now() < deadline) {
      try {
        seen = (await this.status()).generation;
      } catch (error) {
        seen = messageOf(error);
      }
      if (seen === generation) {
        firstSeenAt ??= Date.now();
        const drained =
          oldWorkers === undefined
            ? Date.now() - firstSeenAt >= NO_PROC_SETTLE_MS
            : await allShuttingDown(oldWorkers);
        if (drained) return;
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new RouterUnavailableError(
      `nginx router: NGINX did not load generation ${generation} of ${this.options.includeFile} within ${this.options.reloadTimeoutMs} ms (last seen: ${seen}); see NGINX's error log`,
    );
  }

  private async status(): Promise<{ generation: number; weights: ServerWeights }> {
    try {
      const response = await request(`http://${this.options.statusListen}${STATUS_PATH}`, {
        headersTimeout: this.options.timeoutMs,
        bodyTimeout: this.options.timeoutMs,
        signal: AbortSignal.timeout(this.options.timeoutMs),
        // A new connection each time: after a reload, only new connections reach the new workers.
        reset: true,
      });
      const body = (await response.body.json()) as { generation?: unknown; weights?: Partial<ServerWeights> };
      if (response.statusCode !== 200 || typeof body.generation !== 'number')
        throw new Error(`status ${response.statusCode}`);
      const { baseline, canary } = body.weights ?? {};
      if (typeof baseline !== 'number' || typeof canary !== 'number') throw new Error('no weights in answer');
      return { generation: body.generation, weights: { baseline, canary } };
    } catch (error) {
      throw unavailable(this.kind, `reading the loaded weights from ${this.options.statusListen}`, error);
    }
  }

  private probe(role: 'baseline' | 'canary'): Promise<boolean> {
    return probeUpstream(this.targets[role].url, this.options.healthPath, this.options.timeoutMs);
  }

  private async masterPid(): Promise<number> {
    let pid: number;
    try {
      pid = Number((await readFile(this.options.pidFile, 'utf8')).trim());
    } catch (error) {
      throw unavailable(this.kind, `reading the pid file ${this.options.pidFile}`, error);
    }
    if (!Number.isInteger(pid) || pid <= 0)
      throw new RouterUnavailableError(`nginx router: ${this.options.pidFile} holds no pid`);
    this.signalMaster(0, pid);
    return pid;
  }

  private signalMaster(signal: NodeJS.Signals | 0, pid: number): void {
    try {
      process.kill(pid, signal);
    } catch (error) {
      throw unavailable(this.kind, `signalling the NGINX master (pid ${pid})`, error);
    }
  }

  private async readInclude(): Promise<string | undefined> {
    try {
      return await readFile(this.options.includeFile, 'utf8');
    } catch (error) {
      if ((error as { code?: string }).code === 'ENOENT') return undefined;
      throw unavailable(this.kind, `reading ${this.options.includeFile}`, error);
    }
  }

  private async writeInclude(text: string): Promise<void> {
    const temporary = `${this.options.includeFile}.${process.pid}.tmp`;
    await writeFile(temporary, text);
    await rename(temporary, this.options.includeFile);
  }

  private async restore(previous: string | undefined): Promise<void> {
    if (previous === undefined) await rm(this.options.includeFile, { force: true });
    else await this.writeInclude(previous);
  }

  /** One change at a time per router: a reload must not interleave with another render. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

/** The NGINX master's worker pids from /proc (Linux), or undefined where /proc is not there. */
async function workersOf(master: number): Promise<number[] | undefined> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return undefined;
  }
  const workers: number[] = [];
  await Promise.all(
    entries
      .filter((entry) => /^\d+$/.test(entry))
      .map(async (entry) => {
        const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
        // Fields after the parenthesised command name: state, then the parent pid.
        const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (parent === master) workers.push(Number(entry));
      }),
  );
  return workers;
}

/** True once every old worker has exited or set its title to "worker process is shutting down". */
async function allShuttingDown(workers: readonly number[]): Promise<boolean> {
  const titles = await Promise.all(
    workers.map((pid) => readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')),
  );
  return titles.every(
    (title) => title === '' || title.includes('shutting down') || !title.includes('worker'),
  );
}
