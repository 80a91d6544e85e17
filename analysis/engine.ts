/**
 * One tick of analysis: fold the tick's samples into the carried state with the configured
 * method, compare canary with baseline per metric, action and quantile, and turn the checks
 * into a verdict. Pure: (config, state, tick, samples) -> (verdict, state, checks).
 *
 * Multiplicity: Bonferroni over every comparison fixed before the first look (metrics × tests
 * × action slots: the actions known then, from `analysis.actions` or the sampled profiles, else
 * `maxActions` slots): each anytime p-value is compared with alpha / M. We chose it over
 * averaging e-values because it names the regressed action(s) with family-wise error control
 * per anomaly (an average of e-values is one global test and attributes nothing), and because
 * for e-processes its price is small: the boundary grows with log(M), not M (M = 60 moves the
 * threshold from 20 to 1200, i.e. ~4 nats of evidence).
 */
import { aggregateTick, SERVICE_SLOT, type CellTick, type TickAggregate } from './aggregate';
import { summarise, type Check } from './checks';
import {
  comparisonCount,
  configFingerprint,
  RESOURCE_METRICS,
  type AnalysisConfig,
  type MetricConfig,
} from './config';
import { methodFor } from './methods';
import type { Sample } from './samples';
import { anomalyKey, type Anomaly, type Verdict } from '../rollout/verdict';
import type { Json } from '../core/validation';

export const STATE_VERSION = 1;

export interface EngineState {
  v: number;
  method: string;
  fp: string;
  /** Last tick analysed (-1 before the first). */
  tick: number;
  /** Action slots: `analysis.actions` when given, else in the order first seen (at most maxActions). */
  actions: string[];
  /** metric -> slot -> the method's state for that cell. */
  cells: Record<string, Record<string, Json>>;
  /** First tick analysed: the start of the single regime when the caller names none. */
  since?: number;
  /** The actions were fixed before the first look (the sampled profiles'): no other gets a slot. */
  listed?: boolean;
  /** The evidence segment: regimes joined by raises of the share; a cut (or an unknown share) starts one. */
  segment?: Segment;
}

export interface Segment {
  index: number;
  sinceTick: number;
  /** The regime it is in now, and that regime's share (null when the caller gave none). */
  regime: number;
  share: number | null;
}

/**
 * The segment after this tick's regime: a raise of the share keeps gathering evidence (a
 * regression present at a lower share is still one), anything else starts afresh, so a problem
 * that went away with a cut is forgotten.
 */
export function nextSegment(
  segment: Segment | undefined,
  regime: { index: number; sinceTick: number; share?: number },
): Segment {
  const share = regime.share ?? null;
  if (!segment) return { index: 1, sinceTick: regime.sinceTick, regime: regime.index, share };
  if (segment.regime === regime.index) return segment;
  const raised = share !== null && segment.share !== null && share > segment.share;
  return raised
    ? { ...segment, regime: regime.index, share }
    : { index: segment.index + 1, sinceTick: regime.sinceTick, regime: regime.index, share };
}

/** What the caller knows beyond the samples: the traffic regime, and the actions fixed in advance. */
export interface TickContext {
  regime?: { index: number; sinceTick: number; share?: number };
  actions?: readonly string[];
}

export interface TickAnalysis {
  verdict: Verdict;
  state: EngineState;
  checks: Check[];
}

/**
 * Metric names and actions come from specs and samples and become keys here: a prototype-less
 * object gives `constructor` or `__proto__` no inherited meaning (JSON is the same).
 */
function dictionary<T>(entries: Iterable<[string, T]> = []): Record<string, T> {
  const object = Object.create(null) as Record<string, T>;
  for (const [key, value] of entries) object[key] = value;
  return object;
}

export function initialState(config: AnalysisConfig): EngineState {
  return {
    v: STATE_VERSION,
    method: config.method,
    fp: configFingerprint(config),
    tick: -1,
    actions: [...(config.actions ?? [])],
    cells: dictionary(),
  };
}

/** The carried state if it belongs to this configuration, else a fresh one and why. */
export function restoreState(
  config: AnalysisConfig,
  previous: unknown,
): { state: EngineState; note?: string } {
  if (previous === null || previous === undefined) return { state: initialState(config) };
  const candidate = previous as Partial<EngineState>;
  if (
    typeof previous !== 'object' ||
    candidate.v !== STATE_VERSION ||
    typeof candidate.tick !== 'number' ||
    !Array.isArray(candidate.actions) ||
    typeof candidate.cells !== 'object' ||
    candidate.cells === null
  ) {
    return { state: initialState(config), note: 'analysis state was unreadable and has been reset' };
  }
  if (candidate.fp !== configFingerprint(config) || candidate.method !== config.method) {
    return {
      state: initialState(config),
      note: 'analysis configuration changed: evidence restarts from this tick',
    };
  }
  // Copy the containers this tick mutates; cell states are replaced, never mutated, by the methods.
  const carried = candidate as EngineState;
  const cells = dictionary(
    Object.entries(carried.cells).map(([metric, slots]) => [metric, dictionary(Object.entries(slots))]),
  );
  return { state: { ...carried, actions: [...carried.actions], cells } };
}

export function analyzeTick(
  config: AnalysisConfig,
  previous: unknown,
  tick: number,
  samples: readonly Sample[],
  context: TickContext = {},
): TickAnalysis {
  const restored = restoreState(config, previous);
  const state = restored.state;
  // The sampled profiles' actions fix the slots on the first tick, unless the spec lists them.
  if (!config.actions && context.actions && state.tick < 0 && context.actions.length > 0) {
    state.actions = [...new Set(context.actions)].slice(0, 100);
    state.listed = true;
  }
  const slotFor = (action: string | undefined): string | null => {
    if (action === undefined) return SERVICE_SLOT;
    if (state.actions.includes(action)) return action;
    if (state.listed) return null;
    if (config.actions ? !config.actions.includes(action) : state.actions.length >= config.maxActions)
      return null;
    state.actions.push(action);
    return action;
  };
  return evaluateTick(config, restored, tick, aggregateTick(samples, config.metrics, slotFor), context);
}

/**
 * The same analysis from a tick aggregated once (aggregateListedActions): several methods can
 * share one aggregation, as the benchmark does. Only for configurations that list their actions,
 * so slots do not depend on the order samples arrive in.
 */
export function analyzeAggregatedTick(
  config: AnalysisConfig,
  previous: unknown,
  tick: number,
  aggregate: TickAggregate,
  context: TickContext = {},
): TickAnalysis {
  if (!config.actions) throw new Error('analyzeAggregatedTick needs analysis.actions');
  return evaluateTick(config, restoreState(config, previous), tick, aggregate, context);
}

export function aggregateListedActions(config: AnalysisConfig, samples: readonly Sample[]): TickAggregate {
  const listed = new Set(config.actions ?? []);
  return aggregateTick(samples, config.metrics, (action) =>
    action === undefined ? SERVICE_SLOT : listed.has(action) ? action : null,
  );
}

function evaluateTick(
  config: AnalysisConfig,
  restored: { state: EngineState; note?: string },
  tick: number,
  aggregate: TickAggregate,
  context: TickContext,
): TickAnalysis {
  const state = restored.state;
  const reasons: string[] = restored.note ? [restored.note] : [];
  const method = methodFor(config.method);
  const comparisons = comparisonCount(config, state.listed ? state.actions.length : undefined);
  state.since ??= tick;
  const given = context.regime ?? { index: 1, sinceTick: state.since };
  state.segment = nextSegment(state.segment, given);
  const regime = {
    index: given.index,
    sinceTick: given.sinceTick,
    segment: { index: state.segment.index, sinceTick: state.segment.sinceTick },
  };
  reasons.push(...aggregate.rejected);

  const checks: Check[] = [];
  const blind: string[] = [];
  for (const metric of config.metrics) {
    const cells = (state.cells[metric.name] ??= dictionary());
    const fresh = aggregate.cells.get(metric.name) ?? new Map<string, CellTick>();
    const slots = new Set([...Object.keys(cells), ...fresh.keys()]);
    if (fresh.size > 0 && method.poolsActions?.(metric)) slots.add(SERVICE_SLOT);
    const metricChecks: Check[] = [];
    for (const slot of [...slots].sort()) {
      const result = method.evaluateCell(
        {
          config,
          metric,
          action: slot === SERVICE_SLOT ? undefined : slot,
          tick,
          comparisons,
          regime,
          tickCells: fresh,
        },
        cells[slot],
        fresh.get(slot),
      );
      cells[slot] = result.state;
      metricChecks.push(...result.checks);
    }
    checks.push(...metricChecks);
    const seen = aggregate.targetsSeen.get(metric.name);
    // Targets need not expose resources, and give one reading per tick: neither their absence
    // nor their first ticks make the tick inconclusive; latency and errors still decide it.
    const resource = RESOURCE_METRICS.includes(metric.name);
    if ((!seen || seen.size < 2) && resource) {
      if (seen) reasons.push(`${metric.name}: only the ${[...seen].join(' and ')} exposes it this tick`);
    } else if (!seen || seen.size < 2) {
      const missing = ['baseline', 'canary'].filter((target) => !seen?.has(target as 'baseline' | 'canary'));
      blind.push(`${metric.name}: no data from ${missing.join(' and ')} this tick`);
    } else if (!resource && !metricChecks.some((check) => check.status !== 'insufficient')) {
      blind.push(
        `${metric.name}: fewer than ${metric.minSamples} ${metric.kind === 'rate' ? 'trials' : 'values'} per target for every action`,
      );
    }
    for (const check of metricChecks) {
      if (
        check.status === 'insufficient' &&
        fresh.has(check.action ?? SERVICE_SLOT) &&
        check.quantile === (metric.quantiles[0] ?? undefined)
      )
        reasons.push(
          `${check.action ?? 'service'} ${metric.name}: not enough data yet (${check.samples.baseline} baseline, ${check.samples.canary} canary; minimum ${metric.minSamples})`,
        );
    }
  }
  state.tick = Math.max(state.tick, tick);

  const anomalies = strongestPerMetricAndAction(checks, config.metrics);
  const proofs = checks.filter((check) => check.healthProven !== undefined);
  const healthProven =
    proofs.length > 0 ? { healthProven: anomalies.length === 0 && proofs.every((c) => c.healthProven) } : {};
  if (anomalies.length > 0) {
    return {
      verdict: {
        status: 'anomalous',
        anomalies,
        reasons: [...anomalies.map((a) => a.summary), ...reasons],
        ...healthProven,
      },
      state,
      checks,
    };
  }
  if (aggregate.sampleCount === 0) {
    return {
      verdict: {
        status: 'inconclusive',
        anomalies: [],
        reasons: [`no samples for tick ${tick}`, ...reasons],
      },
      state,
      checks,
    };
  }
  if (blind.length > 0)
    return {
      verdict: { status: 'inconclusive', anomalies: [], reasons: [...blind, ...reasons], ...healthProven },
      state,
      checks,
    };
  return { verdict: { status: 'healthy', anomalies: [], reasons, ...healthProven }, state, checks };
}

/** One anomaly per metric and action (the quantile with the strongest evidence), strongest first. */
function strongestPerMetricAndAction(checks: readonly Check[], metrics: readonly MetricConfig[]): Anomaly[] {
  const byKey = new Map<string, Check>();
  for (const check of checks) {
    if (check.status !== 'anomalous') continue;
    const key = anomalyKey(check);
    const current = byKey.get(key);
    if (!current || check.pFire < current.pFire) byKey.set(key, check);
  }
  const configs = new Map(metrics.map((metric) => [metric.name, metric]));
  return [...byKey.values()]
    .sort((a, b) => a.pFire - b.pFire)
    .map((check) => {
      const metric = configs.get(check.metric) as MetricConfig;
      return {
        metric: check.metric,
        ...(check.action === undefined ? {} : { action: check.action }),
        target: 'canary' as const,
        effect: round(check.effect),
        interval: [round(check.interval[0]), round(check.interval[1])] as [number, number],
        statistic: check.statistic,
        critical: check.critical,
        summary: summarise(metric, check),
        ...(check.quantile === undefined ? {} : { quantile: check.quantile }),
        pValue: check.pFire,
        window: check.window,
        ...(check.severe === undefined ? {} : { severe: check.severe }),
        ...(check.evidence === undefined ? {} : { evidence: check.evidence }),
      };
    });
}

function round(value: number): number {
  return Math.round(value * 1e4) / 1e4;
}
