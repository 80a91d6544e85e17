/**
 * Offline replay (like Kayenta's standalone canary analysis): raw samples, one JSON object per
 * line, analysed tick by tick as a rollout would have seen them. Ticks are the distinct `t`
 * values in increasing order; the verdict at tick t uses all samples up to t (per-window methods
 * look only at tick t itself, as they would live). Pure: the CLI reads the file.
 */
import { ValidationError, FieldReader } from '../core/validation';
import type { AnalysisMethod } from '../rollout/spec';
import {
  DEFAULT_ERRORS,
  DEFAULT_LATENCY,
  DEFAULT_SEED_WINDOW,
  defaultMetric,
  type AnalysisConfig,
  type MetricConfig,
} from './config';
import { analyzeTick } from './engine';
import { readSample, type Sample } from './samples';
import type { VerdictStatus } from '../rollout/verdict';

export interface ReplayAnomaly {
  metric: string;
  action?: string;
  effect: number;
  interval: [number, number];
  quantile?: number;
  summary: string;
}

export interface ReplayTick {
  t: number;
  verdict: VerdictStatus;
  anomalies: ReplayAnomaly[];
  reasons: string[];
}

export interface ReplayResult {
  method: AnalysisMethod;
  alpha: number;
  ticks: ReplayTick[];
  first_anomalous_tick: number | null;
}

const MAX_REPORTED_ISSUES = 20;

/** Parses NDJSON lines (1-based line numbers in errors); blank lines are skipped. */
export function parseSampleLines(lines: Iterable<string>): Sample[] {
  const r = new FieldReader();
  const samples: Sample[] = [];
  let number = 0;
  for (const line of lines) {
    number += 1;
    if (line.trim() === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      r.fail(`line ${number}`, 'must be one JSON object');
      continue;
    }
    const sample = readSample(r, parsed, `line ${number}`);
    if (sample) samples.push(sample);
    if (r.issues.length >= MAX_REPORTED_ISSUES) break;
  }
  if (r.issues.length > 0) throw new ValidationError(r.issues);
  if (samples.length === 0)
    throw new ValidationError([{ field: 'input', rule: 'must contain at least one sample' }]);
  return samples;
}

/**
 * The configuration a replay runs with: every metric in the file, with the defaults for its
 * name and shape (`error`, counts and 0/1 `*error*`/`*5xx*` values are rates), and every action
 * in the file as a slot, so the multiplicity correction is fixed before the first tick.
 */
export function replayConfig(
  samples: readonly Sample[],
  method: AnalysisMethod,
  alpha: number,
): AnalysisConfig {
  const kinds = new Map<string, MetricConfig['kind']>();
  const actions: string[] = [];
  for (const sample of samples) {
    const looksLikeRate =
      sample.counts !== undefined ||
      sample.metric === DEFAULT_ERRORS.name ||
      (/(error|fail|5xx)/i.test(sample.metric) &&
        sample.value !== undefined &&
        (sample.value === 0 || sample.value === 1));
    const known = kinds.get(sample.metric);
    kinds.set(sample.metric, known === 'rate' || looksLikeRate ? 'rate' : 'distribution');
    if (sample.action !== undefined && !actions.includes(sample.action)) actions.push(sample.action);
  }
  const metrics = [...kinds].map(([name, kind]) =>
    name === DEFAULT_LATENCY.name && kind === 'distribution'
      ? { ...DEFAULT_LATENCY, quantiles: [...DEFAULT_LATENCY.quantiles] }
      : defaultMetric(name, kind),
  );
  return {
    method,
    alpha,
    metrics,
    maxActions: Math.max(1, actions.length),
    actions: actions.length > 0 ? actions : null,
    seedWindow: DEFAULT_SEED_WINDOW,
  };
}

export function replay(
  samples: readonly Sample[],
  method: AnalysisMethod,
  alpha: number,
  config = replayConfig(samples, method, alpha),
): ReplayResult {
  const byTick = new Map<number, Sample[]>();
  for (const sample of samples) {
    let list = byTick.get(sample.t);
    if (!list) byTick.set(sample.t, (list = []));
    list.push(sample);
  }
  const ticks: ReplayTick[] = [];
  let state: unknown = null;
  let first: number | null = null;
  for (const t of [...byTick.keys()].sort((a, b) => a - b)) {
    const result = analyzeTick(config, state, t, byTick.get(t) ?? []);
    state = result.state;
    if (result.verdict.status === 'anomalous' && first === null) first = t;
    ticks.push({
      t,
      verdict: result.verdict.status,
      anomalies: result.verdict.anomalies.map((anomaly) => ({
        metric: anomaly.metric,
        ...(anomaly.action === undefined ? {} : { action: anomaly.action }),
        effect: anomaly.effect,
        interval: anomaly.interval,
        ...(anomaly.quantile === undefined ? {} : { quantile: anomaly.quantile }),
        summary: anomaly.summary,
      })),
      reasons: result.verdict.status === 'anomalous' ? [] : result.verdict.reasons,
    });
  }
  return { method, alpha, ticks, first_anomalous_tick: first };
}

/** Human-readable report: one line per tick, then the first anomalous tick. */
export function formatReplay(result: ReplayResult): string {
  const lines = [`method ${result.method}, alpha ${result.alpha}, ${result.ticks.length} ticks`];
  for (const tick of result.ticks) {
    const detail =
      tick.verdict === 'anomalous'
        ? tick.anomalies.map((a) => a.summary).join('; ')
        : tick.reasons.slice(0, 3).join('; ');
    lines.push(`t=${tick.t} ${tick.verdict}${detail ? `: ${detail}` : ''}`);
  }
  lines.push(`first anomalous tick: ${result.first_anomalous_tick ?? 'none'}`);
  return `${lines.join('\n')}\n`;
}
