/**
 * The traffic generator's record of one probe window (issue 4), one document per window in the
 * MongoDB collection `probe_results`. This is the contract the probe-results metric source reads;
 * the generator writes exactly this shape. Types only.
 */
import type { TargetRole } from '../analysis/verdict';

export const PROBE_RESULTS_COLLECTION = 'probe_results';

export interface ProbeResultDocument {
  rolloutId: string;
  tick: number;
  /** Window of the probe, ms since epoch. */
  startedAt: number;
  endedAt: number;
  stats: ProbeActionStats[];
}

export interface ProbeActionStats {
  target: TargetRole;
  /** The user action, e.g. `checkout` (from the action ontology). */
  action: string;
  /**
   * hdr-histogram-js histogram, encoded with `encodeIntoCompressedBase64` (base64 of the
   * compressed V2 encoding). Latencies in MICROseconds, successful requests only.
   */
  latencyHistogram: string;
  successes: number;
  errors: number;
  /** Responses per HTTP status code, e.g. `{ "200": 950, "503": 4 }`. */
  statusCounts: Record<string, number>;
  /** Failures per kind, e.g. `{ "timeout": 2, "connection_refused": 1, "status": 4 }`. */
  errorKinds: Record<string, number>;
  /** Response bytes received. */
  bytes: number;
}
