/**
 * What the activities need from the components. The worker wires the real components;
 * tests wire test doubles. Each component issue owns the implementation behind its port.
 */
import type { Verdict } from '../rollout/verdict';
import type { TrafficRouter } from '../routing/traffic-router';
import type { AdapterSpec, RolloutSpec } from '../rollout/spec';
import type {
  AlertEvent,
  MetricsSummary,
  ProbeSummary,
  ProfileSelection,
  TickRecord,
} from '../rollout/types';
import type { Json } from '../core/validation';

export interface ProfileSource {
  select(request: {
    criteria: Record<string, Json>;
    sampleSize: number;
    seed: number;
  }): Promise<ProfileSelection>;
}

export interface ProbeRequest {
  rolloutId: string;
  tick: number;
  targets: RolloutSpec['targets'];
  profileIds: string[];
  durationMs: number;
  concurrency: number;
  seed: number;
  /** Multiplies the profiles' recorded think times; absent = 1 (real time). */
  timeScale?: number;
  /** This activity's part of a fanned-out probe; absent = the whole probe. */
  shard?: { index: number; count: number };
}

export interface Prober {
  /** Must stop within a second of `signal` aborting; `progress` is sent as the activity heartbeat. */
  probe(request: ProbeRequest, progress: (details: Json) => void, signal: AbortSignal): Promise<ProbeSummary>;
}

export interface CollectRequest {
  rolloutId: string;
  tick: number;
  window: { from: number; to: number };
  targets: RolloutSpec['targets'];
  router: AdapterSpec;
  /** Which sources and queries to use (`analysis.options.sources`); absent: the defaults. */
  analysis?: RolloutSpec['analysis'];
}

export interface MetricCollector {
  collect(request: CollectRequest): Promise<MetricsSummary>;
}

export interface AnalyzeRequest {
  rolloutId: string;
  tick: number;
  analysis: RolloutSpec['analysis'];
  /** The engine's compact state after the previous tick (null on the first). */
  state: Json;
}

export interface Analyzer {
  analyze(request: AnalyzeRequest): Promise<{ verdict: Verdict; state: Json }>;
}

export interface RouterProvider {
  /** The router for one rollout; may be cached per rollout. Throws ValidationError on bad config. */
  routerFor(rolloutId: string, spec: AdapterSpec, targets: RolloutSpec['targets']): TrafficRouter;
}

export interface AlertDispatcher {
  /** Delivers to every sink in `sinks`; deduplicates on `event.key`. */
  dispatch(event: AlertEvent, sinks: AdapterSpec[]): Promise<void>;
}

export interface TickRecorder {
  recordTick(record: TickRecord): Promise<void>;
}

export interface ActivityDeps {
  profiles: ProfileSource;
  prober: Prober;
  metrics: MetricCollector;
  analyzer: Analyzer;
  routers: RouterProvider;
  alerts: AlertDispatcher;
  ticks: TickRecorder;
}
