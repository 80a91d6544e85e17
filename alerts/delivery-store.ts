/**
 * Durable record of alert deliveries in MongoDB (`alert_deliveries`), one document per event key
 * and sink. It makes a retried notify activity skip what was delivered, and it is the memory of
 * what each sink was told (to end open alerts when a rollout recovers).
 *
 * The protocol, and its one at-least-once window:
 * 1. claim: insert {state: sending, leaseUntil}; on a duplicate key take over only a failed
 *    record or one whose lease ran out (the attempt that held it died). A delivered or
 *    rejected record means: already done, skip. A live lease means: another attempt is sending.
 * 2. send.
 * 3. mark delivered (or failed, with the lease released; or rejected, for good).
 * A crash or a lost database between the sink's 2xx and step 3 leaves the record `sending`; after
 * the lease, a retry sends again. That window is milliseconds wide. Receivers can close it: the
 * webhook carries the event key in `X-Canary-Event`, and Alertmanager merges an alert posted
 * twice (same labels) into one; a Slack channel would show the message twice.
 */
import { MongoServerError, type Collection, type Db } from 'mongodb';
import {
  expiresAfterDays,
  storedNow,
  type CollectionIndexes,
  type StoredAt,
} from '../platform/mongo-indexes';
import type { Anomaly } from '../rollout/verdict';
import type { AlertEvent } from '../rollout/types';
import type { SentEvent } from './open-conditions';

export const ALERT_DELIVERIES_COLLECTION = 'alert_deliveries';

/**
 * Deliveries expire after the retention, counted from their last write: it must outlast the
 * longest rollout, or a recovery could no longer end the alerts its rollout opened.
 */
export function alertDeliveryIndexes(retentionDays: number): CollectionIndexes[] {
  return [
    {
      collection: ALERT_DELIVERIES_COLLECTION,
      indexes: [
        { name: 'rolloutId_1_sinkId_1_at_1', key: { rolloutId: 1, sinkId: 1, at: 1 } },
        expiresAfterDays(retentionDays),
      ],
    },
  ];
}

export type DeliveryState = 'sending' | 'delivered' | 'failed' | 'rejected';

export interface DeliveryDocument extends SentEvent, StoredAt {
  _id: string;
  key: string;
  sinkId: string;
  sinkKind: string;
  rolloutId: string;
  state: DeliveryState;
  attempts: number;
  leaseUntil: number;
  createdAt: number;
  updatedAt: number;
  deliveredAt?: number;
  lastError?: string;
}

export type ClaimResult =
  | { outcome: 'claimed'; attempts: number }
  | { outcome: 'done'; state: 'delivered' | 'rejected' }
  | { outcome: 'busy'; leaseUntil: number };

const DUPLICATE_KEY = 11000;

export function deliveryId(eventKey: string, sinkId: string): string {
  return `${eventKey}|${sinkId}`;
}

function slimAnomalies(anomalies: readonly Anomaly[]): Anomaly[] {
  return anomalies.map(({ metric, action, effect, interval, statistic, critical, summary }) => ({
    metric,
    ...(action === undefined ? {} : { action }),
    effect,
    interval,
    statistic,
    critical,
    summary,
  }));
}

export class AlertDeliveryStore {
  private readonly deliveries: Collection<DeliveryDocument>;

  constructor(db: Db) {
    this.deliveries = db.collection<DeliveryDocument>(ALERT_DELIVERIES_COLLECTION);
  }

  async claim(
    event: AlertEvent,
    sink: { id: string; kind: string },
    now: number,
    leaseMs: number,
  ): Promise<ClaimResult> {
    const _id = deliveryId(event.key, sink.id);
    try {
      await this.deliveries.insertOne({
        _id,
        key: event.key,
        sinkId: sink.id,
        sinkKind: sink.kind,
        rolloutId: event.rolloutId,
        eventKind: event.kind,
        at: event.at,
        tick: event.tick,
        summary: event.summary,
        anomalies: slimAnomalies(event.anomalies),
        state: 'sending',
        attempts: 1,
        leaseUntil: now + leaseMs,
        createdAt: now,
        updatedAt: now,
        ...storedNow(),
      });
      return { outcome: 'claimed', attempts: 1 };
    } catch (error) {
      if (!(error instanceof MongoServerError) || error.code !== DUPLICATE_KEY) throw error;
    }
    const takeover = await this.deliveries.findOneAndUpdate(
      { _id, state: { $in: ['sending', 'failed'] }, leaseUntil: { $lte: now } },
      {
        $set: { state: 'sending', leaseUntil: now + leaseMs, updatedAt: now, ...storedNow() },
        $inc: { attempts: 1 },
      },
      { returnDocument: 'after' },
    );
    if (takeover) return { outcome: 'claimed', attempts: takeover.attempts };
    const existing = await this.deliveries.findOne({ _id });
    if (!existing) return this.claim(event, sink, now, leaseMs); // deleted meanwhile: start over
    if (existing.state === 'delivered' || existing.state === 'rejected')
      return { outcome: 'done', state: existing.state };
    return { outcome: 'busy', leaseUntil: existing.leaseUntil };
  }

  async finish(
    eventKey: string,
    sinkId: string,
    state: Exclude<DeliveryState, 'sending'>,
    now: number,
    error?: string,
  ): Promise<void> {
    await this.deliveries.updateOne(
      { _id: deliveryId(eventKey, sinkId) },
      {
        $set: {
          state,
          updatedAt: now,
          ...storedNow(),
          // A failed attempt releases its lease: the next retry takes over at once.
          leaseUntil: 0,
          ...(state === 'delivered' ? { deliveredAt: now } : {}),
          ...(error === undefined ? {} : { lastError: error.slice(0, 500) }),
        },
      },
    );
  }

  /** Everything this sink was sent (or is being sent) for the rollout, except refusals. */
  async sentTo(rolloutId: string, sinkId: string): Promise<DeliveryDocument[]> {
    return this.deliveries
      .find({ rolloutId, sinkId, state: { $ne: 'rejected' } })
      .sort({ at: 1, tick: 1 })
      .toArray();
  }

  async find(eventKey: string, sinkId: string): Promise<DeliveryDocument | null> {
    return this.deliveries.findOne({ _id: deliveryId(eventKey, sinkId) });
  }
}
