/**
 * What the activities need from the components. Each component defines the port it implements
 * next to its implementation; the worker wires the real ones, tests wire test doubles.
 */
import type { AlertDispatcherPort } from '../alerts/dispatcher';
import type { Prober } from '../loadgen/prober';
import type { ProfileSource } from '../profiles/profile-source';
import type { TickRecord } from '../rollout/types';
import type { WorkerPolicy } from '../rollout/worker-policy';
import type { RouterProvider } from '../routing/routers';
import type { Analyzer } from '../signals/analyzer';
import type { MetricCollector } from '../signals/collector';
import type { ExemplarFinder } from '../signals/exemplars';

export type { ProbeRequest, Prober } from '../loadgen/prober';
export type { AnalyzeRequest, Analyzer } from '../signals/analyzer';
export type { CollectRequest, MetricCollector } from '../signals/collector';
export type { ExemplarFinder } from '../signals/exemplars';
export type { ProfileSource } from '../profiles/profile-source';
export type { RouterProvider } from '../routing/routers';
export type { AlertDispatcherPort as AlertDispatcher } from '../alerts/dispatcher';

/** The tick log: one record per rollout and tick, written again unchanged on a retry. */
export interface TickRecorder {
  recordTick(record: TickRecord): Promise<void>;
}

/** What the rollout activities need (createRolloutActivities). */
export interface RolloutActivityDeps {
  profiles: ProfileSource;
  metrics: MetricCollector;
  analyzer: Analyzer;
  /** Exemplars for anomalous verdicts; without it investigations carry the statistics only. */
  exemplars?: ExemplarFinder;
  routers: RouterProvider;
  alerts: AlertDispatcherPort;
  ticks: TickRecorder;
  /** What this worker's operator lets a spec reach; checked when a rollout starts. */
  workerPolicy: WorkerPolicy;
}

/** What the probe activity needs (createProbeActivities); a loadgen worker has only this. */
export interface ProbeActivityDeps {
  prober: Prober;
}

/** A worker that serves the rollout activities and probes on its own queue needs both. */
export type ActivityDeps = RolloutActivityDeps & ProbeActivityDeps;
