/**
 * Per (target, action) statistics: what one load run measured, in a form that several threads,
 * processes or activities can merge exactly. Latency histograms are HDR histograms of
 * microseconds, shipped encoded (encodeIntoCompressedBase64), and every other figure is a count,
 * so merging is addition and the merge of shards equals the run that did all the work itself.
 * No I/O here.
 */
import {
  build,
  decodeFromCompressedBase64,
  encodeIntoCompressedBase64,
  type Histogram,
} from 'hdr-histogram-js';
import { ExemplarKeeper, mergeExemplars, type ActionExemplars } from './exemplars';

/** 1 µs to 1 hour at 3 significant digits: every value a request can take, ±0.1 %. */
export const HISTOGRAM_CONFIG = {
  lowestDiscernibleValue: 1,
  highestTrackableValue: 3_600_000_000,
  numberOfSignificantValueDigits: 3,
} as const;

export const ERROR_KINDS = [
  'timeout',
  'connection_refused',
  'connection_reset',
  'dns',
  'tls',
  'body_too_large',
  'unexpected_status',
  'check_failed',
  'not_allowed',
  'too_many_redirects',
  'other',
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

/** The probe_results contract (see docs/loadgen.md); fields after `bytes` are additions. */
export interface ActionStats {
  target: string;
  action: string;
  /** Successes only, microseconds, HDR histogram encoded with encodeIntoCompressedBase64. */
  latencyHistogram: string;
  successes: number;
  errors: number;
  /** Every response's status code, successes and errors alike. */
  statusCounts: Record<string, number>;
  errorKinds: Record<string, number>;
  /** Response bytes received (bodies). */
  bytes: number;
  /** Latency of failed requests (those that got as far as a response or a timeout), microseconds. */
  errorLatencyHistogram: string;
  /** The slowest successes and failures of this (target, action), when the requests are known. */
  exemplars?: ActionExemplars;
}

/** What an exemplar needs to know of a request: how it was sent and whose session sent it. */
export interface SentRequest {
  method: string;
  path: string;
}

export function newHistogram(): Histogram {
  return build({ ...HISTOGRAM_CONFIG, bitBucketSize: 32, autoResize: false, useWebAssembly: false });
}

export function decodeHistogram(encoded: string): Histogram {
  return decodeFromCompressedBase64(encoded, 32, false);
}

export function encodeHistogram(histogram: Histogram): string {
  return encodeIntoCompressedBase64(histogram);
}

const clamp = (micros: number) =>
  micros < 1
    ? 1
    : micros > HISTOGRAM_CONFIG.highestTrackableValue
      ? HISTOGRAM_CONFIG.highestTrackableValue
      : micros;

/**
 * The mutable side, owned by one thread: recording is a few array writes and one histogram
 * update, with nothing allocated per request once every status code has been seen.
 */
export class ActionRecorder {
  readonly latency = newHistogram();
  readonly errorLatency = newHistogram();
  successes = 0;
  errors = 0;
  bytes = 0;
  readonly statusCounts = new Map<number, number>();
  readonly errorKinds = new Map<ErrorKind, number>();
  private readonly exemplars: ExemplarKeeper;

  constructor(
    readonly target: string,
    readonly action: string,
  ) {
    this.exemplars = new ExemplarKeeper(target);
  }

  /** `sent` and `profileId` make the request a candidate exemplar. */
  recordSuccess(micros: number, status: number, bytes: number, sent?: SentRequest, profileId?: string): void {
    this.successes++;
    this.bytes += bytes;
    this.latency.recordValue(Math.round(clamp(micros)));
    this.statusCounts.set(status, (this.statusCounts.get(status) ?? 0) + 1);
    if (sent && profileId !== undefined)
      this.exemplars.offerSuccess(micros, status, profileId, sent.method, sent.path);
  }

  /** `status` 0: no response (connection error, timeout). */
  recordError(
    kind: ErrorKind,
    micros: number,
    status: number,
    bytes: number,
    sent?: SentRequest,
    profileId?: string,
  ): void {
    this.errors++;
    this.bytes += bytes;
    this.errorLatency.recordValue(Math.round(clamp(micros)));
    if (status > 0) this.statusCounts.set(status, (this.statusCounts.get(status) ?? 0) + 1);
    this.errorKinds.set(kind, (this.errorKinds.get(kind) ?? 0) + 1);
    if (sent && profileId !== undefined)
      this.exemplars.offerFailure(kind, micros, status, profileId, sent.method, sent.path);
  }

  get requests(): number {
    return this.successes + this.errors;
  }

  /** Encodes what was recorded since the last drain and starts afresh (interval snapshots). */
  drain(): ActionStats {
    const exemplars = this.exemplars.drain();
    const stats: ActionStats = {
      target: this.target,
      action: this.action,
      latencyHistogram: encodeHistogram(this.latency),
      successes: this.successes,
      errors: this.errors,
      statusCounts: Object.fromEntries([...this.statusCounts].map(([code, n]) => [String(code), n])),
      errorKinds: Object.fromEntries(this.errorKinds),
      bytes: this.bytes,
      errorLatencyHistogram: encodeHistogram(this.errorLatency),
      ...(exemplars ? { exemplars } : {}),
    };
    this.latency.reset();
    this.errorLatency.reset();
    this.successes = 0;
    this.errors = 0;
    this.bytes = 0;
    this.statusCounts.clear();
    this.errorKinds.clear();
    return stats;
  }
}

function addCounts(into: Record<string, number>, from: Record<string, number>): Record<string, number> {
  const out = { ...into };
  for (const [key, n] of Object.entries(from)) out[key] = (out[key] ?? 0) + n;
  return out;
}

function mergeEncoded(encoded: readonly string[]): string {
  const total = newHistogram();
  for (const text of encoded) {
    const histogram = decodeHistogram(text);
    total.add(histogram);
    histogram.destroy();
  }
  const result = encodeHistogram(total);
  total.destroy();
  return result;
}

const keyOf = (stats: { target: string; action: string }) => `${stats.target}\u0000${stats.action}`;

/**
 * Exact merge of stats lists from several intervals, threads, processes or probe shards: counts
 * add up, histograms add bucket by bucket. Sorted by target then action, so the result does not
 * depend on the order of the inputs.
 */
export function mergeStats(lists: readonly (readonly ActionStats[])[]): ActionStats[] {
  const groups = new Map<string, ActionStats[]>();
  for (const list of lists) {
    for (const stats of list) {
      const key = keyOf(stats);
      const group = groups.get(key);
      if (group) group.push(stats);
      else groups.set(key, [stats]);
    }
  }
  const merged: ActionStats[] = [];
  for (const group of groups.values()) {
    const first = group[0] as ActionStats;
    if (group.length === 1) {
      merged.push({ ...first, errorLatencyHistogram: first.errorLatencyHistogram ?? mergeEncoded([]) });
      continue;
    }
    let statusCounts: Record<string, number> = {};
    let errorKinds: Record<string, number> = {};
    for (const stats of group) {
      statusCounts = addCounts(statusCounts, stats.statusCounts);
      errorKinds = addCounts(errorKinds, stats.errorKinds);
    }
    merged.push({
      target: first.target,
      action: first.action,
      latencyHistogram: mergeEncoded(group.map((stats) => stats.latencyHistogram)),
      successes: group.reduce((sum, stats) => sum + stats.successes, 0),
      errors: group.reduce((sum, stats) => sum + stats.errors, 0),
      statusCounts: sortedCounts(statusCounts),
      errorKinds: sortedCounts(errorKinds),
      bytes: group.reduce((sum, stats) => sum + stats.bytes, 0),
      errorLatencyHistogram: mergeEncoded(
        group.flatMap((stats) => (stats.errorLatencyHistogram ? [stats.errorLatencyHistogram] : [])),
      ),
      ...exemplarsOf(group),
    });
  }
  return merged.sort((a, b) =>
    a.target === b.target ? compare(a.action, b.action) : compare(a.target, b.target),
  );
}

function exemplarsOf(group: readonly ActionStats[]): { exemplars?: ActionExemplars } {
  const exemplars = mergeExemplars(group.map((stats) => stats.exemplars));
  return exemplars ? { exemplars } : {};
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function sortedCounts(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => compare(a, b)));
}

export interface ActionSummary {
  target: string;
  action: string;
  requests: number;
  successes: number;
  errors: number;
  /** Requests per second over `elapsedMs`. */
  rps: number;
  /** Success latency percentiles, milliseconds (null without successes). */
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
  bytes: number;
  statusCounts: Record<string, number>;
  errorKinds: Record<string, number>;
}

/** The human figures of one stats list (the CLI table, the service's summary, heartbeats). */
export function summarize(stats: readonly ActionStats[], elapsedMs: number): ActionSummary[] {
  return stats.map((entry) => {
    const histogram = decodeHistogram(entry.latencyHistogram);
    const has = histogram.totalCount > 0;
    const ms = (micros: number) => Math.round(micros) / 1000;
    const summary: ActionSummary = {
      target: entry.target,
      action: entry.action,
      requests: entry.successes + entry.errors,
      successes: entry.successes,
      errors: entry.errors,
      rps: elapsedMs > 0 ? Math.round(((entry.successes + entry.errors) * 1000 * 100) / elapsedMs) / 100 : 0,
      p50: has ? ms(histogram.getValueAtPercentile(50)) : null,
      p90: has ? ms(histogram.getValueAtPercentile(90)) : null,
      p99: has ? ms(histogram.getValueAtPercentile(99)) : null,
      max: has ? ms(histogram.maxValue) : null,
      mean: has ? ms(histogram.mean) : null,
      bytes: entry.bytes,
      statusCounts: entry.statusCounts,
      errorKinds: entry.errorKinds,
    };
    histogram.destroy();
    return summary;
  });
}

/** Requests and errors per target, e.g. for a ProbeSummary. */
export function totalsByTarget(
  stats: readonly ActionStats[],
): Record<string, { requests: number; errors: number }> {
  const totals: Record<string, { requests: number; errors: number }> = {};
  for (const entry of stats) {
    const total = (totals[entry.target] ??= { requests: 0, errors: 0 });
    total.requests += entry.successes + entry.errors;
    total.errors += entry.errors;
  }
  return totals;
}
