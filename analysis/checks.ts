/**
 * One comparison of canary against baseline (a metric, an action, a quantile) as every method
 * reports it, and the human summary of an anomaly. Pure.
 */
import type { MetricConfig } from './config';

export interface Check {
  metric: string;
  action?: string;
  quantile?: number;
  status: 'anomalous' | 'ok' | 'insufficient';
  /**
   * The smallest family-wise alpha at which this check fires (1 when it cannot fire): the
   * method's p-value with its multiplicity correction and its tolerance gate folded in, so the
   * benchmark can calibrate methods on the same scale.
   */
  pFire: number;
  /** Relative effect of canary vs baseline (0.38 = +38 %) and its interval (anomalous checks only; else [0, 0]). */
  effect: number;
  interval: [number, number];
  statistic: string;
  samples: { baseline: number; canary: number };
  window: { fromTick: number; toTick: number };
  critical: boolean;
  /** Anomalous and its lower bound is beyond the metric's severe ratio (methods that test it). */
  severe?: boolean;
  /** Proven within tolerance in the current regime (methods that test it; absent without data). */
  healthProven?: boolean;
  /** The regime and first tick the evidence comes from, and its samples per target. */
  evidence?: { regime: number; fromTick: number; samples: { baseline: number; canary: number } };
}

/** The largest bound we print; beyond it the interval is open-ended for lack of data. */
const OPEN_ENDED = 1e6;

export function formatPercent(ratioMinusOne: number): string {
  if (!Number.isFinite(ratioMinusOne) || ratioMinusOne >= OPEN_ENDED) return '+∞ %';
  const percent = Math.round(ratioMinusOne * 100);
  return `${percent >= 0 ? '+' : ''}${percent} %`;
}

export function metricLabel(metric: MetricConfig, quantile?: number): string {
  const base = metric.name.replace(/_(ms|seconds|bytes|total)$/, '').replace(/_/g, ' ');
  if (metric.kind === 'rate') return base.endsWith('rate') ? base : `${base} rate`;
  if (quantile === undefined) return base;
  const p = Math.round(quantile * 1000) / 10;
  return `p${p} ${base}`;
}

/** e.g. `checkout p90 latency +38 % [+22 %, +55 %]`. */
export function summarise(
  metric: MetricConfig,
  check: Pick<Check, 'action' | 'quantile' | 'effect' | 'interval'>,
): string {
  const subject = check.action ?? 'service';
  const [low, high] = check.interval;
  return `${subject} ${metricLabel(metric, check.quantile)} ${formatPercent(check.effect)} [${formatPercent(low)}, ${formatPercent(high)}]`;
}

/** Finite JSON-safe interval bounds: an unbounded side is clamped to OPEN_ENDED. */
export function finiteInterval(low: number, high: number): [number, number] {
  const clamp = (x: number) =>
    Number.isFinite(x) ? Math.min(Math.max(x, -1), OPEN_ENDED) : x > 0 ? OPEN_ENDED : -1;
  return [clamp(low), clamp(high)];
}

export function formatP(p: number): string {
  if (p >= 1) return '1';
  if (p < 1e-4) return p.toExponential(1);
  return p.toPrecision(2);
}
