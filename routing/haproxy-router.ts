import { lookup } from 'node:dns/promises';
import net from 'node:net';
import type { AdapterSpec, RolloutSpec } from '../rollout/spec';
import { type FieldReader, ValidationError } from '../core/validation';
import {
  ObservedRouter,
  RouterUnavailableError,
  unavailable,
  type RoutingObservation,
  type TemplateVariables,
} from './traffic-router';
import { readCallTimeout, readStickySpec, type StickySpec } from './spec-fields';
import { probeUpstream } from './upstream-probe';
import { shareOfWeights, weightsForShare } from './weights';

/** HAProxy's runtime API takes absolute weights from 0 to 256. */
const MAX_WEIGHT = 256;
const NAME_PATTERN = /^[A-Za-z0-9_.:-]+$/;
const SOCKET_PATTERN = /^(\/\S+|tcp:\/\/[^\s/:]+:\d{1,5})$/;

export interface HaproxyRouterOptions {
  /** The stats socket with `level admin`: a unix socket path or tcp://host:port. */
  runtimeApi: { path: string } | { host: string; port: number };
  backend: string;
  servers: { baseline: string; canary: string };
  timeoutMs: number;
  /** How long a server leaving maintenance may take to pass its health check. */
  settleTimeoutMs: number;
  /** Used by renderHaproxyBackend only; the running HAProxy's config decides. */
  sticky: StickySpec | undefined;
  healthCheck: { path: string; intervalMs: number } | undefined;
}

export function parseHaproxyRouterSpec(
  spec: AdapterSpec,
  r: FieldReader,
  field: string,
): HaproxyRouterOptions | undefined {
  r.onlyKeys(
    spec,
    ['kind', 'runtimeApi', 'backend', 'servers', 'timeout', 'settleTimeout', 'sticky', 'healthCheck'],
    field,
  );
  const socket = r.string(
    spec.runtimeApi,
    `${field}.runtimeApi`,
    SOCKET_PATTERN,
    'must be an absolute unix socket path or tcp://host:port',
  );
  const backend = r.string(spec.backend, `${field}.backend`, NAME_PATTERN, 'must be a HAProxy backend name');
  const serversIn = r.optionalObject(spec.servers, `${field}.servers`);
  if (serversIn) r.onlyKeys(serversIn, ['baseline', 'canary'], `${field}.servers`);
  const serverName = (role: 'baseline' | 'canary') =>
    serversIn?.[role] === undefined
      ? role
      : r.string(serversIn[role], `${field}.servers.${role}`, NAME_PATTERN, 'must be a HAProxy server name');
  const baseline = serverName('baseline');
  const canary = serverName('canary');
  if (baseline !== undefined && baseline === canary)
    r.fail(`${field}.servers.canary`, 'must differ from servers.baseline');
  const timeoutMs = readCallTimeout(r, spec.timeout, `${field}.timeout`);
  const settleTimeoutMs = r.duration(
    spec.settleTimeout,
    `${field}.settleTimeout`,
    { minMs: 0, maxMs: 120_000 },
    5000,
  );
  const sticky = readStickySpec(r, spec.sticky, `${field}.sticky`);
  const healthCheck = readHealthCheck(r, spec.healthCheck, `${field}.healthCheck`);
  if ([socket, backend, baseline, canary, timeoutMs, settleTimeoutMs].includes(undefined)) return undefined;
  const tcp = /^tcp:\/\/([^/:]+):(\d+)$/.exec(socket!);
  return {
    runtimeApi: tcp ? { host: tcp[1] as string, port: Number(tcp[2]) } : { path: socket! },
    backend: backend!,
    servers: { baseline: baseline!, canary: canary! },
    timeoutMs: timeoutMs!,
    settleTimeoutMs: settleTimeoutMs!,
    sticky,
    healthCheck,
  };
}

function readHealthCheck(r: FieldReader, value: unknown, field: string): HaproxyRouterOptions['healthCheck'] {
  if (value === undefined || value === false) return undefined;
  const check = r.object(value, field);
  if (!check) return undefined;
  r.onlyKeys(check, ['path', 'interval'], field);
  const path =
    check.path === undefined ? '/' : r.string(check.path, `${field}.path`, /^\/\S*$/, 'must start with /');
  const intervalMs = r.duration(check.interval, `${field}.interval`, { minMs: 50, maxMs: 600_000 }, 1000);
  return path && intervalMs ? { path, intervalMs } : undefined;
}

/**
 * Baseline and canary are two servers of one backend, so HAProxy's exporter labels their series
 * `proxy="<backend>"` and `server="<server>"`.
 */
export function haproxyTemplateVariables(
  options: Pick<HaproxyRouterOptions, 'backend' | 'servers'>,
): TemplateVariables {
  return {
    baseline: { backend: options.backend, server: options.servers.baseline },
    canary: { backend: options.backend, server: options.servers.canary },
  };
}

/** One runtime API command on its own connection; HAProxy answers and closes (non-interactive mode). */
export async function runtimeApiCommand(
  address: HaproxyRouterOptions['runtimeApi'],
  command: string,
  timeoutMs: number,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = 'path' in address ? net.connect(address.path) : net.connect(address.port, address.host);
    const chunks: Buffer[] = [];
    socket.setTimeout(timeoutMs, () =>
      socket.destroy(new Error(`no answer to "${command.split(' ')[0]}" within ${timeoutMs} ms`)),
    );
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('error', reject);
    socket.once('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.end(`${command}\n`);
  });
}

interface ServerState {
  name: string;
  address: string;
  port: number;
  /** 0 stopped, 1 starting, 2 running, 3 stopping. */
  opState: number;
  adminState: number;
  weight: number;
}

// Admin state bits (HAProxy's SRV_ADMF_*): forced, inherited, resolution and hostname maintenance.
// The configured-maintenance bit 0x04 stays set after `state ready`, so it does not count here.
const MAINTENANCE_BITS = 0x01 | 0x02 | 0x20 | 0x40;
const RUNNING = 2;

/** Successful `set` commands answer nothing. */
const isEmpty = (answer: string): boolean => answer.trim() === '';

/** `show servers state <backend>`: a version line, a `#` header naming the columns, then rows. */
export function parseServersState(text: string): ServerState[] {
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  const header = lines.find((line) => line.startsWith('# '));
  if (!header) throw new Error(`unexpected answer: ${text.trim().slice(0, 200)}`);
  const columns = header.slice(2).split(' ');
  const at = (name: string) => {
    const index = columns.indexOf(name);
    if (index < 0) throw new Error(`the answer has no ${name} column`);
    return index;
  };
  const [name, address, port, opState, adminState, weight] = [
    'srv_name',
    'srv_addr',
    'srv_port',
    'srv_op_state',
    'srv_admin_state',
    'srv_uweight',
  ].map(at) as [number, number, number, number, number, number];
  return lines
    .filter((line) => !line.startsWith('#') && line.includes(' '))
    .map((line) => {
      const cells = line.split(' ');
      return {
        name: cells[name] as string,
        address: cells[address] as string,
        port: Number(cells[port]),
        opState: Number(cells[opState]),
        adminState: Number(cells[adminState]),
        weight: Number(cells[weight]),
      };
    });
}

/**
 * HAProxy through its runtime API: weights change with `set weight` on the running process (no
 * reload, no dropped connection). A side at weight 0 is also put in maintenance, because a
 * drained server still takes cookie-persistent users and 0 % must mean no user at all.
 */
export class HaproxyRouter extends ObservedRouter {
  readonly kind = 'haproxy';

  constructor(
    private readonly options: HaproxyRouterOptions,
    private readonly targets: RolloutSpec['targets'],
  ) {
    super();
  }

  async reconcile(): Promise<void> {
    const servers = await this.servers();
    for (const role of ['baseline', 'canary'] as const) {
      const server = servers[role];
      const target = new URL(this.targets[role].url);
      const port = Number(target.port || (target.protocol === 'https:' ? 443 : 80));
      const host = target.hostname.replace(/^\[|\]$/g, '');
      const address = net.isIP(host) ? host : (await lookup(host)).address;
      if (server.address !== address || server.port !== port) {
        await this.command(`set server ${this.path(role)} addr ${address} port ${port}`, (answer) =>
          /changed|no need/i.test(answer),
        );
      }
    }
  }

  async close(): Promise<void> {}

  /** The backend section for the initial config; `share` decides which side starts in maintenance. */
  renderBackend(share = 0): string {
    return renderHaproxyBackend(this.options, this.targets, share);
  }

  protected describeUpstream(role: 'baseline' | 'canary'): string {
    return `${role} server ${this.path(role)} (${this.targets[role].url})`;
  }

  protected async observe(): Promise<RoutingObservation> {
    const servers = await this.servers();
    const inMaintenance = (server: ServerState) => (server.adminState & MAINTENANCE_BITS) !== 0;
    const effective = (server: ServerState) => (inMaintenance(server) ? 0 : server.weight);
    // HAProxy does not check a server in maintenance, and one leaving it counts as up until
    // its checks fail: so for that side the router asks the upstream itself.
    const healthy = async (role: 'baseline' | 'canary') =>
      inMaintenance(servers[role])
        ? probeUpstream(this.targets[role].url, this.options.healthCheck?.path ?? '/', this.options.timeoutMs)
        : servers[role].opState !== 0;
    const [baseline, canary] = await Promise.all([healthy('baseline'), healthy('canary')]);
    return {
      share: shareOfWeights({ baseline: effective(servers.baseline), canary: effective(servers.canary) }),
      healthy: { baseline, canary },
    };
  }

  protected async apply(share: number, current: RoutingObservation): Promise<void> {
    const weights = weightsForShare(share, MAX_WEIGHT);
    const roles = (['baseline', 'canary'] as const).filter((role) => weights[role] > 0);
    const idle = (['baseline', 'canary'] as const).filter((role) => weights[role] === 0);
    // The side that gains traffic is ready before the other is drained, so no request finds no server.
    const commands = [
      ...roles.flatMap((role) => [
        `set weight ${this.path(role)} ${weights[role]}`,
        `set server ${this.path(role)} state ready`,
      ]),
      ...idle.flatMap((role) => [
        `set weight ${this.path(role)} 0`,
        `set server ${this.path(role)} state maint`,
      ]),
    ];
    await this.command(commands.join('; '), isEmpty);
    if (share > current.share && !(await this.serving('canary'))) {
      await this.restore(current.share);
      throw new RouterUnavailableError(
        `haproxy router: ${this.describeUpstream('canary')} did not pass its health check within ${this.options.settleTimeoutMs} ms after leaving maintenance; its share stays at ${current.share} %`,
      );
    }
  }

  /** Waits for a server that just left maintenance to be up. */
  private async serving(role: 'baseline' | 'canary'): Promise<boolean> {
    const deadline = Date.now() + this.options.settleTimeoutMs;
    for (;;) {
      const server = (await this.servers())[role];
      if (server.opState === RUNNING) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  private async restore(share: number): Promise<void> {
    const weights = weightsForShare(share, MAX_WEIGHT);
    const commands = (['baseline', 'canary'] as const).flatMap((role) => [
      `set weight ${this.path(role)} ${weights[role]}`,
      `set server ${this.path(role)} state ${weights[role] === 0 ? 'maint' : 'ready'}`,
    ]);
    await this.command(commands.join('; '), isEmpty);
  }

  private path(role: 'baseline' | 'canary'): string {
    return `${this.options.backend}/${this.options.servers[role]}`;
  }

  private async servers(): Promise<Record<'baseline' | 'canary', ServerState>> {
    const answer = await this.command(`show servers state ${this.options.backend}`, (text) =>
      text.startsWith('1\n'),
    );
    const servers = parseServersState(answer);
    const find = (role: 'baseline' | 'canary') => {
      const server = servers.find((candidate) => candidate.name === this.options.servers[role]);
      if (!server) {
        throw new ValidationError([
          {
            field: `router.servers.${role}`,
            rule: `HAProxy backend ${this.options.backend} has no server "${this.options.servers[role]}" (it has: ${servers.map((s) => s.name).join(', ') || 'none'})`,
          },
        ]);
      }
      return server;
    };
    return { baseline: find('baseline'), canary: find('canary') };
  }

  /** Runs a command; an answer that `accepts` rejects is a refusal, reported with its text. */
  private async command(command: string, accepts: (answer: string) => boolean): Promise<string> {
    let answer: string;
    try {
      answer = await runtimeApiCommand(this.options.runtimeApi, command, this.options.timeoutMs);
    } catch (error) {
      throw unavailable(this.kind, `runtime API ${this.socketName()}`, error);
    }
    if (/Can't find backend|No such backend/.test(answer)) {
      throw new ValidationError([
        { field: 'router.backend', rule: `HAProxy has no backend "${this.options.backend}"` },
      ]);
    }
    if (!accepts(answer)) {
      throw new RouterUnavailableError(
        `haproxy router: "${command}" was refused: ${answer.trim().slice(0, 300) || '(empty answer)'}`,
      );
    }
    return answer;
  }

  private socketName(): string {
    const api = this.options.runtimeApi;
    return 'path' in api ? api.path : `tcp://${api.host}:${api.port}`;
  }
}

/**
 * The backend section for the initial config (paste or include it; weights then change at run
 * time). Round robin, or consistent hashing on a header; cookie persistence on request.
 */
export function renderHaproxyBackend(
  options: Pick<HaproxyRouterOptions, 'backend' | 'servers' | 'sticky' | 'healthCheck'>,
  targets: RolloutSpec['targets'],
  share = 0,
): string {
  const weights = weightsForShare(share, MAX_WEIGHT);
  const lines = [`backend ${options.backend}`, '    mode http'];
  if (options.sticky?.by === 'header') {
    lines.push(`    balance hdr(${options.sticky.name})`, '    hash-type consistent');
  } else {
    lines.push('    balance roundrobin');
  }
  if (options.sticky?.by === 'cookie') {
    lines.push(`    cookie ${options.sticky.name} insert indirect nocache httponly`);
  }
  lines.push('    option forwardfor', '    option redispatch', '    retries 2', '    http-reuse safe');
  if (options.healthCheck) {
    lines.push(`    option httpchk GET ${options.healthCheck.path}`, '    http-check expect status 200-399');
  }
  for (const role of ['baseline', 'canary'] as const) {
    const target = new URL(targets[role].url);
    const port = target.port || (target.protocol === 'https:' ? '443' : '80');
    const parts = [
      `    server ${options.servers[role]} ${target.hostname}:${port}`,
      `weight ${weights[role]}`,
    ];
    if (options.healthCheck) parts.push(`check inter ${options.healthCheck.intervalMs}ms fall 2 rise 2`);
    if (options.sticky?.by === 'cookie') parts.push(`cookie ${role}`);
    if (target.protocol === 'https:') parts.push('ssl verify required ca-file @system-ca');
    if (weights[role] === 0) parts.push('disabled');
    lines.push(parts.join(' '));
  }
  return `${lines.join('\n')}\n`;
}
