/**
 * What a load run is asked to do, checked at the edge: every interface (library, CLI, service,
 * probe activity) validates through `resolveLoadOptions` and gets one issue per bad field, named
 * the way that interface names it (`--duration`, `duration`, `durationMs`).
 */
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { FieldReader, formatDuration, type FieldIssue } from '../core/validation';
import { integer, variable, type ConfigOf } from '../platform/config';
import { TargetAllowlist, TargetNotAllowedError } from './allowlist';
import type { ArrivalProcess } from './schedule';

/** One HTTP request of a session, rendered from the ontology once, before the run. */
export interface RequestStep {
  action: string;
  method: string;
  /** Path and query, appended to the target's base URL. */
  path: string;
  /** Flat [name, value, name, value, ...], names lower-case. */
  headers: string[];
  body?: string;
  expect: { status: number[]; json?: string };
  /** When this request happens, ms from the session start (as recorded in the profile). */
  offsetMs: number;
}

export interface SessionPlan {
  /** Where the session came from, e.g. a profile's user_id. */
  id: string;
  steps: RequestStep[];
  /** Sent with every request of the session, e.g. the user agent of the profile's device. */
  headers?: string[];
}

export interface LoadTarget {
  /** `baseline`, `canary`, or `target` for a single-target run. */
  name: string;
  url: string;
  /** How the caller names this target in error messages, e.g. `--baseline` or `target_url`. */
  field?: string;
}

export type LoadModel = 'closed' | 'open';

export interface LoadLimits {
  maxConcurrency: number;
  /** Open model: sessions per second. */
  maxRate: number;
  maxDurationMs: number;
  maxThreads: number;
  maxSessions: number;
}

export const DEFAULT_LIMITS: LoadLimits = {
  maxConcurrency: 1000,
  maxRate: 10_000,
  maxDurationMs: 3_600_000,
  maxThreads: Math.max(1, os.availableParallelism()),
  maxSessions: 100_000,
};

/**
 * What every process that plays load (workers, the loadgen service, the CLI) reads from its
 * environment: which hosts it may aim at, and the limits of one run.
 */
export const LOADGEN_VARIABLES = {
  allowedTargets: variable('LOADGEN_ALLOWED_TARGETS', (text, name) => TargetAllowlist.parse(text, name), {
    default: new TargetAllowlist(),
  }),
  maxConcurrency: variable('LOADGEN_MAX_CONCURRENCY', integer({ min: 1 }), {
    default: DEFAULT_LIMITS.maxConcurrency,
  }),
  maxRate: variable('LOADGEN_MAX_RATE', integer({ min: 1 }), { default: DEFAULT_LIMITS.maxRate }),
  maxDurationS: variable('LOADGEN_MAX_DURATION_S', integer({ min: 1 }), {
    default: DEFAULT_LIMITS.maxDurationMs / 1000,
  }),
  maxThreads: variable('LOADGEN_MAX_THREADS', integer({ min: 1 }), { default: DEFAULT_LIMITS.maxThreads }),
};

export function loadLimitsOf(values: ConfigOf<typeof LOADGEN_VARIABLES>): LoadLimits {
  return {
    maxConcurrency: values.maxConcurrency,
    maxRate: values.maxRate,
    maxDurationMs: values.maxDurationS * 1000,
    maxThreads: values.maxThreads,
    maxSessions: DEFAULT_LIMITS.maxSessions,
  };
}

export interface LoadOptions {
  runId?: string;
  sessions: SessionPlan[];
  /** One target, or baseline and canary for paired probing. */
  targets: LoadTarget[];
  durationMs: number;
  /** Closed model: virtual users. Open model: the most sessions in flight at once. */
  concurrency: number;
  model?: LoadModel;
  /** Open model: session arrivals per second. */
  rate?: number;
  arrival?: ArrivalProcess;
  /** Multiplies the recorded gaps between a session's requests (0: no think time). */
  timeScale?: number;
  seed?: number;
  /** Per request: connect, then headers, then each gap in the body (undici's timeouts). */
  timeoutMs?: number;
  maxRedirects?: number;
  maxBodyBytes?: number;
  keepAlive?: boolean;
  tls?: { insecure?: boolean; ca?: string };
  /** Sent with every request (after the ontology's headers, so they win). */
  headers?: Record<string, string>;
  /** Labels of the run: reported with every snapshot and sent in the tag header. */
  tags?: Record<string, string>;
  /** Header that marks each request as synthetic (run, session, sequence); null: none. */
  tagHeader?: string | null;
  snapshotIntervalMs?: number;
  /** Engine threads; default: one per 100 virtual users, at most the CPU count. */
  threads?: number;
  /** After the duration, how long requests in flight may take to finish before they are cut. */
  drainMs?: number;
  /** This process plays share `index` of `count` of the workload (probe fan-out). */
  shard?: { index: number; count: number };
}

/** The validated, serialisable form sent to the engine threads. */
export interface EnginePlan {
  runId: string;
  sessions: SessionPlan[];
  targets: LoadTarget[];
  durationMs: number;
  concurrency: number;
  model: LoadModel;
  rate: number;
  arrival: ArrivalProcess;
  timeScale: number;
  seed: number;
  timeoutMs: number;
  maxRedirects: number;
  maxBodyBytes: number;
  keepAlive: boolean;
  tls: { insecure: boolean; ca?: string };
  headers: string[];
  tags: Record<string, string>;
  tagHeader: string | null;
  snapshotIntervalMs: number;
  threads: number;
  drainMs: number;
  shard: { index: number; count: number };
  allowlist: string[];
}

/** How an interface names each option in its error messages. */
export type FieldNames = Partial<Record<keyof LoadOptions, string>>;

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;
const TAG = /^[A-Za-z0-9_.:-]{1,64}$/;

function nameOf(names: FieldNames, key: keyof LoadOptions): string {
  return names[key] ?? key;
}

/**
 * Checks options against the limits and the target allowlist (resolving host names) and fills
 * in defaults. Throws a ValidationError listing every bad field.
 */
export async function resolveLoadOptions(
  options: LoadOptions,
  context: { limits?: LoadLimits; allowlist?: TargetAllowlist; names?: FieldNames } = {},
): Promise<EnginePlan> {
  const limits = context.limits ?? DEFAULT_LIMITS;
  const allowlist = context.allowlist ?? new TargetAllowlist();
  const names = context.names ?? {};
  const f = (key: keyof LoadOptions) => nameOf(names, key);
  const r = new FieldReader();

  const model = r.oneOf(options.model, f('model'), ['closed', 'open'] as const, 'closed');
  // Interfaces take the duration in different units, so the rule names the bound with its unit.
  let durationMs: number | undefined;
  if (typeof options.durationMs !== 'number' || !Number.isFinite(options.durationMs))
    r.fail(f('durationMs'), 'must be a finite number');
  else if (options.durationMs < 100) r.fail(f('durationMs'), 'must be at least 100ms');
  else if (options.durationMs > limits.maxDurationMs)
    r.fail(f('durationMs'), `must be at most ${formatDuration(limits.maxDurationMs)}`);
  else durationMs = Math.round(options.durationMs);
  const concurrency = r.number(options.concurrency, f('concurrency'), {
    min: 1,
    max: limits.maxConcurrency,
    integer: true,
  });
  let rate = 0;
  if (model === 'open') {
    if (options.rate === undefined) r.fail(f('rate'), 'is required with the open model');
    else rate = r.number(options.rate, f('rate'), { exclusiveMin: 0, max: limits.maxRate }) ?? 0;
  } else if (options.rate !== undefined) r.fail(f('rate'), 'applies only to the open model');
  const arrival = r.oneOf(options.arrival, f('arrival'), ['uniform', 'poisson'] as const, 'uniform');
  const timeScale = r.number(options.timeScale, f('timeScale'), { min: 0, max: 1000 }, 1);
  const seed = r.number(options.seed, f('seed'), { min: 0, max: 2 ** 32 - 1, integer: true }, 1);
  const timeoutMs = r.number(
    options.timeoutMs,
    f('timeoutMs'),
    { min: 1, max: 600_000, integer: true },
    10_000,
  );
  const maxRedirects = r.number(
    options.maxRedirects,
    f('maxRedirects'),
    { min: 0, max: 20, integer: true },
    5,
  );
  const maxBodyBytes = r.number(
    options.maxBodyBytes,
    f('maxBodyBytes'),
    { min: 0, max: 1024 * 1024 * 1024, integer: true },
    10 * 1024 * 1024,
  );
  const snapshotIntervalMs = r.number(
    options.snapshotIntervalMs,
    f('snapshotIntervalMs'),
    { min: 100, max: 600_000, integer: true },
    5000,
  );
  const drainMs = r.number(options.drainMs, f('drainMs'), { min: 0, max: 60_000, integer: true }, 2000);
  const defaultThreads = Math.min(limits.maxThreads, Math.max(1, Math.ceil((concurrency ?? 1) / 100)));
  const threads = r.number(
    options.threads,
    f('threads'),
    { min: 1, max: limits.maxThreads, integer: true },
    defaultThreads,
  );
  const shard = options.shard ?? { index: 0, count: 1 };
  const shardCount = r.number(shard.count, `${f('shard')}.count`, { min: 1, max: 1000, integer: true });
  r.number(shard.index, `${f('shard')}.index`, {
    min: 0,
    max: Math.max(0, (shardCount ?? 1) - 1),
    integer: true,
  });

  const headers: string[] = [];
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    const field = `${f('headers')}.${name}`;
    if (!HEADER_NAME.test(name)) r.fail(field, 'is not a valid HTTP header name');
    else if (typeof value !== 'string' || /[\r\n\0]/.test(value))
      r.fail(field, 'must be a string without line breaks');
    else headers.push(name.toLowerCase(), value);
  }
  for (const [key, value] of Object.entries(options.tags ?? {})) {
    if (!TAG.test(key) || typeof value !== 'string' || !TAG.test(value))
      r.fail(`${f('tags')}.${key}`, 'tags are key=value pairs of 1-64 of A-Z a-z 0-9 _ . : -');
  }
  const tagHeader = options.tagHeader === undefined ? 'x-canary-probe' : options.tagHeader;
  if (tagHeader !== null && !HEADER_NAME.test(tagHeader))
    r.fail(f('tagHeader'), 'must be an HTTP header name or null');

  if (!Array.isArray(options.sessions) || options.sessions.length === 0)
    r.fail(f('sessions'), 'must name at least one profile with at least one request');
  else if (options.sessions.length > limits.maxSessions)
    r.fail(f('sessions'), `must have at most ${limits.maxSessions} sessions`);
  else
    options.sessions.forEach((session, index) => {
      if (session.steps.length === 0) r.fail(`${f('sessions')}[${index}]`, `(${session.id}) has no requests`);
    });

  const targets = await checkTargets(options.targets, f('targets'), allowlist, r);
  if (options.tls?.ca !== undefined && !options.tls.ca.includes('BEGIN CERTIFICATE'))
    r.fail(`${f('tls')}.ca`, 'must be PEM certificates');
  r.throwIfAny();

  return {
    runId: options.runId ?? randomUUID(),
    sessions: options.sessions,
    targets,
    durationMs: durationMs!,
    concurrency: concurrency!,
    model: model!,
    rate,
    arrival: arrival!,
    timeScale: timeScale!,
    seed: seed!,
    timeoutMs: timeoutMs!,
    maxRedirects: maxRedirects!,
    maxBodyBytes: maxBodyBytes!,
    keepAlive: options.keepAlive ?? true,
    tls: { insecure: options.tls?.insecure ?? false, ...(options.tls?.ca ? { ca: options.tls.ca } : {}) },
    headers,
    tags: { ...options.tags },
    tagHeader: tagHeader === null ? null : tagHeader.toLowerCase(),
    snapshotIntervalMs: snapshotIntervalMs!,
    threads: Math.min(threads!, concurrency!),
    drainMs: Math.min(drainMs!, timeoutMs!),
    shard,
    allowlist: [...allowlist.entries],
  };
}

/** Parses and allowlists target URLs; every problem becomes an issue on `field` (or its index). */
async function checkTargets(
  targets: LoadTarget[],
  field: string,
  allowlist: TargetAllowlist,
  r: FieldReader,
): Promise<LoadTarget[]> {
  if (!Array.isArray(targets) || targets.length === 0 || targets.length > 2) {
    r.fail(field, 'must be one target, or a baseline and a canary');
    return [];
  }
  const out: LoadTarget[] = [];
  const issues: (FieldIssue | undefined)[] = await Promise.all(
    targets.map(async (target, index) => {
      const where = target.field ?? (targets.length === 1 ? field : `${field}.${target.name || index}`);
      const url = parseTargetUrl(target.url, where, r);
      if (!url) return undefined;
      try {
        await allowlist.check(url);
      } catch (error) {
        if (error instanceof TargetNotAllowedError)
          return {
            field: where,
            rule: `${error.message} (allowed: ${allowlist.entries.join(', ')}; set LOADGEN_ALLOWED_TARGETS to change it)`,
          };
        throw error;
      }
      out[index] = { name: target.name, url: url.toString().replace(/\/$/, '') };
      return undefined;
    }),
  );
  for (const issue of issues) if (issue) r.fail(issue.field, issue.rule);
  if (targets.length === 2 && targets[0]?.name === targets[1]?.name)
    r.fail(field, 'the two targets need different names');
  return out;
}

export function parseTargetUrl(text: unknown, field: string, r: FieldReader): URL | undefined {
  if (typeof text !== 'string' || text.trim() === '')
    return r.fail(field, 'must be a URL such as http://127.0.0.1:8080');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return r.fail(field, `must be an absolute http:// or https:// URL (got ${JSON.stringify(text)})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return r.fail(field, `must use http or https (got ${url.protocol.replace(/:$/, '')})`);
  if (url.username || url.password)
    return r.fail(field, 'must not carry credentials; send them as headers instead');
  if (url.search || url.hash) return r.fail(field, 'must not have a query or fragment');
  return url;
}
