/**
 * Profiles in MongoDB (FerretDB locally). The document _id is the user_id, so every write is an
 * idempotent replace by user_id and lookups by id are the cheapest query on both backends.
 * Queries use only what FerretDB 1.24 (SQLite) and MongoDB both implement: find with plain
 * comparison operators, sort on _id, and $match/$project/$unwind/$group pipelines.
 */
import { MongoBulkWriteError, type Collection, type Db, type Filter } from 'mongodb';
import type { Logger } from '../platform/logger';
import { ensureIndexes, type CollectionIndexes, type IndexReport } from '../platform/mongo-indexes';
import { CRITERIA_FIELDS } from './criteria';
import { PROFILE_SCHEMA_VERSION, type Profile } from './profile-schema';
import type { SampleCandidate } from './sampler';
import {
  SAMPLE_SLOT_LEVELS,
  arcFrom,
  arcKnown,
  sampleKeyOf,
  sampleStart,
  slotField,
  slotOrder,
  windowFrom,
  type SampleKeyFields,
  type SampleSlotLevel,
} from './sample-key';

export const PROFILES_COLLECTION = 'profiles';
/** One document per finished migration of the profiles collection, by name. */
export const PROFILES_META_COLLECTION = 'profiles_meta';
const SAMPLE_KEYS_MIGRATION = 'sample_keys_v1';
/**
 * Top-level fields whose equality should be answered from an index where the server needs
 * telling (FerretDB on PostgreSQL: FerretDbServer.indexPushedDownEqualities): lookups by id and
 * sample-key slots.
 */
export const PROFILE_EQUALITY_FIELDS: readonly string[] = ['_id', ...SAMPLE_SLOT_LEVELS.map(slotField)];
/** Slots read at once by a key sample: a few round trips in flight, not one at a time. */
const SLOTS_IN_FLIGHT = 4;
const COARSE_AFTER_READS = 64;

/** One index per criteria field, the strata and the sample-key slots; the migration records; no TTL. */
export function profileIndexes(collection = PROFILES_COLLECTION): CollectionIndexes[] {
  const criteria = Object.values(CRITERIA_FIELDS)
    .map((field) => field.path)
    .filter((path) => path !== '_id')
    .map((path) => ({ name: `criteria_${path}`, key: { [path]: 1 as const } }));
  return [
    {
      collection,
      indexes: [
        ...criteria,
        { name: 'strata', key: { device_type: 1, 'geo_location.country': 1, activity_level: 1 } },
        { name: 'sample_key', key: { sample_key: 1 } },
        ...SAMPLE_SLOT_LEVELS.map((level) => ({
          name: slotField(level),
          key: { [slotField(level)]: 1 as const },
        })),
      ],
    },
    // One document per finished migration, found by _id.
    { collection: PROFILES_META_COLLECTION, indexes: [] },
  ];
}

export type StoredProfile = Profile & { _id: string } & Partial<SampleKeyFields>;

/** A sample read through the sample keys (see sample-key.ts). */
export interface KeySample {
  /** Whole profiles in sample order. */
  profiles: Profile[];
  /** Matching profiles, estimated from the share of the key circle read (exact when all of it was). */
  population: number;
  slotsRead: number;
}

export interface ProfilePage {
  profiles: Partial<Profile>[];
  /** Where the next page starts when more may follow (opaque; pass back as `after`). */
  nextAfter: string | null;
}

export interface WriteCounts {
  created: number;
  updated: number;
}

export interface ProfileStats {
  total: number;
  device_type: Record<string, number>;
  country: Record<string, number>;
  region: Record<string, number>;
  activity_level: Record<string, number>;
  actions: Record<string, number>;
}

/** Raised when a sample's population is larger than the store is configured to hold in memory. */
export class PopulationTooLargeError extends Error {}

const DUPLICATE_KEY = 11000;

export class ProfileStore {
  readonly collection: Collection<StoredProfile>;
  private backendKind: Promise<'mongodb' | 'ferretdb'> | undefined;
  private keySampling: Promise<boolean> | undefined;
  private emptinessChecked = false;

  constructor(
    readonly db: Db,
    collectionName = PROFILES_COLLECTION,
  ) {
    this.collection = db.collection<StoredProfile>(collectionName);
  }

  /** profileIndexes() of this store's collection, for callers that hold only the store. */
  ensureIndexes(logger?: Pick<Logger, 'info' | 'warn'>): Promise<IndexReport> {
    return ensureIndexes(this.db, profileIndexes(this.collection.collectionName), logger);
  }

  async get(userId: string): Promise<Profile | null> {
    const document = await this.collection.findOne({ _id: userId });
    return document ? fromStored(document) : null;
  }

  /** Creates or replaces by user_id; true when it created the profile. */
  async put(profile: Profile): Promise<boolean> {
    return (await this.putMany([profile])).created > 0;
  }

  /** Creates or replaces by user_id, in batches (the API's batches are validated beforehand). */
  async putMany(profiles: readonly Profile[], batchSize = 1000): Promise<WriteCounts> {
    return this.load(profiles, { batchSize });
  }

  /**
   * Bulk load for the API, the generator and the log import: insertMany per batch (fast on
   * both backends), then a replace for each profile that already existed, so loading the same
   * profiles twice changes nothing.
   */
  async load(
    profiles: AsyncIterable<Profile> | Iterable<Profile>,
    options: { batchSize?: number; onBatch?: (counts: WriteCounts) => void } = {},
  ): Promise<WriteCounts> {
    const batchSize = options.batchSize ?? 1000;
    const counts: WriteCounts = { created: 0, updated: 0 };
    await this.recordKeysIfEmpty();
    let batch: Profile[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const current = batch;
      batch = [];
      const written = await this.insertOrReplace(current);
      counts.created += written.created;
      counts.updated += written.updated;
      options.onBatch?.({ ...counts });
    };
    for await (const profile of profiles) {
      batch.push(profile);
      if (batch.length >= batchSize) await flush();
    }
    await flush();
    return counts;
  }

  private async insertOrReplace(profiles: Profile[]): Promise<WriteCounts> {
    // Within one batch the last profile of a user wins, as it would with sequential replaces.
    const unique = [...new Map(profiles.map((profile) => [profile.user_id, profile])).values()];
    try {
      await this.collection.insertMany(unique.map(toStored), { ordered: false });
      return { created: unique.length, updated: 0 };
    } catch (error) {
      if (!(error instanceof MongoBulkWriteError)) throw error;
      const errors = error.result.getWriteErrors();
      if (errors.some((writeError) => writeError.code !== DUPLICATE_KEY)) throw error;
      const existing = errors.map((writeError) => unique[writeError.index] as Profile);
      const replaced = await this.replaceExisting(existing);
      return { created: unique.length - existing.length + replaced.created, updated: replaced.updated };
    }
  }

  private async replaceExisting(profiles: Profile[]): Promise<WriteCounts> {
    if ((await this.backend()) === 'ferretdb') {
      // FerretDB 1.24 (SQLite) decodes the whole collection for every update, even by _id, so
      // replacing one by one is quadratic. One delete and one insert per batch instead: not
      // atomic (a reader may miss these profiles for a moment), but a retry converges.
      const deleted = await this.collection.deleteMany({
        _id: { $in: profiles.map((profile) => profile.user_id) },
      });
      await this.collection.insertMany(profiles.map(toStored), { ordered: false });
      return { created: profiles.length - deleted.deletedCount, updated: deleted.deletedCount };
    }
    const result = await this.collection.bulkWrite(
      profiles.map((profile) => ({
        replaceOne: { filter: { _id: profile.user_id }, replacement: toStored(profile), upsert: true },
      })),
      { ordered: false },
    );
    return { created: result.upsertedCount, updated: result.matchedCount };
  }

  /** FerretDB answers buildInfo with its own version; anything else is treated as MongoDB. */
  backend(): Promise<'mongodb' | 'ferretdb'> {
    this.backendKind ??= this.db
      .admin()
      .command({ buildInfo: 1 })
      .then(
        (info): 'mongodb' | 'ferretdb' => ('ferretdbVersion' in info ? 'ferretdb' : 'mongodb'),
        (): 'mongodb' | 'ferretdb' => 'mongodb',
      );
    return this.backendKind;
  }

  async delete(userId: string): Promise<boolean> {
    const result = await this.collection.deleteOne({ _id: userId });
    return result.deletedCount > 0;
  }

  async count(filter: Filter<StoredProfile> = {}): Promise<number> {
    return this.collection.countDocuments(filter);
  }

  /**
   * One page of profiles matching `filter`, from `after` (the previous page's `nextAfter`);
   * `fields` limits the returned fields. On MongoDB pages are in user_id order (keyset on the
   * _id index). FerretDB 1.24 sorts in memory after decoding every document (about a minute for
   * 100 000 profiles) but stops early without a sort, so there pages follow storage order by
   * offset: a profile written between two pages may be missed or seen twice.
   */
  async find(
    filter: Filter<StoredProfile>,
    options: { limit: number; after?: string; fields?: readonly string[] },
  ): Promise<ProfilePage> {
    const position = options.after === undefined ? undefined : parsePosition(options.after);
    const projection = projectionOf(options.fields);
    let documents: StoredProfile[];
    let next: (page: StoredProfile[]) => string;
    if ((await this.backend()) === 'ferretdb' && position?.kind !== 'key') {
      const offset = position?.kind === 'offset' ? position.offset : 0;
      documents = await this.collection
        .find(filter, { projection })
        .skip(offset)
        .limit(options.limit + 1)
        .toArray();
      next = (page) => `o:${offset + page.length}`;
    } else {
      const query = position?.kind === 'key' ? afterFilter(filter, position.id) : filter;
      documents = await this.collection
        .find(query, { projection })
        .sort({ _id: 1 })
        .limit(options.limit + 1)
        .toArray();
      next = (page) => `k:${page[page.length - 1]?._id ?? ''}`;
    }
    const more = documents.length > options.limit;
    const page = more ? documents.slice(0, options.limit) : documents;
    return { profiles: page.map((document) => fromStored(document)), nextAfter: more ? next(page) : null };
  }

  /** Profiles by id, in the order of `userIds` (missing ones are left out). */
  async getMany(userIds: readonly string[], fields?: readonly string[]): Promise<Partial<Profile>[]> {
    if (userIds.length === 0) return [];
    const documents = await this.collection
      .find({ _id: { $in: [...userIds] } }, { projection: projectionOf(fields) })
      .toArray();
    const byId = new Map<string, Partial<Profile>>(
      documents.map((document) => [document._id, fromStored(document as StoredProfile)]),
    );
    return userIds.flatMap((id) => byId.get(id) ?? []);
  }

  /** The stratum fields of every profile matching `filter`, for the sampler. */
  async sampleCandidates(filter: Filter<StoredProfile>, maxPopulation: number): Promise<SampleCandidate[]> {
    const cursor = this.collection.find(filter, {
      projection: { _id: 1, device_type: 1, 'geo_location.country': 1, activity_level: 1 },
      batchSize: 10_000,
    });
    const candidates: SampleCandidate[] = [];
    for await (const document of cursor) {
      if (candidates.length >= maxPopulation) {
        await cursor.close();
        throw new PopulationTooLargeError(
          `the criteria match more than ${maxPopulation} profiles; narrow them to sample`,
        );
      }
      candidates.push({
        user_id: document._id,
        device_type: document.device_type,
        country: document.geo_location?.country ?? 'ZZ',
        activity_level: document.activity_level,
      });
    }
    return candidates;
  }

  /**
   * Gives every profile stored before sample keys existed its key (derived from the user_id, so
   * running twice, or in two processes at once, writes the same values), then records the
   * migration as done. Until that record exists, keySamplingReady() is false and samples take
   * the full-scan path, so a store that is half migrated never samples by key.
   */
  async ensureSampleKeys(batchSize = 1000): Promise<{ migrated: number }> {
    const meta = this.db.collection<{ _id: string; finishedAt: string }>(PROFILES_META_COLLECTION);
    if (await meta.findOne({ _id: this.migrationId() })) return { migrated: 0 };
    let migrated = 0;
    let batch: StoredProfile[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      migrated += await this.rewriteWithKeys(batch);
      batch = [];
    };
    // Streamed: a rewritten profile has its key, so the cursor's filter skips it if met again.
    const missing = this.collection.find({ sample_key: { $exists: false } }, { batchSize });
    for await (const document of missing) {
      batch.push(document);
      if (batch.length >= batchSize) await flush();
    }
    await flush();
    await this.recordSampleKeys();
    return { migrated };
  }

  /**
   * A store that is empty when this process first writes to it holds only keyed profiles from
   * then on (every write sets the key): recording the migration now spares the first sample a
   * scan of the whole store to find profiles without keys. Checked once per store object.
   */
  private async recordKeysIfEmpty(): Promise<void> {
    if (this.emptinessChecked) return;
    this.emptinessChecked = true;
    if (await this.collection.findOne({}, { projection: { _id: 1 } })) return;
    await this.recordSampleKeys();
  }

  private async recordSampleKeys(): Promise<void> {
    await this.db
      .collection<{ _id: string; finishedAt: string }>(PROFILES_META_COLLECTION)
      .updateOne(
        { _id: this.migrationId() },
        { $set: { finishedAt: new Date().toISOString() } },
        { upsert: true },
      );
  }

  /** Migrations are recorded per collection: stores of other collections may share the database. */
  private migrationId(): string {
    return `${SAMPLE_KEYS_MIGRATION}:${this.collection.collectionName}`;
  }

  private async rewriteWithKeys(documents: StoredProfile[]): Promise<number> {
    if ((await this.backend()) === 'ferretdb') {
      // As in replaceExisting: FerretDB 1.24 updates scan the collection each.
      await this.collection.deleteMany({ _id: { $in: documents.map((document) => document._id) } });
      try {
        await this.collection.insertMany(
          documents.map((document) => ({ ...document, ...sampleKeyOf(document._id) })),
          { ordered: false },
        );
      } catch (error) {
        // Another process migrating at the same time wrote the same document first.
        const duplicatesOnly =
          error instanceof MongoBulkWriteError &&
          error.result.getWriteErrors().every((writeError) => writeError.code === DUPLICATE_KEY);
        if (!duplicatesOnly) throw error;
      }
      return documents.length;
    }
    await this.collection.bulkWrite(
      documents.map((document) => ({
        updateOne: { filter: { _id: document._id }, update: { $set: sampleKeyOf(document._id) } },
      })),
      { ordered: false },
    );
    return documents.length;
  }

  /**
   * True when sampling by key reads little: the server answers a slot equality from an index
   * (MongoDB; FerretDB on PostgreSQL with the devstack's jsonb indexes). Then the first call
   * migrates the store (ensureSampleKeys) and answers once that has finished. FerretDB on
   * SQLite decodes the whole collection for every slot, so there one full scan
   * (sampleCandidates) is cheaper and this stays false.
   */
  keySamplingReady(): Promise<boolean> {
    this.keySampling ??= this.probeKeySampling().then(
      (ready) => {
        if (!ready) this.keySampling = undefined; // asked again next time: indexes may come later
        return ready;
      },
      (error: unknown) => {
        this.keySampling = undefined;
        throw error;
      },
    );
    return this.keySampling;
  }

  private async probeKeySampling(): Promise<boolean> {
    const plan = await this.db.command({
      explain: { find: this.collection.collectionName, filter: { [slotField(4096)]: 0 } },
      verbosity: 'queryPlanner',
    });
    if (!/IXSCAN|Index Scan|"Index Name"/.test(JSON.stringify(plan.queryPlanner ?? plan))) return false;
    await this.ensureSampleKeys();
    return true;
  }

  /**
   * k profiles matching `filter`, read slot by slot round the key circle from the seed's start
   * (see sample-key.ts): same store and seed, same sample; k / (matching profiles per slot) reads.
   */
  async sampleByKey(filter: Filter<StoredProfile>, k: number, seed: number): Promise<KeySample> {
    const start = sampleStart(seed);
    const read = new Map<string, StoredProfile>();
    const readSlots = async (level: SampleSlotLevel, slots: number[]) => {
      const found = await Promise.all(
        slots.map((slot) =>
          this.collection.find({ ...filter, [slotField(level)]: slot } as Filter<StoredProfile>).toArray(),
        ),
      );
      for (const document of found.flat()) read.set(document._id, document);
    };
    // Fine slots first; when they hold so few matches that a sample would take more than
    // COARSE_AFTER_READS of them, go round again by coarse slots (64 reads at most).
    let level: SampleSlotLevel = 4096;
    let order = slotOrder(start, level);
    let slotsRead = 0;
    while (true) {
      const wave = order.slice(slotsRead, slotsRead + SLOTS_IN_FLIGHT);
      await readSlots(level, wave);
      slotsRead += wave.length;
      if (level === 4096 && slotsRead === SLOTS_IN_FLIGHT && read.size / slotsRead < k / COARSE_AFTER_READS) {
        level = 64;
        order = slotOrder(start, level);
        slotsRead = 0;
        continue;
      }
      const known = arcKnown(start, level, slotsRead);
      const window = windowFrom(
        [...read.values()].flatMap((document) =>
          typeof document.sample_key === 'number'
            ? [{ user_id: document._id, sample_key: document.sample_key, document }]
            : [],
        ),
        start,
        k,
        known,
      );
      if (window) {
        const seen = [...read.values()].filter(
          (document) => arcFrom(start, document.sample_key ?? 0) < known,
        ).length;
        const population = known >= 1 ? read.size : Math.round(seen / known);
        return { profiles: window.map(({ document }) => fromStored(document)), population, slotsRead };
      }
    }
  }

  async stats(filter: Filter<StoredProfile> = {}): Promise<ProfileStats> {
    const match = Object.keys(filter).length > 0 ? [{ $match: filter }] : [];
    const [strata, actions] = await Promise.all([
      this.collection
        .aggregate<{
          _id: { device: string; country: string; region?: string | null; activity: string };
          n: number;
        }>([
          ...match,
          {
            $group: {
              _id: {
                device: '$device_type',
                country: '$geo_location.country',
                region: '$geo_location.region',
                activity: '$activity_level',
              },
              n: { $sum: 1 },
            },
          },
        ])
        .toArray(),
      this.collection
        .aggregate<{ _id: string; n: number }>([
          ...match,
          { $project: { actions: 1 } }, // keeping _id: FerretDB 1.24 panics on $unwind of documents without one
          { $unwind: '$actions' },
          { $group: { _id: '$actions', n: { $sum: 1 } } },
        ])
        .toArray(),
    ]);
    const stats: ProfileStats = {
      total: 0,
      device_type: {},
      country: {},
      region: {},
      activity_level: {},
      actions: {},
    };
    // Action names are keys here: an own-property check keeps `constructor` a count like any other.
    const add = (bucket: Record<string, number>, key: string | null | undefined, n: number) => {
      if (key === null || key === undefined) return;
      bucket[key] = (Object.hasOwn(bucket, key) ? (bucket[key] as number) : 0) + n;
    };
    for (const { _id: key, n } of strata) {
      stats.total += n;
      add(stats.device_type, key.device, n);
      add(stats.country, key.country, n);
      add(stats.region, key.region, n);
      add(stats.activity_level, key.activity, n);
    }
    for (const { _id: action, n } of actions) add(stats.actions, action, n);
    return sortBuckets(stats);
  }
}

function sortBuckets(stats: ProfileStats): ProfileStats {
  const sorted = (bucket: Record<string, number>) =>
    Object.fromEntries(Object.entries(bucket).sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1)));
  return {
    total: stats.total,
    device_type: sorted(stats.device_type),
    country: sorted(stats.country),
    region: sorted(stats.region),
    activity_level: sorted(stats.activity_level),
    actions: sorted(stats.actions),
  };
}

type Position = { kind: 'key'; id: string } | { kind: 'offset'; offset: number };

/** Positions are `k:<user_id>` (keyset) or `o:<offset>` (storage order); anything else starts over as a key. */
function parsePosition(text: string): Position {
  if (text.startsWith('o:') && /^\d{1,12}$/.test(text.slice(2)))
    return { kind: 'offset', offset: Number(text.slice(2)) };
  return { kind: 'key', id: text.startsWith('k:') ? text.slice(2) : text };
}

function afterFilter(filter: Filter<StoredProfile>, after: string): Filter<StoredProfile> {
  if (!('_id' in filter) && !('$and' in filter)) return { ...filter, _id: { $gt: after } };
  return { $and: [filter, { _id: { $gt: after } }] };
}

function projectionOf(fields: readonly string[] | undefined): Record<string, 1> | undefined {
  if (!fields || fields.length === 0) return undefined;
  const projection: Record<string, 1> = { _id: 1 };
  for (const field of fields) if (field !== 'user_id') projection[field] = 1;
  return projection;
}

function toStored(profile: Profile): StoredProfile {
  return {
    _id: profile.user_id,
    ...profile,
    schema_version: PROFILE_SCHEMA_VERSION,
    updated_at: new Date().toISOString(),
    ...sampleKeyOf(profile.user_id),
  };
}

/** Strips the storage id; the place to migrate documents of older schema versions. */
export function fromStored(document: StoredProfile): Profile {
  const {
    _id,
    user_id: _userId,
    sample_key: _key,
    sample_slot_64: _coarse,
    sample_slot_4096: _fine,
    ...profile
  } = document;
  return { user_id: _id, ...profile };
}
