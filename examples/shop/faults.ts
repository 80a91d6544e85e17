/**
 * Regressions the sample shop can be told to have, so a rollout has something real to find.
 * Pure parsing and decisions; the app applies them.
 */
import { FieldReader, parseDuration, ValidationError } from '../../core/validation';

export const SHOP_ACTIONS = [
  'page_view',
  'search',
  'view_product',
  'add_to_cart',
  'checkout',
  'login',
  'api_call',
  'upload',
] as const;
export type ShopAction = (typeof SHOP_ACTIONS)[number];

export interface LatencyFault {
  action: ShopAction;
  /** Added to each affected request. */
  extraMs: number;
  /** Share of the action's requests affected, 0-1 (1 = all). */
  fraction: number;
}

export interface ErrorFault {
  action: ShopAction;
  /** Share of the action's requests answered with HTTP 500, 0-1. */
  rate: number;
}

/**
 * Latency that appears only under load: while the shop answers more than `aboveRps` requests
 * per second (counted over the last second), requests of `action` take `extraMs` longer. A canary
 * that is fine at 5 % and slow at 30 % of real traffic.
 */
export interface LoadFault {
  action: ShopAction;
  extraMs: number;
  aboveRps: number;
  /**
   * Requests carrying this header are slowed too but not counted: probes come at the same rate
   * whatever the canary's share, so counting only the rest makes the threshold a share of real
   * traffic (e.g. `x-canary-probe`).
   */
  uncountedHeader?: string;
}

export interface ShopFaults {
  latency: LatencyFault[];
  errors: ErrorFault[];
  /** Bytes retained per second, never freed: a slow memory leak. */
  leakBytesPerSecond: number;
  /** Busy CPU per request of one action: a CPU-heavy path. */
  cpu: { action: ShopAction; ms: number }[];
  /** Optional so fault sets written before it stay valid. */
  load?: LoadFault[];
  /**
   * A transient fault: the faults above are on only for this long after they were set (at start,
   * or by the admin endpoint, which is the trigger); absent means for as long as they are set.
   */
  activeForMs?: number;
}

export const NO_FAULTS: ShopFaults = { latency: [], errors: [], leakBytesPerSecond: 0, cpu: [] };

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/;

function readAction(r: FieldReader, value: unknown, field: string): ShopAction | undefined {
  return r.oneOf(value, field, SHOP_ACTIONS);
}

/** Reads faults from JSON (the admin endpoint, the demo) with field-level errors. */
export function parseFaults(input: unknown): ShopFaults {
  const r = new FieldReader();
  const root = r.object(input, 'faults');
  if (!root) throw new ValidationError(r.issues);
  r.onlyKeys(root, ['latency', 'errors', 'leakBytesPerSecond', 'cpu', 'load', 'activeForMs'], 'faults');
  const list = (value: unknown, field: string): unknown[] => {
    if (value === undefined) return [];
    if (!Array.isArray(value)) return r.fail(field, 'must be a list') ?? [];
    return value;
  };
  const latency: LatencyFault[] = [];
  list(root.latency, 'faults.latency').forEach((item, i) => {
    const field = `faults.latency[${i}]`;
    const object = r.object(item, field);
    if (!object) return;
    r.onlyKeys(object, ['action', 'extraMs', 'fraction'], field);
    const action = readAction(r, object.action, `${field}.action`);
    const extraMs = r.number(object.extraMs, `${field}.extraMs`, { min: 0, max: 60_000 });
    const fraction = r.number(object.fraction, `${field}.fraction`, { min: 0, max: 1 }, 1);
    if (action && extraMs !== undefined && fraction !== undefined)
      latency.push({ action, extraMs, fraction });
  });
  const errors: ErrorFault[] = [];
  list(root.errors, 'faults.errors').forEach((item, i) => {
    const field = `faults.errors[${i}]`;
    const object = r.object(item, field);
    if (!object) return;
    r.onlyKeys(object, ['action', 'rate'], field);
    const action = readAction(r, object.action, `${field}.action`);
    const rate = r.number(object.rate, `${field}.rate`, { min: 0, max: 1 });
    if (action && rate !== undefined) errors.push({ action, rate });
  });
  const cpu: ShopFaults['cpu'] = [];
  list(root.cpu, 'faults.cpu').forEach((item, i) => {
    const field = `faults.cpu[${i}]`;
    const object = r.object(item, field);
    if (!object) return;
    r.onlyKeys(object, ['action', 'ms'], field);
    const action = readAction(r, object.action, `${field}.action`);
    const ms = r.number(object.ms, `${field}.ms`, { min: 0, max: 1000 });
    if (action && ms !== undefined) cpu.push({ action, ms });
  });
  const load: LoadFault[] = [];
  list(root.load, 'faults.load').forEach((item, i) => {
    const field = `faults.load[${i}]`;
    const object = r.object(item, field);
    if (!object) return;
    r.onlyKeys(object, ['action', 'extraMs', 'aboveRps', 'uncountedHeader'], field);
    const action = readAction(r, object.action, `${field}.action`);
    const extraMs = r.number(object.extraMs, `${field}.extraMs`, { min: 0, max: 60_000 });
    const aboveRps = r.number(object.aboveRps, `${field}.aboveRps`, { min: 0, max: 1_000_000 });
    const uncountedHeader =
      object.uncountedHeader === undefined
        ? undefined
        : r.string(
            object.uncountedHeader,
            `${field}.uncountedHeader`,
            HEADER_NAME,
            'must be an HTTP header name',
          );
    // An invalid header name is an issue already: throwIfAny below refuses the whole set.
    if (action && extraMs !== undefined && aboveRps !== undefined)
      load.push({
        action,
        extraMs,
        aboveRps,
        ...(uncountedHeader ? { uncountedHeader: uncountedHeader.toLowerCase() } : {}),
      });
  });
  const activeForMs =
    root.activeForMs === undefined
      ? undefined
      : r.duration(root.activeForMs, 'faults.activeForMs', { minMs: 1, maxMs: 24 * 3_600_000 });
  const leakBytesPerSecond = r.number(
    root.leakBytesPerSecond,
    'faults.leakBytesPerSecond',
    { min: 0, max: 100 * 2 ** 20 },
    0,
  );
  r.throwIfAny();
  return {
    latency,
    errors,
    cpu,
    leakBytesPerSecond: leakBytesPerSecond ?? 0,
    load,
    ...(activeForMs === undefined ? {} : { activeForMs }),
  };
}

/** Requests per second over the last second, from the arrival times of counted requests. */
export class RequestRate {
  private readonly arrivals: number[] = [];

  /** Records an arrival at `now` (ms) and returns the rate including it. */
  arrive(now: number): number {
    this.arrivals.push(now);
    return this.at(now);
  }

  at(now: number): number {
    let stale = 0;
    while (stale < this.arrivals.length && (this.arrivals[stale] as number) <= now - 1000) stale++;
    if (stale > 0) this.arrivals.splice(0, stale);
    return this.arrivals.length;
  }
}

/** The extra latency a load fault gives one request of `action` while the shop answers `rps`. */
export function loadDelayMs(fault: LoadFault, action: ShopAction, rps: number): number {
  return fault.action === action && rps > fault.aboveRps ? fault.extraMs : 0;
}

/**
 * Reads the command-line shorthand: `--latency checkout:200ms[@0.5]`, `--errors checkout:0.05`,
 * `--cpu search:5ms`, `--leak 1048576` (bytes per second), `--load checkout:200ms@50rps` (slow
 * above 50 requests per second), `--active-for 30s` (all of them stop 30 s after start).
 */
export function parseFaultFlags(flags: {
  latency?: string[];
  errors?: string[];
  cpu?: string[];
  leak?: string;
  load?: string[];
  activeFor?: string;
}): ShopFaults {
  const r = new FieldReader();
  const split = (value: string, field: string): [string, string] | undefined => {
    const at = value.indexOf(':');
    if (at <= 0) return r.fail(field, `must look like action:value, got '${value}'`);
    return [value.slice(0, at), value.slice(at + 1)];
  };
  const latency = (flags.latency ?? []).map((value) => {
    const parts = split(value, '--latency');
    if (!parts) return undefined;
    const [amount, fraction] = parts[1].split('@');
    return {
      action: parts[0],
      extraMs: parseDuration(amount),
      fraction: fraction === undefined ? 1 : Number(fraction),
    };
  });
  const errors = (flags.errors ?? []).map((value) => {
    const parts = split(value, '--errors');
    return parts ? { action: parts[0], rate: Number(parts[1]) } : undefined;
  });
  const cpu = (flags.cpu ?? []).map((value) => {
    const parts = split(value, '--cpu');
    return parts ? { action: parts[0], ms: parseDuration(parts[1]) } : undefined;
  });
  const load = (flags.load ?? []).map((value) => {
    const parts = split(value, '--load');
    if (!parts) return undefined;
    const match = /^(.+)@(\d+(?:\.\d+)?)rps$/.exec(parts[1]);
    if (!match) return r.fail('--load', `must look like action:duration@<number>rps, got '${value}'`);
    return { action: parts[0], extraMs: parseDuration(match[1]), aboveRps: Number(match[2]) };
  });
  r.throwIfAny();
  return parseFaults({
    latency,
    errors,
    cpu,
    load,
    leakBytesPerSecond: flags.leak === undefined ? 0 : Number(flags.leak),
    ...(flags.activeFor === undefined ? {} : { activeForMs: flags.activeFor }),
  });
}
