/**
 * The seed's reference method: a moving average and standard-deviation band. Per tick it takes
 * the baseline's statistic (each configured quantile of a distribution, or the error rate),
 * keeps the last `seedWindow` of them, and flags the canary when its statistic for the same tick
 * leaves the band mean ± k·sd (k = z_{1-alpha}, one-sided per bad direction) and also differs by
 * more than the tolerance. No correction for repeated looks or for many comparisons.
 */
import { estimateQuantile } from '../histogram';
import { finiteInterval, formatP, type Check } from '../checks';
import { normalCdf, normalQuantile, normalSurvival } from '../stats';
import { baseCheck, isRecord, numberList, type CellContext, type MethodImplementation } from './method';
import type { CellTick } from '../aggregate';

const MIN_HISTORY = 3;

export const seedMethod: MethodImplementation = {
  evaluateCell(context, state, data) {
    const previous = isRecord(state) && Array.isArray(state.h) ? state.h : [];
    const stats = statistics(context, data);
    const history: number[][] = [];
    const checks: Check[] = stats.map((stat, q) => {
      const past = numberList(previous[q]);
      const window = past.slice(-(context.config.seedWindow - (stat ? 1 : 0)));
      if (stat) window.push(stat.baseline);
      history.push(window);
      return evaluate(context, stat, window, q);
    });
    return { state: { h: history }, checks };
  },
};

interface TickStatistic {
  baseline: number;
  canary: number;
  samples: { baseline: number; canary: number };
  quantile?: number;
}

function statistics(context: CellContext, data: CellTick | undefined): (TickStatistic | undefined)[] {
  const { metric } = context;
  const samples = { baseline: data?.baseline.trials ?? 0, canary: data?.canary.trials ?? 0 };
  const enough =
    data !== undefined && samples.baseline >= metric.minSamples && samples.canary >= metric.minSamples;
  if (metric.kind === 'rate') {
    return [
      enough
        ? {
            baseline: data.baseline.events / samples.baseline,
            canary: data.canary.events / samples.canary,
            samples,
          }
        : undefined,
    ];
  }
  return metric.quantiles.map((p) =>
    enough
      ? {
          baseline: estimateQuantile(data.baseline.histogram, p),
          canary: estimateQuantile(data.canary.histogram, p),
          samples,
          quantile: p,
        }
      : undefined,
  );
}

function evaluate(
  context: CellContext,
  stat: TickStatistic | undefined,
  history: number[],
  q: number,
): Check {
  const { metric, config } = context;
  const quantile = metric.kind === 'distribution' ? metric.quantiles[q] : undefined;
  const base = {
    ...baseCheck(context, stat?.samples ?? { baseline: 0, canary: 0 }, {
      fromTick: context.tick - history.length + 1,
      toTick: context.tick,
    }),
    ...(quantile === undefined ? {} : { quantile }),
  };
  if (!stat || history.length < MIN_HISTORY) {
    return {
      ...base,
      status: 'insufficient',
      pFire: 1,
      effect: 0,
      interval: [0, 0],
      statistic: `moving window has ${history.length} of ${MIN_HISTORY} ticks`,
    };
  }
  const mean = history.reduce((sum, x) => sum + x, 0) / history.length;
  const sd = Math.sqrt(history.reduce((sum, x) => sum + (x - mean) ** 2, 0) / (history.length - 1));
  const k = normalQuantile(1 - config.alpha);
  let pFire = 1;
  const score =
    sd > 0 ? (stat.canary - mean) / sd : stat.canary > mean ? Infinity : stat.canary < mean ? -Infinity : 0;
  if (
    (metric.direction === 'increase' || metric.direction === 'either') &&
    stat.canary > mean * (1 + metric.tolerance)
  )
    pFire = Math.min(pFire, normalSurvival(score));
  if (
    (metric.direction === 'decrease' || metric.direction === 'either') &&
    stat.canary < mean / (1 + metric.tolerance)
  )
    pFire = Math.min(pFire, normalCdf(score));
  const effect = mean > 0 ? stat.canary / mean - 1 : stat.canary > 0 ? 1e6 : 0;
  const low = mean + k * sd > 0 ? stat.canary / (mean + k * sd) - 1 : 0;
  const high = mean - k * sd > 0 ? stat.canary / (mean - k * sd) - 1 : Infinity;
  return {
    ...base,
    status: pFire <= config.alpha ? 'anomalous' : 'ok',
    pFire,
    effect,
    interval: finiteInterval(low, high),
    statistic: `band p=${formatP(pFire)}: canary ${stat.canary.toPrecision(4)} vs moving mean ${mean.toPrecision(4)} ± ${k.toFixed(2)}·sd ${sd.toPrecision(3)}`,
  };
}
