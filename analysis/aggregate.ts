/**
 * Folds one tick's samples into per-metric, per-action, per-target aggregates: a log-bucket
 * histogram (plus the exact sum, for means) for distributions, events/trials for rates.
 * Pure.
 */
import type { MetricConfig } from './config';
import { bucketIndex, emptyHistogram, fromBucketMap, type LogHistogram } from './histogram';
import type { Sample } from './samples';
import type { TargetRole } from '../rollout/verdict';

export interface TargetTick {
  histogram: LogHistogram;
  /** This tick's observations at full resolution (distinct values and their counts, unordered). */
  exact: { values: number[]; counts: number[] };
  sum: number;
  events: number;
  trials: number;
}

export interface CellTick {
  baseline: TargetTick;
  canary: TargetTick;
}

/** Whole-service slot: samples without an action. */
export const SERVICE_SLOT = '*';

interface Accumulator {
  buckets: Map<number, number>;
  values: number[];
  counts: number[];
  sum: number;
  events: number;
  trials: number;
  seen: boolean;
}

export interface TickAggregate {
  /** metric -> slot -> aggregate (only cells that received samples this tick). */
  cells: Map<string, Map<string, CellTick>>;
  /** metric -> targets that sent at least one sample this tick. */
  targetsSeen: Map<string, Set<TargetRole>>;
  /** Samples that could not be used, one reason each (deduplicated). */
  rejected: Set<string>;
  sampleCount: number;
}

export function emptyTargetTick(): TargetTick {
  return { histogram: emptyHistogram(), exact: { values: [], counts: [] }, sum: 0, events: 0, trials: 0 };
}

/**
 * `slotFor` maps an action to its slot (or null when the action is not analysed, e.g. beyond
 * maxActions); it is called in sample order, so the first actions seen get the slots.
 */
export function aggregateTick(
  samples: readonly Sample[],
  metrics: readonly MetricConfig[],
  slotFor: (action: string | undefined) => string | null,
): TickAggregate {
  const byName = new Map(metrics.map((metric) => [metric.name, metric]));
  const accumulators = new Map<string, Map<string, Record<TargetRole, Accumulator>>>();
  const targetsSeen = new Map<string, Set<TargetRole>>();
  const rejected = new Set<string>();
  let sampleCount = 0;
  for (const sample of samples) {
    const metric = byName.get(sample.metric);
    if (!metric) continue; // sources report more than a rollout analyses (e.g. status_5xx)
    const slot = slotFor(sample.action);
    if (slot === null) {
      rejected.add(
        `${sample.action ?? 'service'}: not analysed (more actions than analysis.maxActions, or not in analysis.actions)`,
      );
      continue;
    }
    const rejection = shapeProblem(metric, sample);
    if (rejection) {
      rejected.add(`${sample.metric}: ${rejection}`);
      continue;
    }
    let bySlot = accumulators.get(metric.name);
    if (!bySlot) accumulators.set(metric.name, (bySlot = new Map<string, Record<TargetRole, Accumulator>>()));
    let cell = bySlot.get(slot);
    if (!cell) bySlot.set(slot, (cell = { baseline: newAccumulator(), canary: newAccumulator() }));
    addSample(cell[sample.target], sample);
    let seen = targetsSeen.get(metric.name);
    if (!seen) targetsSeen.set(metric.name, (seen = new Set()));
    seen.add(sample.target);
    sampleCount += 1;
  }
  const cells = new Map<string, Map<string, CellTick>>();
  for (const [name, bySlot] of accumulators) {
    const out = new Map<string, CellTick>();
    for (const [slot, cell] of bySlot)
      out.set(slot, { baseline: finish(cell.baseline), canary: finish(cell.canary) });
    cells.set(name, out);
  }
  return { cells, targetsSeen, rejected, sampleCount };
}

function newAccumulator(): Accumulator {
  return { buckets: new Map(), values: [], counts: [], sum: 0, events: 0, trials: 0, seen: false };
}

function shapeProblem(metric: MetricConfig, sample: Sample): string | undefined {
  if (metric.kind === 'rate') {
    if (sample.histogram && sample.histogram.values.some((value) => value !== 0 && value !== 1))
      return 'a rate metric takes 0/1 values or counts';
    if (sample.value !== undefined && sample.value !== 0 && sample.value !== 1)
      return 'a rate metric value must be 0 or 1';
    return undefined;
  }
  if (sample.counts) return 'a distribution metric takes values or histograms, not counts';
  return undefined;
}

function addSample(accumulator: Accumulator, sample: Sample): void {
  accumulator.seen = true;
  if (sample.counts) {
    accumulator.events += sample.counts.events;
    accumulator.trials += sample.counts.trials;
  } else if (sample.histogram) {
    const { values, counts } = sample.histogram;
    for (let i = 0; i < values.length; i += 1) {
      const count = counts[i] as number;
      if (count === 0) continue;
      const value = values[i] as number;
      const index = bucketIndex(value);
      accumulator.buckets.set(index, (accumulator.buckets.get(index) ?? 0) + count);
      accumulator.values.push(value);
      accumulator.counts.push(count);
      accumulator.sum += value * count;
      accumulator.trials += count;
      if (value === 1) accumulator.events += count;
    }
  } else {
    const value = sample.value;
    const index = bucketIndex(value);
    accumulator.buckets.set(index, (accumulator.buckets.get(index) ?? 0) + 1);
    accumulator.values.push(value);
    accumulator.counts.push(1);
    accumulator.sum += value;
    accumulator.trials += 1;
    if (value === 1) accumulator.events += 1;
  }
}

function finish(accumulator: Accumulator): TargetTick {
  return {
    histogram: fromBucketMap(accumulator.buckets),
    exact: { values: accumulator.values, counts: accumulator.counts },
    sum: accumulator.sum,
    events: accumulator.events,
    trials: accumulator.trials,
  };
}
