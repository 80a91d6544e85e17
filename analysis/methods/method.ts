/**
 * What every analysis method implements: given the carried state of one cell (a metric and an
 * action slot) and this tick's aggregate for it (absent when the tick brought no samples),
 * return the next state and one check per comparison. Pure and JSON in, JSON out, so a rollout
 * can carry the state across ticks and through continue-as-new.
 */
import type { CellTick } from '../aggregate';
import type { Check } from '../checks';
import type { AnalysisConfig, MetricConfig } from '../config';
import type { Json } from '../../core/validation';

export interface CellContext {
  config: AnalysisConfig;
  metric: MetricConfig;
  /** Undefined for the whole-service slot. */
  action: string | undefined;
  tick: number;
  /** Number of comparisons the family-wise alpha is split over (Bonferroni). */
  comparisons: number;
  /**
   * The traffic regime of this tick (the whole rollout is regime 1 when the caller gives none),
   * and the evidence segment it belongs to (regimes joined by raises of the share).
   */
  regime: { index: number; sinceTick: number; segment: { index: number; sinceTick: number } };
  /** This tick's data of every slot of the metric: what a cell may compare its own with. */
  tickCells?: ReadonlyMap<string, CellTick>;
}

export interface CellResult {
  state: Json;
  checks: Check[];
}

export interface MethodImplementation {
  evaluateCell(context: CellContext, state: Json | undefined, data: CellTick | undefined): CellResult;
  /** Whether the whole-service slot is evaluated from the actions' data when it has none of its own. */
  poolsActions?(metric: MetricConfig): boolean;
}

export function baseCheck(
  context: CellContext,
  samples: { baseline: number; canary: number },
  window: Check['window'],
) {
  return {
    metric: context.metric.name,
    ...(context.action === undefined ? {} : { action: context.action }),
    samples,
    window,
    critical: context.metric.critical,
  };
}

/** The directions a metric's tests look in: both for `either`. */
export function directionsOf(metric: MetricConfig): ('increase' | 'decrease')[] {
  return metric.direction === 'either' ? ['increase', 'decrease'] : [metric.direction];
}

export function isRecord(value: Json | undefined): value is { [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function numberOr(value: Json | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

export function numberList(value: Json | undefined): number[] {
  return Array.isArray(value)
    ? value.filter((x): x is number => typeof x === 'number' && Number.isFinite(x))
    : [];
}
