/**
 * The normalised sample format every metric source produces and every analysis method reads:
 * `{ t, target, metric, action?, value | histogram | counts }`.
 * - `value`: one observation (a latency in ms, a gauge reading, or 0/1 for "did this request fail").
 * - `histogram`: many observations at once, `values[i]` seen `counts[i]` times.
 * - `counts`: `events` among `trials` (errors among requests, 5xx among responses).
 * Pure: parsing and aggregation only.
 */
import { type FieldReader, isPlainObject } from '../core/validation';
import type { TargetRole } from '../rollout/verdict';

export interface HistogramPayload {
  values: number[];
  counts: number[];
}

export interface CountsPayload {
  events: number;
  trials: number;
}

interface SampleBase {
  /** Tick (rollout tick, or any increasing integer in an offline replay). */
  t: number;
  target: TargetRole;
  metric: string;
  /** The user action the observation belongs to; absent for whole-service metrics. */
  action?: string;
}

export type Sample =
  | (SampleBase & { value: number; histogram?: undefined; counts?: undefined })
  | (SampleBase & { histogram: HistogramPayload; value?: undefined; counts?: undefined })
  | (SampleBase & { counts: CountsPayload; value?: undefined; histogram?: undefined });

export const TARGETS: readonly TargetRole[] = ['baseline', 'canary'];
const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$/;
const SAMPLE_KEYS = ['t', 'target', 'metric', 'action', 'value', 'histogram', 'counts'];
/** Guards the state bound: one histogram payload may not carry more distinct values than this. */
export const MAX_HISTOGRAM_ENTRIES = 100_000;

/** Reads one untrusted sample; issues are reported on `r` under `prefix` (e.g. `line 7`). */
export function readSample(r: FieldReader, input: unknown, prefix: string): Sample | undefined {
  const field = (name: string) => (prefix ? `${prefix}.${name}` : name);
  const object = r.object(input, prefix || 'sample');
  if (!object) return undefined;
  const before = r.issues.length;
  r.onlyKeys(object, SAMPLE_KEYS, prefix);
  const t = r.number(object.t, field('t'), { min: 0, max: 1e15, integer: true });
  const target = r.oneOf(object.target, field('target'), TARGETS);
  const metric = r.string(
    object.metric,
    field('metric'),
    NAME_PATTERN,
    'must be a metric name: letters, digits, _ . : -',
  );
  const action =
    object.action === undefined || object.action === null
      ? undefined
      : r.string(
          object.action,
          field('action'),
          NAME_PATTERN,
          'must be an action name: letters, digits, _ . : -',
        );
  const shapes = (['value', 'histogram', 'counts'] as const).filter((key) => object[key] !== undefined);
  if (shapes.length !== 1) {
    r.fail(prefix || 'sample', 'must have exactly one of value, histogram, counts');
    return undefined;
  }
  const base = {
    t: t as number,
    target: target as TargetRole,
    metric: metric as string,
    ...(action ? { action } : {}),
  };
  let sample: Sample | undefined;
  if (shapes[0] === 'value') {
    const value = r.number(object.value, field('value'), { min: 0 });
    if (value !== undefined) sample = { ...base, value };
  } else if (shapes[0] === 'histogram') {
    const histogram = readHistogram(r, object.histogram, field('histogram'));
    if (histogram) sample = { ...base, histogram };
  } else {
    const counts = readCounts(r, object.counts, field('counts'));
    if (counts) sample = { ...base, counts };
  }
  return r.issues.length === before ? sample : undefined;
}

function readHistogram(r: FieldReader, input: unknown, field: string): HistogramPayload | undefined {
  if (!isPlainObject(input)) return r.fail(field, 'must be an object { values: number[], counts: number[] }');
  r.onlyKeys(input, ['values', 'counts'], field);
  const { values, counts } = input;
  if (!Array.isArray(values)) return r.fail(`${field}.values`, 'must be a list of numbers >= 0');
  if (!Array.isArray(counts)) return r.fail(`${field}.counts`, 'must be a list of integers >= 0');
  if (values.length !== counts.length) return r.fail(`${field}.counts`, 'must have one count per value');
  if (values.length > MAX_HISTOGRAM_ENTRIES)
    return r.fail(`${field}.values`, `must have at most ${MAX_HISTOGRAM_ENTRIES} entries`);
  for (let i = 0; i < values.length; i += 1) {
    const value: unknown = values[i];
    const count: unknown = counts[i];
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
      return r.fail(`${field}.values[${i}]`, 'must be a finite number >= 0');
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 0)
      return r.fail(`${field}.counts[${i}]`, 'must be an integer >= 0');
  }
  return { values: values as number[], counts: counts as number[] };
}

function readCounts(r: FieldReader, input: unknown, field: string): CountsPayload | undefined {
  if (!isPlainObject(input)) return r.fail(field, 'must be an object { events, trials }');
  r.onlyKeys(input, ['events', 'trials'], field);
  const events = r.number(input.events, `${field}.events`, { min: 0, integer: true });
  const trials = r.number(input.trials, `${field}.trials`, { min: 0, integer: true });
  if (events === undefined || trials === undefined) return undefined;
  if (events > trials) return r.fail(`${field}.events`, `must not exceed ${field}.trials (${trials})`);
  return { events, trials };
}

/** At most this many distinct values per target, metric and action are stored exactly. */
export const EXACT_VALUES_LIMIT = 512;

/**
 * Shrinks a tick's samples for storage without changing any analysis: counts are summed, and
 * values and histograms become one histogram per (target, metric, action), exact when it has
 * few distinct values, else on the analysis's own log buckets (each bucket at its centre).
 */
export function compactSamples(
  samples: readonly Sample[],
  bucketOf: (value: number) => number,
  centreOf: (bucket: number) => number,
): Sample[] {
  interface Group {
    base: Omit<SampleBase, never>;
    values: Map<number, number>;
    counts?: CountsPayload;
  }
  const groups = new Map<string, Group>();
  for (const sample of samples) {
    const key = JSON.stringify([
      sample.t,
      sample.target,
      sample.metric,
      sample.action ?? null,
      sample.counts ? 'c' : 'v',
    ]);
    let group = groups.get(key);
    if (!group) {
      const base = {
        t: sample.t,
        target: sample.target,
        metric: sample.metric,
        ...(sample.action === undefined ? {} : { action: sample.action }),
      };
      groups.set(key, (group = { base, values: new Map() }));
    }
    if (sample.counts) {
      group.counts = {
        events: (group.counts?.events ?? 0) + sample.counts.events,
        trials: (group.counts?.trials ?? 0) + sample.counts.trials,
      };
    } else if (sample.histogram) {
      sample.histogram.values.forEach((value, i) =>
        group.values.set(value, (group.values.get(value) ?? 0) + (sample.histogram.counts[i] as number)),
      );
    } else {
      group.values.set(sample.value, (group.values.get(sample.value) ?? 0) + 1);
    }
  }
  const out: Sample[] = [];
  for (const group of groups.values()) {
    if (group.counts) {
      out.push({ ...group.base, counts: group.counts });
      continue;
    }
    let entries = [...group.values.entries()].filter(([, count]) => count > 0);
    if (entries.length > EXACT_VALUES_LIMIT) {
      const buckets = new Map<number, number>();
      for (const [value, count] of entries) {
        const bucket = bucketOf(value);
        buckets.set(bucket, (buckets.get(bucket) ?? 0) + count);
      }
      entries = [...buckets.entries()].map(([bucket, count]) => [centreOf(bucket), count]);
    }
    entries.sort((a, b) => a[0] - b[0]);
    out.push({
      ...group.base,
      histogram: { values: entries.map(([value]) => value), counts: entries.map(([, count]) => count) },
    });
  }
  return out;
}
