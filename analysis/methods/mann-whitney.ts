/**
 * The peer reference: Kayenta's NetflixACAJudge MannWhitneyClassifier, applied to each tick's
 * window on its own. Per window it runs the Mann-Whitney U test, inverts it into a confidence
 * interval of the canary's shift (here multiplicative: shifts are whole log buckets, so the
 * Hodges-Lehmann estimate is a ratio), and classifies the metric High when the interval's lower
 * end exceeds `fraction` (0.25, Kayenta's default) of the estimate; the effect size
 * (Kayenta's `meanRatio`) must also exceed 1 + tolerance (`allowedIncrease`). The confidence
 * level is 1 - alpha, per comparison and per window, with no multiplicity correction: Kayenta
 * neither corrects across metrics nor across repeated looks, which is what the benchmark shows.
 */
import { finiteInterval, formatP, type Check } from '../checks';
import { SUB_BUCKETS, type LogHistogram } from '../histogram';
import { mannWhitney, mannWhitneyRates, normalCdf, normalQuantile, normalSurvival } from '../stats';
import type { CellTick } from '../aggregate';
import { baseCheck, type CellContext, type MethodImplementation } from './method';

export const KAYENTA_FRACTION = 0.25;

export const mannWhitneyMethod: MethodImplementation = {
  evaluateCell(context, _state, data) {
    const check =
      context.metric.kind === 'rate' ? rateCheck(context, data) : distributionCheck(context, data);
    return { state: {}, checks: [check] };
  },
};

const toRatio = (shift: number) => 2 ** (shift / SUB_BUCKETS);

function insufficient(
  context: CellContext,
  data: CellTick | undefined,
  samples: { baseline: number; canary: number },
): Check {
  void data;
  return {
    ...baseCheck(context, samples, { fromTick: context.tick, toTick: context.tick }),
    status: 'insufficient',
    pFire: 1,
    effect: 0,
    interval: [0, 0],
    statistic: 'not enough data in this window',
  };
}

function distributionCheck(context: CellContext, data: CellTick | undefined): Check {
  const { metric, config } = context;
  const samples = { baseline: data?.baseline.trials ?? 0, canary: data?.canary.trials ?? 0 };
  if (!data || samples.baseline < metric.minSamples || samples.canary < metric.minSamples)
    return insufficient(context, data, samples);
  const A = data.baseline.histogram;
  const B = data.canary.histogram;
  const meanRatio = data.canary.sum / samples.canary / (data.baseline.sum / samples.baseline);
  let estimateCache: number | undefined;
  const estimate = () => (estimateCache ??= hodgesLehmannShift(A, B));
  const z = normalQuantile(1 - config.alpha / 2);
  let pFire = 1;
  if (
    (metric.direction === 'increase' || metric.direction === 'either') &&
    meanRatio > 1 + metric.tolerance
  ) {
    const atBound = mannWhitney(A, B, KAYENTA_FRACTION * Math.abs(estimate())).z;
    pFire = Math.min(pFire, 2 * normalSurvival(atBound));
  }
  if (
    (metric.direction === 'decrease' || metric.direction === 'either') &&
    meanRatio < 1 / (1 + metric.tolerance)
  ) {
    const atBound = mannWhitney(A, B, -KAYENTA_FRACTION * Math.abs(estimate())).z;
    pFire = Math.min(pFire, 2 * normalCdf(atBound));
  }
  const status = pFire <= config.alpha ? 'anomalous' : 'ok';
  const [low, high] = status === 'anomalous' ? shiftInterval(A, B, z) : [0, 0];
  return {
    ...baseCheck(context, samples, { fromTick: context.tick, toTick: context.tick }),
    status,
    pFire: Math.min(1, pFire),
    effect: Number.isFinite(meanRatio) ? meanRatio - 1 : 0,
    interval: finiteInterval(toRatio(low) - 1, toRatio(high) - 1),
    statistic: `Mann-Whitney p=${formatP(Math.min(1, pFire))}${status === 'anomalous' ? `, Hodges-Lehmann x${toRatio(estimate()).toFixed(3)}` : ''}, mean ratio ${meanRatio.toFixed(3)} (window of ${samples.baseline} vs ${samples.canary})`,
  };
}

function span(A: LogHistogram, B: LogHistogram): number {
  const first = Math.min(A.indices[0] ?? 0, B.indices[0] ?? 0);
  const last = Math.max(A.indices[A.indices.length - 1] ?? 0, B.indices[B.indices.length - 1] ?? 0);
  return last - first + 1;
}

/** Largest whole-bucket shift s at which the shifted canary still ranks at least even (z >= 0). */
function hodgesLehmannShift(A: LogHistogram, B: LogHistogram): number {
  return largestShiftWith(A, B, (z) => z >= 0);
}

function largestShiftWith(A: LogHistogram, B: LogHistogram, accept: (z: number) => boolean): number {
  const limit = span(A, B);
  let lo = -limit;
  let hi = limit;
  if (!accept(mannWhitney(A, B, lo).z)) return lo;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (accept(mannWhitney(A, B, mid).z)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Two-sided interval of the shift, in buckets: the shifts the test does not reject. */
function shiftInterval(A: LogHistogram, B: LogHistogram, z: number): [number, number] {
  const high = largestShiftWith(A, B, (value) => value >= -z);
  const low = largestShiftWith(A, B, (value) => value > z) + 1;
  return [Math.min(low, high), high];
}

function rateCheck(context: CellContext, data: CellTick | undefined): Check {
  const { metric, config } = context;
  const samples = { baseline: data?.baseline.trials ?? 0, canary: data?.canary.trials ?? 0 };
  if (!data || samples.baseline < metric.minSamples || samples.canary < metric.minSamples)
    return insufficient(context, data, samples);
  const rateA = data.baseline.events / samples.baseline;
  const rateB = data.canary.events / samples.canary;
  const ratio = rateA > 0 ? rateB / rateA : rateB > 0 ? Infinity : 1;
  const z = mannWhitneyRates(data.baseline, data.canary);
  let pFire = 1;
  if ((metric.direction === 'increase' || metric.direction === 'either') && ratio > 1 + metric.tolerance)
    pFire = Math.min(pFire, 2 * normalSurvival(z));
  if (
    (metric.direction === 'decrease' || metric.direction === 'either') &&
    ratio < 1 / (1 + metric.tolerance)
  )
    pFire = Math.min(pFire, 2 * normalCdf(z));
  const zq = normalQuantile(1 - config.alpha / 2);
  const logRatio = Math.log(Math.max(ratio, 1e-12));
  const se =
    data.baseline.events > 0 && data.canary.events > 0
      ? Math.sqrt(
          1 / data.canary.events - 1 / samples.canary + 1 / data.baseline.events - 1 / samples.baseline,
        )
      : Infinity;
  return {
    ...baseCheck(context, samples, { fromTick: context.tick, toTick: context.tick }),
    status: pFire <= config.alpha ? 'anomalous' : 'ok',
    pFire: Math.min(1, pFire),
    effect: Number.isFinite(ratio) ? ratio - 1 : 1e6,
    interval: finiteInterval(Math.exp(logRatio - zq * se) - 1, Math.exp(logRatio + zq * se) - 1),
    statistic: `Mann-Whitney p=${formatP(Math.min(1, pFire))} (window ${data.canary.events}/${samples.canary} vs ${data.baseline.events}/${samples.baseline})`,
  };
}
