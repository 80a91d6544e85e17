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

export interface ShopFaults {
  latency: LatencyFault[];
  errors: ErrorFault[];
  /** Bytes retained per second, never freed: a slow memory leak. */
  leakBytesPerSecond: number;
  /** Busy CPU per request of one action: a CPU-heavy path. */
  cpu: { action: ShopAction; ms: number }[];
}

export const NO_FAULTS: ShopFaults = { latency: [], errors: [], leakBytesPerSecond: 0, cpu: [] };

function readAction(r: FieldReader, value: unknown, field: string): ShopAction | undefined {
  return r.oneOf(value, field, SHOP_ACTIONS);
}

/** Reads faults from JSON (the admin endpoint, the demo) with field-level errors. */
export function parseFaults(input: unknown): ShopFaults {
  const r = new FieldReader();
  const root = r.object(input, 'faults');
  if (!root) throw new ValidationError(r.issues);
  r.onlyKeys(root, ['latency', 'errors', 'leakBytesPerSecond', 'cpu'], 'faults');
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
  const leakBytesPerSecond = r.number(
    root.leakBytesPerSecond,
    'faults.leakBytesPerSecond',
    { min: 0, max: 100 * 2 ** 20 },
    0,
  );
  r.throwIfAny();
  return { latency, errors, cpu, leakBytesPerSecond: leakBytesPerSecond ?? 0 };
}

/**
 * Reads the command-line shorthand: `--latency checkout:200ms[@0.5]`, `--errors checkout:0.05`,
 * `--cpu search:5ms`, `--leak 1048576` (bytes per second).
 */
export function parseFaultFlags(flags: {
  latency?: string[];
  errors?: string[];
  cpu?: string[];
  leak?: string;
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
  r.throwIfAny();
  return parseFaults({
    latency,
    errors,
    cpu,
    leakBytesPerSecond: flags.leak === undefined ? 0 : Number(flags.leak),
  });
}
