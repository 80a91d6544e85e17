/**
 * The traffic generator's record of one probe window, one document per window in the
 * MongoDB collection `probe_results`, as the probe-results metric source reads it: the writer's
 * types (loadgen/prober.ts, loadgen/stats.ts), narrowed to the fields read. Types only.
 */
import type { TargetRole } from '../rollout/verdict';
import type { ProbeResultDocument as WrittenProbeResult } from '../loadgen/prober';
import type { ActionStats } from '../loadgen/stats';

export { PROBE_RESULTS_COLLECTION } from '../loadgen/prober';

/** One (target, action) of a window; the latency histogram is of successes, in microseconds. */
export type ProbeActionStats = Omit<ActionStats, 'target' | 'errorLatencyHistogram'> & { target: TargetRole };

export type ProbeResultDocument = Pick<
  WrittenProbeResult,
  'rolloutId' | 'tick' | 'startedAt' | 'endedAt' | 'replay'
> & {
  stats: ProbeActionStats[];
};
