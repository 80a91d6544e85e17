import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { MongoClient } from 'mongodb';
import { FerretDbServer } from '../../devstack/ferretdb';
import { parseCriteria } from '../../profiles/criteria';
import { generateProfiles } from '../../profiles/generator';
import { StoreProfileSource } from '../../profiles/profile-source';
import {
  arcFrom,
  arcKnown,
  inclusionProbabilities,
  sampleKeyOf,
  sampleStart,
  slotOrder,
  windowFrom,
} from '../../profiles/sample-key';
import {
  PROFILE_EQUALITY_FIELDS,
  PROFILES_COLLECTION,
  PROFILES_META_COLLECTION,
  ProfileStore,
  type StoredProfile,
} from '../../profiles/store';
import { startTestMongo, type TestMongo } from './support';

jest.setTimeout(240_000);

/** The k profiles after `start` going round, from every key: what a key sample must return. */
function expectedWindow(documents: readonly StoredProfile[], start: number, k: number): string[] {
  return documents
    .map((document) => ({ id: document._id, arc: arcFrom(start, document.sample_key as number) }))
    .sort((a, b) => a.arc - b.arc || (a.id < b.id ? -1 : 1))
    .slice(0, k)
    .map(({ id }) => id);
}

describe('sample keys (pure)', () => {
  test('a window is decided only once k keys are known, and is then the k nearest keys after start', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^[a-z0-9]{1,8}$/), { maxLength: 300 }),
        fc.integer({ min: 1, max: 40 }),
        fc.nat(),
        fc.integer({ min: 0, max: 4096 }),
        (ids, k, seed, slotsRead) => {
          const members = ids.map((id) => ({ user_id: id, sample_key: sampleKeyOf(id).sample_key }));
          const start = sampleStart(seed);
          const known = arcKnown(start, 4096, slotsRead);
          const read = members.filter((member) => arcFrom(start, member.sample_key) < known);
          const window = windowFrom(read, start, k, known);
          const truth = windowFrom(members, start, k, 1)!.map((member) => member.user_id);
          if (window === null) expect(read.length).toBeLessThan(k);
          else expect(window.map((member) => member.user_id)).toEqual(truth);
        },
      ),
      { numRuns: 500 },
    );
  });

  test('slots are read from the one holding start, round the circle, each once', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (start) => {
        const order = slotOrder(start, 64);
        expect(new Set(order).size).toBe(64);
        expect(order[0]).toBe(Math.floor(start * 64));
        expect(arcKnown(start, 64, 1)).toBeGreaterThanOrEqual(0);
        expect(arcKnown(start, 64, 64)).toBe(1);
      }),
    );
  });

  test('keys and slots agree and lie in range', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 40 }), (id) => {
        const key = sampleKeyOf(id);
        expect(key.sample_key).toBeGreaterThanOrEqual(0);
        expect(key.sample_key).toBeLessThan(1);
        expect(key.sample_slot_64).toBe(Math.floor(key.sample_key * 64));
        expect(key.sample_slot_4096).toBe(Math.floor(key.sample_key * 4096));
        expect(sampleKeyOf(id)).toEqual(key);
      }),
    );
  });
});

describe('sample keys on FerretDB (SQLite)', () => {
  let mongo: TestMongo;

  beforeAll(async () => {
    mongo = await startTestMongo('sample-key');
  });
  afterAll(() => mongo?.stop());

  test('profiles stored without keys are migrated once, idempotently, and recorded only at the end', async () => {
    const legacy = mongo.db;
    const legacyStore = new ProfileStore(legacy);
    // As written before sample keys existed: no keys, no migration record.
    await legacyStore.collection.insertMany(
      [...generateProfiles({ seed: 9, count: 300 })].map((profile) => ({ _id: profile.user_id, ...profile })),
    );
    expect(await legacy.collection(PROFILES_META_COLLECTION).countDocuments()).toBe(0);
    expect(await legacyStore.ensureSampleKeys()).toEqual({ migrated: 300 });
    const documents = await legacyStore.collection.find({}).toArray();
    expect(documents).toHaveLength(300);
    for (const document of documents) expect(document).toMatchObject(sampleKeyOf(document._id));
    expect(await legacy.collection(PROFILES_META_COLLECTION).countDocuments()).toBe(1);
    expect(await legacyStore.ensureSampleKeys()).toEqual({ migrated: 0 });
  });

  test('a store loaded from empty records the migration at once: no profile can lack a key', async () => {
    const fresh = new ProfileStore(mongo.client.db('test_sample_key_fresh'));
    await fresh.load(generateProfiles({ seed: 2, count: 20 }));
    expect(await fresh.db.collection(PROFILES_META_COLLECTION).countDocuments()).toBe(1);
    expect(await fresh.ensureSampleKeys()).toEqual({ migrated: 0 });
  });

  test('on SQLite slots are not indexed, so samples stay one stratified scan', async () => {
    const store = new ProfileStore(mongo.db);
    expect(await store.keySamplingReady()).toBe(false);
    const sample = await new StoreProfileSource(store).sample(parseCriteria({}, 'c'), 10, 1);
    expect(sample.method).toBe('stratified');
    expect(sample.userIds).toHaveLength(10);
  });
});

describe('sample keys on FerretDB (PostgreSQL)', () => {
  let dataDir: string;
  let ferret: FerretDbServer;
  let client: MongoClient;
  let store: ProfileStore;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'canary-sample-key-pg-'));
    ferret = await FerretDbServer.start({
      dataDir: path.join(dataDir, 'ferretdb'),
      logFile: path.join(dataDir, 'ferretdb.log'),
      backend: 'postgresql',
    });
    client = await MongoClient.connect(ferret.uri);
    store = new ProfileStore(client.db('uniform'));
    await store.ensureIndexes();
    await store.load(generateProfiles({ seed: 5, count: 2000 }));
    await ferret.indexPushedDownEqualities('uniform', PROFILES_COLLECTION, PROFILE_EQUALITY_FIELDS);
  });
  afterAll(async () => {
    await client?.close();
    await ferret?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test('a key sample is the window of the stored keys after the seed start, the same for the same seed', async () => {
    const all = await store.collection.find({ device_type: 'mobile' }).toArray();
    const filter = parseCriteria({ device_type: 'mobile' }, 'criteria').filter;
    for (const seed of [1, 2, 3, 4, 5]) {
      const sample = await store.sampleByKey(filter, 40, seed);
      expect(sample.profiles.map((profile) => profile.user_id)).toEqual(
        expectedWindow(all, sampleStart(seed), 40),
      );
      expect(sample.profiles.every((profile) => profile.device_type === 'mobile')).toBe(true);
      expect('sample_key' in (sample.profiles[0] as object)).toBe(false);
    }
    const again = await store.sampleByKey(filter, 40, 1);
    expect(again.profiles.map((profile) => profile.user_id)).toEqual(expectedWindow(all, sampleStart(1), 40));
    // Fewer matches than asked for: the whole circle is read and every match returned.
    const few = await store.sampleByKey(parseCriteria({ device_type: 'tablet' }, 'c').filter, 5000, 1);
    const tablets = await store.collection.countDocuments({ device_type: 'tablet' });
    expect(tablets).toBeGreaterThan(50);
    expect(few.profiles).toHaveLength(tablets);
    expect(few.population).toBe(tablets);
  });

  test('uniform: every stored profile is picked with probability close to k/N, and samples keep the mix', async () => {
    const all = await store.collection.find({}).toArray();
    const k = 100;
    const probabilities = inclusionProbabilities(
      all.map((document) => document.sample_key as number),
      k,
    );
    const mean = probabilities.reduce((a, b) => a + b, 0) / probabilities.length;
    const sd = Math.sqrt(probabilities.reduce((a, p) => a + (p - mean) ** 2, 0) / probabilities.length);
    // Exactly k/N on average (the arcs tile the circle k times); spread about 1/sqrt(k) = 10 %.
    expect(mean).toBeCloseTo(k / all.length, 10);
    expect(sd / mean).toBeGreaterThan(0.07);
    expect(sd / mean).toBeLessThan(0.13);
    // Inclusion is independent of the profile: the expected mobile share of a sample (weighted by
    // inclusion) is the population's share, up to the arcs' noise, about sqrt(s(1-s)/N).
    const share = all.filter((document) => document.device_type === 'mobile').length / all.length;
    const weighted =
      all.reduce((sum, document, i) => sum + (document.device_type === 'mobile' ? probabilities[i]! : 0), 0) /
      k;
    expect(Math.abs(weighted - share)).toBeLessThan(4 * Math.sqrt((share * (1 - share)) / all.length));
    // The real store's samples for 200 seeds: mean mobile share within 4 standard errors of the
    // population's (a sample of k has standard deviation sqrt(s(1-s)/k), seeds are independent),
    // and each profile's pick count agrees with its exact inclusion probability overall.
    const picks = new Map<string, number>();
    let mobile = 0;
    const seeds = 200;
    for (let seed = 1000; seed < 1000 + seeds; seed++) {
      const sample = await store.sampleByKey({}, k, seed);
      expect(new Set(sample.profiles.map((profile) => profile.user_id)).size).toBe(k);
      for (const profile of sample.profiles) {
        picks.set(profile.user_id, (picks.get(profile.user_id) ?? 0) + 1);
        if (profile.device_type === 'mobile') mobile++;
      }
    }
    const standardError = Math.sqrt((share * (1 - share)) / k / seeds);
    expect(Math.abs(mobile / (seeds * k) - share)).toBeLessThan(4 * standardError);
    // Chi-square of pick counts against seeds * p_i: about N degrees of freedom for binomial counts.
    const chiSquare = all.reduce((sum, document, i) => {
      const expected = seeds * probabilities[i]!;
      return sum + ((picks.get(document._id) ?? 0) - expected) ** 2 / (expected * (1 - probabilities[i]!));
    }, 0);
    expect(chiSquare / all.length).toBeGreaterThan(0.5);
    expect(chiSquare / all.length).toBeLessThan(1.5);
  });

  test('with the GIN indexes a half-migrated store is migrated first, then sampled by key without a scan', async () => {
    const halfMigrated = new ProfileStore(client.db('pg'));
    await halfMigrated.ensureIndexes();
    // Desktop profiles written before sample keys existed, the others since.
    const profiles = [...generateProfiles({ seed: 3, count: 3000 })];
    await halfMigrated.collection.insertMany(
      profiles
        .filter((profile) => profile.device_type === 'desktop')
        .map((profile) => ({ _id: profile.user_id, ...profile })),
    );
    await halfMigrated.load(profiles.filter((profile) => profile.device_type !== 'desktop'));
    // Without the indexes a slot read is a sequential scan: no key sampling.
    expect(await halfMigrated.keySamplingReady()).toBe(false);
    await ferret.indexPushedDownEqualities('pg', PROFILES_COLLECTION, PROFILE_EQUALITY_FIELDS);
    const source = new StoreProfileSource(halfMigrated);
    const sample = await source.sample(parseCriteria({ device_type: 'desktop' }, 'c'), 50, 7);
    expect(sample.method).toBe('sample-key');
    const all = await halfMigrated.collection.find({ device_type: 'desktop' }).toArray();
    expect(all.every((document) => typeof document.sample_key === 'number')).toBe(true);
    expect(sample.userIds).toEqual(expectedWindow(all, sampleStart(7), 50));
    expect(sample.population).toBeGreaterThan(all.length / 2);
    expect(sample.population).toBeLessThan(all.length * 2);
    const selection = await source.select({ criteria: { device_type: 'desktop' }, sampleSize: 50, seed: 7 });
    expect(selection.profileIds).toEqual(sample.userIds);
  });
});
