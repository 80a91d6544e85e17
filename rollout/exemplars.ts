/**
 * What an investigation shows a person besides the statistics: concrete probe requests of the
 * blamed action and a command that plays the same profiles again. Types only: the workflow
 * sandbox imports this module (through rollout/verdict.ts).
 */

export interface RequestExemplar {
  /** The session's profile (`user_id`), so `canary loadgen --profiles <id>` plays it again. */
  profileId: string;
  method: string;
  /** Path and query as sent, credential-like query values replaced by `REDACTED`. */
  path: string;
  /** HTTP status, 0 when no response came (refused, reset, timeout). */
  status: number;
  latencyMs: number;
  target: string;
  /** How a failed request failed (refused, timeout, unexpected_status, ...), absent for a success. */
  error?: string;
}

/** The slowest successes and the slowest failures, each at most a handful. */
export interface ActionExemplars {
  slowest: RequestExemplar[];
  failed: RequestExemplar[];
}

/** An anomaly's exemplars: the blamed target's requests of the blamed action, and how to replay them. */
export interface AnomalyExemplars extends ActionExemplars {
  /** The probe ticks they come from. */
  fromTick: number;
  toTick: number;
  /**
   * One shell line: `canary loadgen --profiles ... --baseline ... --canary ...`; absent when the
   * probe window did not say how it was played.
   */
  reproduce?: string;
}
