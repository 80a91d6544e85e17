/**
 * One interface for every alert destination. A sink renders one notification in its own format
 * and delivers it once; retries, deduplication and bookkeeping belong to the dispatcher.
 */
import type { Anomaly } from '../rollout/verdict';
import type { RolloutLinks } from '../rollout/links';
import type { AlertEvent } from '../rollout/types';

/** Something a sink was told about earlier that is still going on. */
export type OpenCondition =
  | { kind: 'anomaly'; anomaly: Anomaly; since: number }
  | { kind: 'paused' | 'routing_failed'; summary: string; since: number };

export interface AlertNotification {
  event: AlertEvent;
  /** Deep links to this rollout (dashboard page, workflow in the Temporal UI). */
  links: RolloutLinks;
  /** Conditions this sink was told about that this event ends (recovery, or the rollout ended). */
  ends: OpenCondition[];
  /**
   * Set when this event reaches the sink after a later event already ended what it reports
   * (alerts are sent concurrently and retried): stateful sinks record it as already over.
   */
  endedAt?: number;
}

export interface AlertSink {
  readonly kind: string;
  /** Stable identity of this configuration: deliveries are deduplicated per event key and sink id. */
  readonly id: string;
  /** Delivers once; throws RetryableDeliveryError or PermanentDeliveryError. */
  send(notification: AlertNotification, signal: AbortSignal): Promise<void>;
}

/** The destination may accept it later: a timeout, a refused connection, 5xx, 408 or 429. */
export class RetryableDeliveryError extends Error {
  constructor(
    message: string,
    /** From a Retry-After header, when the destination gave one. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'RetryableDeliveryError';
  }
}

/** The destination refused this notification for good (e.g. 400, 401, 404): retrying cannot help. */
export class PermanentDeliveryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentDeliveryError';
  }
}
