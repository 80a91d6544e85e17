import type { Collection, Db } from 'mongodb';
import type { Sample } from '../analysis/samples';
import type { Json } from '../core/validation';
import {
  expiresAfterDays,
  storedNow,
  type CollectionIndexes,
  type StoredAt,
} from '../platform/mongo-indexes';

export const SAMPLES_COLLECTION = 'rollout_samples';
const SCHEMA_VERSION = 1;

/**
 * Samples are read back only while their rollout runs (by the tick's analyzer, and by the next
 * tick's collection for the sources' carry): after the retention they expire like probe results.
 */
export function sampleStoreIndexes(retentionDays: number): CollectionIndexes[] {
  return [
    {
      collection: SAMPLES_COLLECTION,
      indexes: [
        { name: 'rolloutId_1_tick_1', key: { rolloutId: 1, tick: 1 }, unique: true },
        expiresAfterDays(retentionDays),
      ],
    },
  ];
}

export interface SourceOutcome {
  source: string;
  /** Why the source gave nothing this tick (no data, or the error). */
  reason: string;
}

export interface TickSamples {
  rolloutId: string;
  tick: number;
  window: { from: number; to: number };
  collectedAt: number;
  /** Compacted: one histogram or counts per target, metric and action (analysis/samples.ts). */
  samples: Sample[];
  /** How many raw samples the sources returned before compaction. */
  rawSamples: number;
  sources: string[];
  missing: SourceOutcome[];
  /** What each source keeps for the next tick (e.g. CPU counter readings). */
  carry: Record<string, Json>;
}

type SampleDocument = TickSamples & StoredAt & { _id: string; schemaVersion: number };

/**
 * The samples of every tick, keyed by rollout id + tick: a retried collection overwrites the
 * same document, and the analyzer (another activity, maybe another worker) reads it back.
 */
export class SampleStore {
  private readonly collection: Collection<SampleDocument>;

  constructor(db: Db) {
    this.collection = db.collection<SampleDocument>(SAMPLES_COLLECTION);
  }

  async save(record: TickSamples): Promise<void> {
    const _id = sampleId(record.rolloutId, record.tick);
    await this.collection.replaceOne(
      { _id },
      { ...record, schemaVersion: SCHEMA_VERSION, ...storedNow() },
      { upsert: true },
    );
  }

  async load(rolloutId: string, tick: number): Promise<TickSamples | null> {
    const document = await this.collection.findOne({ _id: sampleId(rolloutId, tick) });
    if (!document) return null;
    const { _id, schemaVersion, storedAt, ...record } = document;
    return record;
  }

  async count(rolloutId: string): Promise<number> {
    return this.collection.countDocuments({ rolloutId });
  }
}

export function sampleId(rolloutId: string, tick: number): string {
  return `${rolloutId}#${String(tick).padStart(6, '0')}`;
}
