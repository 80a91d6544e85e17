/**
 * Offline replay (like Kayenta's standalone canary analysis): raw samples, one JSON object per
 * line, analysed tick by tick as a rollout would have seen them. Ticks are the distinct `t`
 * values in increasing order; the verdict at tick t uses the samples up to t that the method
 * keeps (per-window methods look only at tick t itself, as they would live). A line may carry
 * the traffic regime it was recorded in, `regime` (1, 2, ...) and/or `share` (the canary's share
 * of real traffic, 0..1): the replay then hands the engine the same regimes a live rollout
 * would, so it gives the same verdicts. Pure: the CLI reads the file.
 */
import { ValidationError, FieldReader } from '../core/validation';
import type { AnalysisMethod } from '../rollout/spec';
import {
  DEFAULT_ERRORS,
  DEFAULT_LATENCY,
  DEFAULT_SEED_WINDOW,
  defaultKind,
  defaultMetric,
  type AnalysisConfig,
  type MetricConfig,
} from './config';
import { analyzeTick, type TickContext } from './engine';
import { readSample, type Sample } from './samples';
import type { Anomaly, VerdictStatus } from '../rollout/verdict';

export interface ReplayAnomaly {
  metric: string;
  action?: string;
  effect: number;
  interval: [number, number];
  quantile?: number;
  summary: string;
  severe?: boolean;
  evidence?: Anomaly['evidence'];
}

export interface ReplayTick {
  t: number;
  verdict: VerdictStatus;
  anomalies: ReplayAnomaly[];
  reasons: string[];
  /** The regime the tick was analysed in, when the recording says. */
  regime?: number;
  healthProven?: boolean;
}

/** The regime marks of a recording, per tick (as the lines carried them). */
export type RegimeMarks = Map<number, { regime?: number; share?: number }>;

export interface ReplayResult {
  method: AnalysisMethod;
  alpha: number;
  ticks: ReplayTick[];
  first_anomalous_tick: number | null;
}

const MAX_REPORTED_ISSUES = 20;

/** Parses NDJSON lines (1-based line numbers in errors); blank lines are skipped. */
export function parseSampleLines(lines: Iterable<string>): Sample[] {
  return parseRecording(lines).samples;
}

/**
 * Parses a recording: the samples, and per tick the regime marks (`regime`, `share`) the lines
 * carried. Every line of a tick that carries a mark must agree with the others.
 */
export function parseRecording(lines: Iterable<string>): { samples: Sample[]; marks: RegimeMarks } {
  const r = new FieldReader();
  const samples: Sample[] = [];
  const marks: RegimeMarks = new Map();
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
    const { rest, mark } = readMark(r, parsed, `line ${number}`);
    const sample = readSample(r, rest, `line ${number}`);
    if (sample) samples.push(sample);
    if (sample && mark) {
      const known = marks.get(sample.t);
      if (!known) marks.set(sample.t, mark);
      else
        for (const key of ['regime', 'share'] as const)
          if (mark[key] !== undefined && known[key] !== undefined && mark[key] !== known[key])
            r.fail(
              `line ${number}.${key}`,
              `must be the same on every line of tick ${sample.t} (${known[key]})`,
            );
          else if (mark[key] !== undefined) known[key] = mark[key];
    }
    if (r.issues.length >= MAX_REPORTED_ISSUES) break;
  }
  if (r.issues.length > 0) throw new ValidationError(r.issues);
  if (samples.length === 0)
    throw new ValidationError([{ field: 'input', rule: 'must contain at least one sample' }]);
  return { samples, marks };
}

/** Takes `regime` and `share` off a line (validated), leaving the sample fields. */
function readMark(
  r: FieldReader,
  input: unknown,
  prefix: string,
): { rest: unknown; mark?: { regime?: number; share?: number } } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return { rest: input };
  const { regime, share, ...rest } = input as Record<string, unknown>;
  if (regime === undefined && share === undefined) return { rest };
  const mark: { regime?: number; share?: number } = {};
  if (regime !== undefined) {
    const index = r.number(regime, `${prefix}.regime`, { min: 1, max: 1e9, integer: true });
    if (index !== undefined) mark.regime = index;
  }
  if (share !== undefined) {
    const value = r.number(share, `${prefix}.share`, { min: 0, max: 1 });
    if (value !== undefined) mark.share = value;
  }
  return { rest, mark };
}

/**
 * The regime of each tick as a live rollout would hand it to the analyzer: `regime` when the
 * lines say, else a new regime whenever `share` changes; ticks without marks stay in the
 * previous tick's regime. Undefined throughout when the recording carries no marks.
 */
export function regimesOf(ticks: readonly number[], marks: RegimeMarks): Map<number, TickContext['regime']> {
  const out = new Map<number, TickContext['regime']>();
  if (marks.size === 0) return out;
  let current: { index: number; sinceTick: number; share?: number } | undefined;
  for (const t of ticks) {
    const mark = marks.get(t);
    const index =
      mark?.regime ??
      (current === undefined
        ? 1
        : mark?.share !== undefined && current.share !== undefined && mark.share !== current.share
          ? current.index + 1
          : current.index);
    if (!current || index !== current.index)
      current = { index, sinceTick: t, ...(mark?.share === undefined ? {} : { share: mark.share }) };
    else if (mark?.share !== undefined && current.share === undefined)
      current = { ...current, share: mark.share };
    out.set(t, current);
  }
  return out;
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
    kinds.set(sample.metric, known === 'rate' || looksLikeRate ? 'rate' : defaultKind(sample.metric));
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
  marks: RegimeMarks = new Map(),
): ReplayResult {
  const byTick = new Map<number, Sample[]>();
  for (const sample of samples) {
    let list = byTick.get(sample.t);
    if (!list) byTick.set(sample.t, (list = []));
    list.push(sample);
  }
  const order = [...byTick.keys()].sort((a, b) => a - b);
  const regimes = regimesOf(order, marks);
  const ticks: ReplayTick[] = [];
  let state: unknown = null;
  let first: number | null = null;
  for (const t of order) {
    const regime = regimes.get(t);
    const result = analyzeTick(config, state, t, byTick.get(t) ?? [], regime ? { regime } : {});
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
        ...(anomaly.severe === undefined ? {} : { severe: anomaly.severe }),
        ...(anomaly.evidence === undefined ? {} : { evidence: anomaly.evidence }),
      })),
      reasons: result.verdict.status === 'anomalous' ? [] : result.verdict.reasons,
      ...(regime ? { regime: regime.index } : {}),
      ...(result.verdict.healthProven === undefined ? {} : { healthProven: result.verdict.healthProven }),
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
    const regime = tick.regime === undefined ? '' : ` (regime ${tick.regime})`;
    const severe = tick.anomalies.some((a) => a.severe) ? ' SEVERE' : '';
    const proven = tick.healthProven ? ' (health proven)' : '';
    lines.push(`t=${tick.t}${regime} ${tick.verdict}${severe}${proven}${detail ? `: ${detail}` : ''}`);
  }
  lines.push(`first anomalous tick: ${result.first_anomalous_tick ?? 'none'}`);
  return `${lines.join('\n')}\n`;
}
