import type { Collection, Db } from 'mongodb';
import type { CollectionIndexes } from '../platform/mongo-indexes';
import type { Investigation, TickRecord } from '../rollout/types';

export const TICKS_COLLECTION = 'rollout_ticks';
export const INVESTIGATIONS_COLLECTION = 'rollout_investigations';

type TickDocument = TickRecord & { _id: string; schemaVersion: number };
type InvestigationDocument = Investigation & { _id: string; schemaVersion: number };

const SCHEMA_VERSION = 1;

/**
 * The tick log is the rollouts' history (the dashboard shows it, a post-mortem reads it): one
 * small document per tick, kept without a TTL, unlike the per-tick measurements.
 */
export const ROLLOUT_STORE_INDEXES: CollectionIndexes[] = [
  {
    collection: TICKS_COLLECTION,
    indexes: [{ name: 'rolloutId_1_tick_1', key: { rolloutId: 1, tick: 1 }, unique: true }],
  },
  {
    collection: INVESTIGATIONS_COLLECTION,
    indexes: [{ name: 'rolloutId_1_tick_1', key: { rolloutId: 1, tick: 1 } }],
  },
];

/**
 * The full tick log of every rollout (the workflow keeps only a bounded summary).
 * Writes are keyed by rollout id + tick, so a retried or replayed activity overwrites
 * the same document instead of adding a second one.
 */
export class RolloutStore {
  private readonly ticks: Collection<TickDocument>;
  private readonly investigations: Collection<InvestigationDocument>;

  constructor(db: Db) {
    this.ticks = db.collection<TickDocument>(TICKS_COLLECTION);
    this.investigations = db.collection<InvestigationDocument>(INVESTIGATIONS_COLLECTION);
  }

  async recordTick(record: TickRecord): Promise<void> {
    const _id = tickId(record.rolloutId, record.tick);
    await this.ticks.replaceOne({ _id }, { ...record, schemaVersion: SCHEMA_VERSION }, { upsert: true });
    if (record.investigation) {
      const investigation = record.investigation;
      await this.investigations.replaceOne(
        { _id: investigation.id },
        { ...investigation, schemaVersion: SCHEMA_VERSION },
        { upsert: true },
      );
    }
  }

  async listTicks(
    rolloutId: string,
    options: { afterTick?: number; limit?: number } = {},
  ): Promise<TickRecord[]> {
    const documents = await this.ticks
      .find({ rolloutId, tick: { $gt: options.afterTick ?? 0 } })
      .sort({ tick: 1 })
      .limit(options.limit ?? 10_000)
      .toArray();
    return documents.map(({ _id, schemaVersion, ...record }) => record);
  }

  /** The rollout's last recorded tick, or null before its first. */
  async lastTick(rolloutId: string): Promise<TickRecord | null> {
    const [document] = await this.ticks.find({ rolloutId }).sort({ tick: -1 }).limit(1).toArray();
    if (!document) return null;
    const { _id, schemaVersion, ...record } = document;
    return record;
  }

  /** In tick order, after `afterTick`, at most `limit` (a long rollout can have thousands). */
  async listInvestigations(
    rolloutId: string,
    options: { afterTick?: number; limit?: number } = {},
  ): Promise<Investigation[]> {
    const documents = await this.investigations
      .find({ rolloutId, tick: { $gt: options.afterTick ?? -1 } })
      .sort({ tick: 1 })
      .limit(options.limit ?? 1000)
      .toArray();
    return documents.map(({ _id, schemaVersion, ...investigation }) => investigation);
  }
}

export function tickId(rolloutId: string, tick: number): string {
  return `${rolloutId}#${String(tick).padStart(6, '0')}`;
}
