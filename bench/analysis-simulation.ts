/**
 * The simulated rollouts of the analysis benchmark, at probe volumes real rollouts have: six
 * actions with different volumes, heavy-tailed latencies (log-normal and Weibull bodies with
 * p99 several times the median, plus a Pareto tail), Bernoulli errors, a daily drift and short
 * spikes that hit both targets alike, and regressions in one action of the canary that start
 * some ticks in. Seeded: the same seed gives the same rollouts.
 */
import type { Sample } from '../analysis/samples';
import type { RandomStream } from '../core/random';

function gaussian(random: RandomStream): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

interface ActionShape {
  name: string;
  /** Probe requests relative to the regressed action (which gets the nominal volume). */
  weight: number;
  body:
    { kind: 'lognormal'; median: number; sigma: number } | { kind: 'weibull'; scale: number; shape: number };
  /** Share of requests on a slow path: times a Pareto(1.3) factor >= 1. */
  tail: number;
  errorRate: number;
}

export const ACTIONS: ActionShape[] = [
  {
    name: 'browse',
    weight: 2,
    body: { kind: 'lognormal', median: 25, sigma: 0.7 },
    tail: 0.01,
    errorRate: 0.005,
  },
  {
    name: 'search',
    weight: 1.5,
    body: { kind: 'weibull', scale: 60, shape: 1.2 },
    tail: 0.02,
    errorRate: 0.005,
  },
  {
    name: 'product',
    weight: 1.2,
    body: { kind: 'lognormal', median: 40, sigma: 0.6 },
    tail: 0.01,
    errorRate: 0.005,
  },
  {
    name: 'cart',
    weight: 1,
    body: { kind: 'lognormal', median: 30, sigma: 0.65 },
    tail: 0.02,
    errorRate: 0.005,
  },
  {
    name: 'checkout',
    weight: 0.7,
    body: { kind: 'weibull', scale: 150, shape: 1.1 },
    tail: 0.03,
    errorRate: 0.005,
  },
  {
    name: 'login',
    weight: 0.6,
    body: { kind: 'lognormal', median: 70, sigma: 0.5 },
    tail: 0.01,
    errorRate: 0.005,
  },
];

/** The action every regression is injected into; it gets the nominal samples per tick. */
export const REGRESSED_ACTION = 'cart';

export interface Scenario {
  id: string;
  title: string;
  /** True when a detection is the right answer; false scenarios count false rollbacks. */
  regression: boolean;
  /** Canary latency of the regressed action times this. */
  latencyScale?: number;
  /** This share of the regressed action's canary requests is `factor` times slower. */
  slowTail?: { share: number; factor: number };
  /** Error rate of the regressed action on the canary. */
  errorRate?: number;
  /** The regression starts at a tick drawn uniformly from this range (inclusive); else from tick 1. */
  onset?: [number, number];
  /**
   * Each target's process slower or faster as a whole for a tick (its CPU share, its GC): every
   * latency of the target that tick times exp(this · N(0, 1)), drawn per target and tick.
   */
  processEffect?: number;
}

export const SCENARIOS: Scenario[] = [
  { id: 'aa', title: 'A/A', regression: false },
  {
    id: 'aa15',
    title: 'A/A, each target 15 % slower or faster as a whole per tick',
    regression: false,
    processEffect: 0.15,
  },
  { id: 'within', title: '+2 % inside a 5 % tolerance', regression: false, latencyScale: 1.02 },
  { id: 'lat30', title: '+30 % latency, late onset', regression: true, latencyScale: 1.3, onset: [3, 12] },
  {
    id: 'err3',
    title: 'errors 0.5 % -> 3.5 %, late onset',
    regression: true,
    errorRate: 0.035,
    onset: [3, 12],
  },
  {
    id: 'tail',
    title: '8 % of requests 4x slower, late onset',
    regression: true,
    slowTail: { share: 0.08, factor: 4 },
    onset: [3, 12],
  },
];

/** The day compressed into this many ticks, so a rollout sees its drift. */
const DAY_TICKS = 120;
const SPIKE_CHANCE = 0.05;

export interface TickWorld {
  /** Multiplies every latency of both targets this tick (daily drift). */
  drift: number;
  /** Share of this tick's requests hit by a spike, and its factor. */
  spike: { share: number; factor: number };
}

export function worldAt(random: RandomStream, tick: number, phase: number): TickWorld {
  const drift = Math.exp(0.3 * Math.sin((2 * Math.PI * (tick + phase)) / DAY_TICKS));
  const spiking = random() < SPIKE_CHANCE;
  return {
    drift,
    spike: spiking ? { share: 0.2 + 0.3 * random(), factor: 2 + 2 * random() } : { share: 0, factor: 1 },
  };
}

function drawLatency(random: RandomStream, action: ActionShape, world: TickWorld): number {
  const body = action.body;
  let value =
    body.kind === 'lognormal'
      ? body.median * Math.exp(body.sigma * gaussian(random))
      : body.scale * (-Math.log(Math.max(random(), 1e-12))) ** (1 / body.shape);
  if (random() < action.tail) value *= Math.max(random(), 1e-9) ** (-1 / 1.3);
  if (random() < world.spike.share) value *= world.spike.factor;
  return value * world.drift;
}

function poisson(random: RandomStream, mean: number): number {
  // Normal approximation above 30, exact inversion below: volumes vary tick to tick.
  if (mean > 30) return Math.max(0, Math.round(mean + Math.sqrt(mean) * gaussian(random)));
  let k = 0;
  let p = Math.exp(-mean);
  let sum = p;
  const u = random();
  while (u > sum && k < 1000) {
    k += 1;
    p *= mean / k;
    sum += p;
  }
  return k;
}

/**
 * One tick's samples: per target and action a latency histogram and error counts. `active`
 * says whether the scenario's regression is on this tick.
 */
export function simulateTick(
  random: RandomStream,
  scenario: Scenario,
  tick: number,
  perAction: number,
  world: TickWorld,
  active: boolean,
): Sample[] {
  const samples: Sample[] = [];
  for (const target of ['baseline', 'canary'] as const) {
    const processFactor = scenario.processEffect ? Math.exp(scenario.processEffect * gaussian(random)) : 1;
    for (const action of ACTIONS) {
      const regressed = active && target === 'canary' && action.name === REGRESSED_ACTION;
      const n = poisson(random, perAction * action.weight);
      const values: number[] = [];
      let errors = 0;
      const errorRate = regressed && scenario.errorRate !== undefined ? scenario.errorRate : action.errorRate;
      for (let i = 0; i < n; i += 1) {
        let value = drawLatency(random, action, world) * processFactor;
        if (regressed && scenario.latencyScale) value *= scenario.latencyScale;
        if (regressed && scenario.slowTail && random() < scenario.slowTail.share)
          value *= scenario.slowTail.factor;
        values.push(value);
        if (random() < errorRate) errors += 1;
      }
      if (n === 0) continue;
      samples.push({
        t: tick,
        target,
        metric: 'latency_ms',
        action: action.name,
        histogram: { values, counts: values.map(() => 1) },
      });
      samples.push({
        t: tick,
        target,
        metric: 'error',
        action: action.name,
        counts: { events: errors, trials: n },
      });
    }
  }
  return samples;
}
