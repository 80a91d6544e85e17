/**
 * The analysis engine's answer for one tick, as the rollout workflow consumes it.
 * Types only and pure helpers: the workflow sandbox imports this module.
 */
import type { AnomalyExemplars } from './exemplars';

export type VerdictStatus = 'healthy' | 'anomalous' | 'inconclusive';

export type TargetRole = 'baseline' | 'canary';

export interface Anomaly {
  /** e.g. `latency_ms`, `error_rate`, `cpu_seconds`. */
  metric: string;
  /** The user action whose samples carry the regression; absent for whole-service metrics. */
  action?: string;
  /** Relative effect of canary vs baseline, e.g. 0.38 for +38 %. */
  effect: number;
  /** Confidence interval of the effect. */
  interval: [number, number];
  /** Test statistic or method-specific evidence, e.g. `anytime p=0.003`. */
  statistic: string;
  /** One failure of a critical metric rolls the canary back at once. */
  critical: boolean;
  /** Human summary, e.g. `checkout p90 latency +38 % [+22 %, +55 %]`. */
  summary: string;
  /** Probe requests of the blamed action and a command replaying them (attached by the analyze activity). */
  exemplars?: AnomalyExemplars;
  /** The target whose samples carry the regression (the canary, compared with the baseline). */
  target?: TargetRole;
  /** The quantile compared, for distribution metrics (0.9 for p90). */
  quantile?: number;
  /** The smallest family-wise alpha at which this anomaly would have been declared. */
  pValue?: number;
  /** The ticks whose data the evidence comes from (all ticks so far for the sequential method). */
  window?: { fromTick: number; toTick: number };
  /**
   * The lower confidence bound is beyond the metric's severe ratio (e.g. 1.5x latency, 3x errors):
   * the policy rolls back at once instead of stepping down.
   */
  severe?: boolean;
  /** What the evidence rests on: the regime it was gathered in, since which tick, and how much. */
  evidence?: AnomalyEvidence;
}

export interface AnomalyEvidence {
  /** The regime (1 at the first tick, +1 whenever the canary's share of real traffic changed). */
  regime: number;
  /** First tick whose data the evidence uses (the regime's start, or a later onset). */
  fromTick: number;
  samples: { baseline: number; canary: number };
}

export interface Verdict {
  status: VerdictStatus;
  anomalies: Anomaly[];
  /** Why the verdict is what it is, notably why a tick is inconclusive. */
  reasons: string[];
  /**
   * Within the current regime every comparison's upper confidence bound is below 1 + tolerance:
   * the canary is proven within tolerance, not merely not proven worse.
   */
  healthProven?: boolean;
}

export function inconclusive(reason: string): Verdict {
  return { status: 'inconclusive', anomalies: [], reasons: [reason] };
}

/** Stable key of an anomaly across ticks: alerts and investigations deduplicate on it. */
export function anomalyKey(anomaly: Pick<Anomaly, 'metric' | 'action'>): string {
  return `${anomaly.metric}/${anomaly.action ?? '*'}`;
}
