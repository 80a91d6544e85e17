/**
 * The simulated rollouts of the analysis benchmark: six actions with different volumes and
 * realistic latency shapes (log-normal bodies with a Pareto tail, bimodal cache hit/miss),
 * Bernoulli errors, and regressions injected into one action of the canary. Seeded: the same
 * seed gives the same rollouts. Runs in a worker thread or inline.
 */
import { aggregateListedActions, analyzeAggregatedTick } from '../analysis/engine';
import { DEFAULT_ERRORS, DEFAULT_LATENCY, type AnalysisConfig } from '../analysis/config';
import { bucketIndex, upperEdge } from '../analysis/histogram';
import type { Sample } from '../analysis/samples';
import type { AnalysisMethod } from '../rollout/spec';

import { seededRandom, type RandomStream } from '../core/random';

function gaussian(random: RandomStream): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

interface LatencyShape {
  /** Mixture of log-normal components (weight, median ms, sigma). */
  modes: { weight: number; median: number; sigma: number }[];
  /** Share of requests that hit a slow path: multiplied by a Pareto(1.5) factor >= 1. */
  tail: number;
}

export interface ActionProfile {
  name: string;
  /** Share of the probe traffic. */
  volume: number;
  latency: LatencyShape;
  errorRate: number;
}

export const ACTIONS: ActionProfile[] = [
  {
    name: 'browse',
    volume: 0.34,
    latency: {
      modes: [
        { weight: 0.7, median: 8, sigma: 0.3 },
        { weight: 0.3, median: 60, sigma: 0.4 },
      ],
      tail: 0.01,
    },
    errorRate: 0.005,
  },
  {
    name: 'search',
    volume: 0.24,
    latency: { modes: [{ weight: 1, median: 45, sigma: 0.5 }], tail: 0.02 },
    errorRate: 0.005,
  },
  {
    name: 'product',
    volume: 0.18,
    latency: {
      modes: [
        { weight: 0.8, median: 12, sigma: 0.25 },
        { weight: 0.2, median: 90, sigma: 0.35 },
      ],
      tail: 0.01,
    },
    errorRate: 0.005,
  },
  {
    name: 'cart',
    volume: 0.11,
    latency: { modes: [{ weight: 1, median: 30, sigma: 0.4 }], tail: 0.02 },
    errorRate: 0.005,
  },
  {
    name: 'checkout',
    volume: 0.08,
    latency: { modes: [{ weight: 1, median: 120, sigma: 0.45 }], tail: 0.03 },
    errorRate: 0.005,
  },
  {
    name: 'login',
    volume: 0.05,
    latency: { modes: [{ weight: 1, median: 70, sigma: 0.35 }], tail: 0.01 },
    errorRate: 0.005,
  },
];

/** The action every regression is injected into (mid volume: 11 % of probes). */
export const REGRESSED_ACTION = 'cart';

export interface Scenario {
  id: string;
  title: string;
  /** True when a detection is the right answer; false scenarios count false rollbacks. */
  regression: boolean;
  /** How the canary's regressed action differs. */
  latencyScale?: number;
  slowTail?: { share: number; factor: number };
  errorRate?: number;
}

export const SCENARIOS: Scenario[] = [
  { id: 'aa', title: 'A/A', regression: false },
  { id: 'p90+4', title: 'p90 +4 % (within 5 % tolerance)', regression: false, latencyScale: 1.04 },
  { id: 'p90+10', title: 'p90 +10 %', regression: true, latencyScale: 1.1 },
  { id: 'p90+25', title: 'p90 +25 %', regression: true, latencyScale: 1.25 },
  { id: 'p90+50', title: 'p90 +50 %', regression: true, latencyScale: 1.5 },
  { id: 'err1', title: 'errors 0.5 % -> 1 %', regression: true, errorRate: 0.01 },
  { id: 'err2', title: 'errors 0.5 % -> 2 %', regression: true, errorRate: 0.02 },
  { id: 'tail', title: 'tail only (p99)', regression: true, slowTail: { share: 0.02, factor: 4 } },
];

function drawLatency(random: RandomStream, shape: LatencyShape, scenario: Scenario | undefined): number {
  let pick = random();
  let mode = shape.modes[shape.modes.length - 1] as LatencyShape['modes'][number];
  for (const candidate of shape.modes) {
    if (pick < candidate.weight) {
      mode = candidate;
      break;
    }
    pick -= candidate.weight;
  }
  let value = mode.median * Math.exp(mode.sigma * gaussian(random));
  if (random() < shape.tail) value *= Math.max(random(), 1e-9) ** (-1 / 1.5);
  if (scenario?.latencyScale) value *= scenario.latencyScale;
  if (scenario?.slowTail && random() < scenario.slowTail.share) value *= scenario.slowTail.factor;
  return value;
}

/** Walker alias table over bucket indices: O(1) draws from the bucketed distribution. */
interface AliasTable {
  /** The bucketed distribution itself (bucket -> weight), for the true quantiles. */
  weights: Map<number, number>;
  indices: Int32Array;
  probability: Float64Array;
  alias: Int32Array;
}

function buildAlias(weights: Map<number, number>): AliasTable {
  const entries = [...weights.entries()].sort((a, b) => a[0] - b[0]);
  const n = entries.length;
  const total = entries.reduce((sum, [, w]) => sum + w, 0);
  const indices = new Int32Array(entries.map(([index]) => index));
  const scaled = entries.map(([, w]) => (w * n) / total);
  const probability = new Float64Array(n);
  const alias = new Int32Array(n);
  const small: number[] = [];
  const large: number[] = [];
  scaled.forEach((p, i) => (p < 1 ? small : large).push(i));
  while (small.length > 0 && large.length > 0) {
    const s = small.pop() as number;
    const l = large.pop() as number;
    probability[s] = scaled[s] as number;
    alias[s] = l;
    scaled[l] = (scaled[l] as number) + (scaled[s] as number) - 1;
    (scaled[l] < 1 ? small : large).push(l);
  }
  for (const i of [...small, ...large]) probability[i] = 1;
  return { weights, indices, probability, alias };
}

/** A quantile of a table's bucketed distribution (bucket centre). */
export function tableQuantile(table: AliasTable, p: number): number {
  const entries = [...table.weights.entries()].sort((a, b) => a[0] - b[0]);
  const total = entries.reduce((sum, [, w]) => sum + w, 0);
  let running = 0;
  for (const [index, weight] of entries) {
    running += weight;
    if (running >= p * total) return upperEdge(index - 0.5);
  }
  return upperEdge((entries[entries.length - 1]?.[0] ?? 0) - 0.5);
}

/** True relative change of the regressed action's quantiles in a scenario. */
export function scenarioTruth(tables: SimulationTables, scenario: Scenario): Record<string, number> {
  const base = tables.baseline.get(REGRESSED_ACTION) as AliasTable;
  const canary = tables.canary.get(scenario.id)?.get(REGRESSED_ACTION) ?? base;
  return Object.fromEntries(
    [0.5, 0.9, 0.99].map((p) => [
      `p${Math.round(p * 100)}`,
      tableQuantile(canary, p) / tableQuantile(base, p) - 1,
    ]),
  );
}

/** The exact bucketed distribution of a latency shape, estimated once by a large Monte Carlo draw. */
export function latencyTable(
  shape: LatencyShape,
  scenario: Scenario | undefined,
  seed: number,
  draws = 400_000,
): AliasTable {
  const random = seededRandom(seed);
  const weights = new Map<number, number>();
  for (let i = 0; i < draws; i += 1) {
    const index = bucketIndex(drawLatency(random, shape, scenario));
    weights.set(index, (weights.get(index) ?? 0) + 1);
  }
  return buildAlias(weights);
}

/**
 * n draws from the table: the bucket by alias sampling, the value log-uniform inside the bucket,
 * so every method sees continuous values (a piecewise log-uniform version of the true shape).
 */
function sampleValues(
  random: RandomStream,
  table: AliasTable,
  n: number,
): { values: number[]; counts: number[] } {
  const size = table.indices.length;
  const values = new Array<number>(n);
  for (let i = 0; i < n; i += 1) {
    const u = random() * size;
    const k = Math.floor(u);
    const pick = u - k < (table.probability[k] as number) ? k : (table.alias[k] as number);
    const index = table.indices[pick] as number;
    values[i] = upperEdge(index - 1 + random());
  }
  return { values, counts: new Array<number>(n).fill(1) };
}

function binomial(random: RandomStream, n: number, p: number): number {
  let count = 0;
  for (let i = 0; i < n; i += 1) if (random() < p) count += 1;
  return count;
}

export interface SimulationTables {
  baseline: Map<string, AliasTable>;
  canary: Map<string, Map<string, AliasTable>>;
}

export function buildTables(seed: number, scenarios: Scenario[], draws?: number): SimulationTables {
  const baseline = new Map<string, AliasTable>();
  ACTIONS.forEach((action, i) =>
    baseline.set(action.name, latencyTable(action.latency, undefined, seed + i, draws)),
  );
  const canary = new Map<string, Map<string, AliasTable>>();
  const regressed = ACTIONS.find((action) => action.name === REGRESSED_ACTION) as ActionProfile;
  for (const scenario of scenarios) {
    if (!scenario.latencyScale && !scenario.slowTail) continue;
    canary.set(
      scenario.id,
      new Map([[REGRESSED_ACTION, latencyTable(regressed.latency, scenario, seed + 101, draws)]]),
    );
  }
  return { baseline, canary };
}

/** One tick of probe samples for both targets. */
export function simulateTick(
  random: RandomStream,
  tables: SimulationTables,
  scenario: Scenario,
  t: number,
  perTarget: number,
): Sample[] {
  const samples: Sample[] = [];
  for (const target of ['baseline', 'canary'] as const) {
    for (const action of ACTIONS) {
      const n = Math.max(1, Math.round(perTarget * action.volume * (1 + 0.1 * gaussian(random))));
      const regressed = target === 'canary' && action.name === REGRESSED_ACTION;
      const table =
        (regressed ? tables.canary.get(scenario.id)?.get(action.name) : undefined) ??
        tables.baseline.get(action.name);
      samples.push({
        t,
        target,
        metric: 'latency_ms',
        action: action.name,
        histogram: sampleValues(random, table as AliasTable, n),
      });
      const rate = regressed && scenario.errorRate ? scenario.errorRate : action.errorRate;
      samples.push({
        t,
        target,
        metric: 'error',
        action: action.name,
        counts: { events: binomial(random, n, rate), trials: n },
      });
    }
  }
  return samples;
}

/** Per tick: the smallest alpha at which the method would fire, and the action it would name. */
export interface RolloutTrace {
  minP: number[];
  action: number[];
}

/** Several configurations over the same ticks; each tick is aggregated once for all of them. */
export function runRollouts(configs: AnalysisConfig[], samplesPerTick: Sample[][]): RolloutTrace[] {
  const states: unknown[] = configs.map(() => null);
  const traces: RolloutTrace[] = configs.map(() => ({ minP: [], action: [] }));
  samplesPerTick.forEach((samples, i) => {
    const aggregate = aggregateListedActions(configs[0] as AnalysisConfig, samples);
    configs.forEach((config, k) => {
      const result = analyzeAggregatedTick(config, states[k], i + 1, aggregate);
      states[k] = result.state;
      let best = 1;
      let bestAction = -1;
      for (const check of result.checks) {
        if (check.status === 'insufficient' || check.pFire >= best) continue;
        best = check.pFire;
        bestAction = ACTIONS.findIndex((a) => a.name === check.action);
      }
      traces[k]?.minP.push(best);
      traces[k]?.action.push(bestAction);
    });
  });
  return traces;
}

export function configFor(method: AnalysisMethod): AnalysisConfig {
  return {
    method,
    alpha: 0.05,
    metrics: [{ ...DEFAULT_LATENCY, quantiles: [...DEFAULT_LATENCY.quantiles] }, { ...DEFAULT_ERRORS }],
    maxActions: ACTIONS.length,
    actions: ACTIONS.map((a) => a.name),
    seedWindow: 10,
  };
}
