/**
 * The default method: anytime-valid sequential tests on all data so far, in the spirit of
 * Lindon, Sanden & Shirikian, "Rapid Regression Detection in Software Deployments through
 * Sequential Testing" (KDD 2022). The false-detection probability stays below alpha however
 * often the rollout looks, because every decision is an e-process crossing 1/α (Ville).
 *
 * Latency (distributions), per quantile p: confidence sequences for Q_baseline(p) and
 * Q_canary(p) from one-sided Bernoulli mixture martingales on the cumulative histograms (see
 * stats.ts; Howard & Ramdas 2022, fixed-quantile construction). A regression is declared when
 * the canary's lower bound exceeds (1 + tolerance) times the baseline's upper bound; each bound
 * is tested at α/(2M), M = comparisons (Bonferroni over metrics × quantiles × action slots).
 * Unlike the time-uniform DKW band (ε_n ≈ 0.85·sqrt((log log(e·n) + 0.8·log(1612/α))/n),
 * Howard & Ramdas 2022; constants as quoted in our notes, unverified and unused in any decision), which is uniform over p and so as wide at p99 as at p50, these
 * bounds scale with sqrt(p(1-p)): roughly 7 times tighter at p99, where tail regressions live.
 *
 * Plus, per distribution, a paired test of stochastic order with the tolerance (stats.ts): random
 * canary/baseline pairs within each tick, a sequential sign test whose null is "canary at most
 * (1 + tolerance) times slower". It uses the whole distribution, so it sees a uniform slowdown
 * long before any single quantile does, and it only needs counts in the state.
 *
 * Errors and other counts: the Poisson-to-multinomial reduction of Lindon & Malek (NeurIPS
 * 2022) with a discrete prior over the rate ratio (stats.ts); null "ratio <= 1 + tolerance".
 *
 * The p-value reported is the running minimum of 1/E (times the corrections): it never rises.
 */
import { finiteInterval, formatP, type Check } from '../checks';
import type { CellTick } from '../aggregate';
import {
  decodeHistogram,
  emptyHistogram,
  encodeHistogram,
  estimateQuantile,
  mergeHistograms,
  upperEdge,
  MIN_VALUE,
} from '../histogram';
import { fnvHash32, seededRandom } from '../../core/random';
import {
  addPairCounts,
  countPairs,
  emptyPairCounts,
  pairRatioInterval,
  PAIR_GRID_SIZE,
  type PairCounts,
  logBernoulliEvidence,
  cumulativeOf,
  logQuantileShiftEvidence,
  logRateEvidence,
  quantileBounds,
  rateRatioEstimate,
  rateRatioInterval,
  updateRateLikelihood,
  type CumulativeHistogram,
} from '../stats';
import type { Json } from '../../core/validation';
import {
  baseCheck,
  directionsOf,
  isRecord,
  numberList,
  numberOr,
  type CellContext,
  type CellResult,
  type MethodImplementation,
} from './method';

export const sequentialMethod: MethodImplementation = {
  evaluateCell(context, state, data) {
    return context.metric.kind === 'rate'
      ? rateCell(context, state, data)
      : distributionCell(context, state, data);
  },
};

function distributionCell(
  context: CellContext,
  state: Json | undefined,
  data: CellTick | undefined,
): CellResult {
  const previous = isRecord(state) ? state : {};
  let baseline = typeof previous.b === 'string' ? decodeHistogram(previous.b) : emptyHistogram();
  let canary = typeof previous.c === 'string' ? decodeHistogram(previous.c) : emptyHistogram();
  const firstTick = numberOr(previous.f, data ? context.tick : -1);
  if (data) {
    baseline = mergeHistograms(baseline, data.baseline.histogram);
    canary = mergeHistograms(canary, data.canary.histogram);
  }
  const runningP = numberList(previous.p);
  const A = cumulativeOf(baseline);
  const B = cumulativeOf(canary);
  const { metric, config, comparisons } = context;
  const sides = directionsOf(context.metric);
  const samples = { baseline: A.total, canary: B.total };
  const window = { fromTick: firstTick < 0 ? context.tick : firstTick, toTick: context.tick };
  const enough = A.total >= metric.minSamples && B.total >= metric.minSamples;
  const logThreshold = Math.log((2 * sides.length * comparisons) / config.alpha);
  const checks: Check[] = metric.quantiles.map((p, q) => {
    let evidence = 0;
    for (const side of sides) {
      const e =
        side === 'increase'
          ? logQuantileShiftEvidence(A, B, p, metric.tolerance)
          : logQuantileShiftEvidence(B, A, p, metric.tolerance);
      evidence = Math.max(evidence, e);
    }
    const pNow = Math.min(1, 2 * sides.length * comparisons * Math.exp(-evidence));
    const pFire = Math.min(pNow, runningP[q] ?? 1);
    runningP[q] = pFire;
    const estimate = estimateQuantile(canary, p) / estimateQuantile(baseline, p) - 1;
    const status = !enough ? 'insufficient' : pFire <= config.alpha ? 'anomalous' : 'ok';
    // Four binary searches: paid only where someone reads the interval.
    const interval: [number, number] =
      status === 'anomalous' ? quantileRatioInterval(A, B, p, logThreshold) : [0, 0];
    return {
      ...baseCheck(context, samples, window),
      quantile: p,
      status,
      pFire,
      effect: Number.isFinite(estimate) ? estimate : 0,
      interval,
      statistic: `anytime p=${formatP(pFire)} (quantile confidence sequences, ${A.total} vs ${B.total} values)`,
    };
  });
  // The paired stochastic-order test: this tick's observations at full resolution, counts carried.
  let pairs = decodePairs(previous.r);
  if (data) {
    const random = seededRandom(fnvHash32(`${context.tick}|${metric.name}|${context.action ?? '*'}`));
    pairs = addPairCounts(
      pairs,
      countPairs(data.baseline.exact, data.canary.exact, metric.tolerance, random),
    );
  }
  let pairEvidence = 0;
  for (const side of sides)
    pairEvidence = Math.max(
      pairEvidence,
      logBernoulliEvidence(side === 'increase' ? pairs.up : pairs.down, pairs.n, 0.5, 'above'),
    );
  const pairP = Math.min(numberOr(previous.rp, 1), 1, sides.length * comparisons * Math.exp(-pairEvidence));
  const pairStatus =
    pairs.n < metric.minSamples ? 'insufficient' : pairP <= config.alpha ? 'anomalous' : 'ok';
  const ratio = pairRatioInterval(
    pairs,
    Math.log((2 * comparisons) / config.alpha),
    pairStatus === 'anomalous',
  );
  checks.push({
    ...baseCheck(context, { baseline: pairs.n, canary: pairs.n }, window),
    status: pairStatus,
    pFire: pairP,
    effect: pairs.n > 0 ? ratio.estimate - 1 : 0,
    interval: pairStatus === 'anomalous' ? finiteInterval(ratio.low - 1, ratio.high - 1) : [0, 0],
    statistic: `anytime p=${formatP(pairP)} (paired stochastic order, ${pairs.up} of ${pairs.n} canary/baseline pairs beyond the tolerance)`,
  });
  const next: Json = {
    b: encodeHistogram(baseline),
    c: encodeHistogram(canary),
    p: runningP,
    r: encodePairs(pairs),
    rp: pairP,
    f: window.fromTick,
  };
  return { state: next, checks };
}

/** `n.up.down` then the two grids, base 36, `;`-separated. */
function encodePairs(pairs: PairCounts): string {
  const list = (values: number[]) => values.map((v) => v.toString(36)).join('.');
  return `${list([pairs.n, pairs.up, pairs.down])};${list(pairs.above)};${list(pairs.below)}`;
}

function decodePairs(value: Json | undefined): PairCounts {
  if (typeof value !== 'string') return emptyPairCounts();
  const [head, above, below] = value.split(';').map((part) => part.split('.').map((v) => parseInt(v, 36)));
  const valid = (list: number[] | undefined, length: number) =>
    list !== undefined && list.length === length && list.every((v) => Number.isInteger(v) && v >= 0);
  if (!valid(head, 3) || !valid(above, PAIR_GRID_SIZE) || !valid(below, PAIR_GRID_SIZE))
    return emptyPairCounts();
  const [n = 0, up = 0, down = 0] = head as number[];
  return { n, up, down, above: above as number[], below: below as number[] };
}

/** Simultaneous interval of Q_canary(p)/Q_baseline(p) - 1 from the four one-sided bounds. */
function quantileRatioInterval(
  A: CumulativeHistogram,
  B: CumulativeHistogram,
  p: number,
  logThreshold: number,
): [number, number] {
  const a = quantileBounds(A, p, logThreshold);
  const b = quantileBounds(B, p, logThreshold);
  const edge = (index: number) => (index < 0 ? 0 : Number.isFinite(index) ? upperEdge(index) : Infinity);
  const low = b.lower < 0 || !Number.isFinite(a.upper) ? 0 : edge(b.lower) / edge(a.upper);
  const high =
    !Number.isFinite(b.upper) || a.lower < 0 ? Infinity : edge(b.upper) / Math.max(edge(a.lower), MIN_VALUE);
  return finiteInterval(low - 1, high - 1);
}

function rateCell(context: CellContext, state: Json | undefined, data: CellTick | undefined): CellResult {
  const previous = isRecord(state) ? state : {};
  let logLikelihood = numberList(previous.ll);
  const [baselineEvents = 0, baselineTrials = 0] = numberList(previous.b);
  const [canaryEvents = 0, canaryTrials = 0] = numberList(previous.c);
  const totals = {
    baseline: { events: baselineEvents, trials: baselineTrials },
    canary: { events: canaryEvents, trials: canaryTrials },
  };
  const firstTick = numberOr(previous.f, data ? context.tick : -1);
  if (data) {
    logLikelihood = updateRateLikelihood(logLikelihood, data.baseline, data.canary);
    totals.baseline.events += data.baseline.events;
    totals.baseline.trials += data.baseline.trials;
    totals.canary.events += data.canary.events;
    totals.canary.trials += data.canary.trials;
  }
  const { metric, config, comparisons } = context;
  const sides = directionsOf(context.metric);
  let evidence = 0;
  for (const side of sides)
    evidence = Math.max(evidence, logRateEvidence(logLikelihood, metric.tolerance, side));
  const pNow = Math.min(1, sides.length * comparisons * Math.exp(-evidence));
  const pFire = Math.min(pNow, numberOr(previous.p, 1));
  const enough = totals.baseline.trials >= metric.minSamples && totals.canary.trials >= metric.minSamples;
  const rateB = totals.baseline.trials > 0 ? totals.baseline.events / totals.baseline.trials : 0;
  const rateC = totals.canary.trials > 0 ? totals.canary.events / totals.canary.trials : 0;
  const estimate =
    totals.baseline.events > 0 && totals.canary.events > 0 ? rateC / rateB : rateRatioEstimate(logLikelihood);
  const [low, high] = rateRatioInterval(logLikelihood, Math.log((2 * comparisons) / config.alpha));
  const window = { fromTick: firstTick < 0 ? context.tick : firstTick, toTick: context.tick };
  const check: Check = {
    ...baseCheck(context, { baseline: totals.baseline.trials, canary: totals.canary.trials }, window),
    status: !enough ? 'insufficient' : pFire <= config.alpha ? 'anomalous' : 'ok',
    pFire,
    effect: totals.baseline.events + totals.canary.events === 0 ? 0 : estimate - 1,
    interval: finiteInterval(low - 1, high - 1),
    statistic: `anytime p=${formatP(pFire)} (rate-ratio e-process; ${totals.canary.events}/${totals.canary.trials} vs ${totals.baseline.events}/${totals.baseline.trials})`,
  };
  const next: Json = {
    ll: logLikelihood.map((value) => Math.round(value * 1e4) / 1e4),
    b: [totals.baseline.events, totals.baseline.trials],
    c: [totals.canary.events, totals.canary.trials],
    p: pFire,
    f: window.fromTick,
  };
  return { state: next, checks: [check] };
}
