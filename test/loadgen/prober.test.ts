import type { ProbeRequest } from '../../activities/ports';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient, type Db } from 'mongodb';
import type { FastifyInstance } from 'fastify';
import { FerretDbServer } from '../../devstack/ferretdb';
import { defaultOntology } from '../../loadgen/profile-sessions';
import { parseProfile } from '../../profiles/profile-schema';
import { ProfileStore } from '../../profiles/store';
import {
  LoadgenProber,
  PROBE_CHECKPOINTS_COLLECTION,
  PROBE_RESULTS_COLLECTION,
  PROBE_SHARDS_COLLECTION,
} from '../../loadgen/prober';
import { decodeHistogram } from '../../loadgen/stats';
import { buildLoadgenApp } from '../../loadgen/service/app';
import { ValidationError, type Json } from '../../core/validation';
import { profile, ShopServer } from './support/shop-server';

let dataDir: string;
let ferret: FerretDbServer;
let mongo: MongoClient;
let db: Db;
let baseline: ShopServer;
let canary: ShopServer;

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'canary-loadgen-'));
  [ferret, baseline, canary] = await Promise.all([
    FerretDbServer.start({
      dataDir: path.join(dataDir, 'ferretdb'),
      logFile: path.join(dataDir, 'ferretdb.log'),
    }),
    ShopServer.start(),
    ShopServer.start(),
  ]);
  mongo = await MongoClient.connect(ferret.uri, { serverSelectionTimeoutMS: 5000 });
  db = mongo.db('test_loadgen');
  const store = new ProfileStore(db);
  const ontology = defaultOntology();
  for (const input of [
    profile('shopper-1', [
      { t: 0, action: 'page_view' },
      { t: 50, action: 'search', data: { query: 'lamp' } },
      { t: 120, action: 'view_product', data: { product_id: 'p-1' } },
    ]),
    profile('shopper-2', [
      { t: 0, action: 'login', data: { username: 'bo' } },
      { t: 80, action: 'checkout' },
    ]),
  ])
    await store.put(parseProfile(input, ontology));
});

afterAll(async () => {
  await mongo?.close();
  await Promise.all([ferret?.stop(), baseline?.close(), canary?.close()]);
  rmSync(dataDir, { recursive: true, force: true });
});

beforeEach(() => {
  baseline.reset();
  canary.reset();
});

const request = (overrides: Partial<ProbeRequest> = {}): ProbeRequest => ({
  rolloutId: 'shop-v2',
  tick: 1,
  targets: { baseline: { url: baseline.url }, canary: { url: canary.url } },
  profileIds: ['shopper-1', 'shopper-2'],
  durationMs: 1500,
  concurrency: 4,
  seed: 9,
  ...overrides,
});

const noSignal = () => new AbortController().signal;

describe('LoadgenProber', () => {
  test('writes one probe_results document per window in the analysis contract, and a retry does not probe again', async () => {
    const heartbeats: Json[] = [];
    const prober = new LoadgenProber({ db, snapshotIntervalMs: 500, threads: 1 });
    const summary = await prober.probe(request(), (details) => heartbeats.push(details), noSignal());

    const document = await db.collection(PROBE_RESULTS_COLLECTION).findOne({ rolloutId: 'shop-v2', tick: 1 });
    expect(document).not.toBeNull();
    expect(Object.keys(document ?? {}).sort()).toEqual(
      [
        '_id',
        'durationMs',
        'endedAt',
        'replay',
        'rolloutId',
        'sessions',
        'shards',
        'startedAt',
        'stats',
        'storedAt',
        'tick',
        'unfinished',
      ].sort(),
    );
    // The TTL index expires windows by this Date (a number would never expire).
    expect(document?.storedAt).toBeInstanceOf(Date);
    const stats = document?.stats as Record<string, unknown>[];
    expect(new Set(stats.map((entry) => entry.target))).toEqual(new Set(['baseline', 'canary']));
    expect(new Set(stats.map((entry) => entry.action))).toEqual(
      new Set(['page_view', 'search', 'view_product', 'login', 'checkout']),
    );
    expect(document?.replay).toEqual({
      targets: { baseline: baseline.url, canary: canary.url },
      durationMs: 1500,
      concurrency: 4,
      seed: 9,
      timeScale: 1,
    });
    for (const entry of stats) {
      expect(Object.keys(entry).sort()).toEqual(
        [
          'action',
          'bytes',
          'errorKinds',
          'errorLatencyHistogram',
          'errors',
          'exemplars',
          'latencyHistogram',
          'statusCounts',
          'successes',
          'target',
        ].sort(),
      );
      const histogram = decodeHistogram(entry.latencyHistogram as string);
      expect(histogram.totalCount).toBe(entry.successes);
      // Microseconds: a loopback request takes more than 20 µs and less than a second.
      expect(histogram.getValueAtPercentile(50)).toBeGreaterThan(20);
      expect(histogram.getValueAtPercentile(50)).toBeLessThan(1_000_000);
      expect(entry.errors).toBe(0);
    }
    expect(summary.requests.baseline).toBe(summary.requests.canary);
    expect(summary.requests.baseline).toBeGreaterThan(10);
    expect(summary.requests.baseline).toBe(
      stats
        .filter((entry) => entry.target === 'baseline')
        .reduce((sum, entry) => sum + (entry.successes as number), 0),
    );
    expect(heartbeats.length).toBeGreaterThanOrEqual(2);
    expect(heartbeats[0]).toEqual({ phase: 'starting', playedMs: 0, durationMs: 1500 });
    const figures = heartbeats.slice(1) as { requests: { baseline: number; canary: number } }[];
    expect(
      figures.every((beat) => beat.requests.baseline === beat.requests.canary || beat.requests.baseline >= 0),
    ).toBe(true);
    expect(figures.at(-1)?.requests.baseline).toBe(summary.requests.baseline);

    const seen = baseline.requests.length;
    const again = await prober.probe(request(), () => undefined, noSignal());
    expect(again).toEqual(summary);
    expect(baseline.requests.length).toBe(seen);
    expect(
      await db.collection(PROBE_RESULTS_COLLECTION).countDocuments({ rolloutId: 'shop-v2', tick: 1 }),
    ).toBe(1);
  });

  test('stops within a second when cancelled, and the retry plays only the rest of the window', async () => {
    const prober = new LoadgenProber({ db, snapshotIntervalMs: 300, threads: 1 });
    const controller = new AbortController();
    const cancelledAt = new Promise<number>((resolve) =>
      setTimeout(() => {
        controller.abort(new Error('activity cancelled'));
        resolve(Date.now());
      }, 1500),
    );
    await expect(
      prober.probe(request({ tick: 2, durationMs: 3000 }), () => undefined, controller.signal),
    ).rejects.toThrow('activity cancelled');
    expect(Date.now() - (await cancelledAt)).toBeLessThan(1000);
    const checkpoint = await db.collection(PROBE_CHECKPOINTS_COLLECTION).findOne({});
    expect(checkpoint?.playedMs).toBeGreaterThan(500);
    expect(checkpoint?.storedAt).toBeInstanceOf(Date);
    const firstAttempt = baseline.requests.length;

    const begin = Date.now();
    const summary = await prober.probe(request({ tick: 2, durationMs: 3000 }), () => undefined, noSignal());
    // The remaining window only (3 s minus what the first attempt played), plus thread start-up.
    expect(Date.now() - begin).toBeLessThan(3000 - (checkpoint?.playedMs as number) + 1500);
    expect(summary.requests.baseline).toBeGreaterThan(0);
    const document = await db.collection(PROBE_RESULTS_COLLECTION).findOne({ rolloutId: 'shop-v2', tick: 2 });
    // Both attempts' requests are in the window's result.
    expect(summary.requests.baseline).toBeGreaterThan(baseline.requests.length - firstAttempt);
    expect(document?.durationMs).toBeGreaterThan(2500);
    expect(await db.collection(PROBE_CHECKPOINTS_COLLECTION).countDocuments({})).toBe(0);
  });

  test('fanned-out shards play disjoint parts of one workload and merge into one document', async () => {
    const prober = new LoadgenProber({ db, snapshotIntervalMs: 1000, threads: 1 });
    const shards = await Promise.all(
      [0, 1].map((index) =>
        prober.probe(
          request({ tick: 3, concurrency: 4, shard: { index, count: 2 } }),
          () => undefined,
          noSignal(),
        ),
      ),
    );
    const document = await db.collection(PROBE_RESULTS_COLLECTION).findOne({ rolloutId: 'shop-v2', tick: 3 });
    expect(document?.shards).toBe(2);
    expect(document?.storedAt).toBeInstanceOf(Date);
    const parts = await db
      .collection(PROBE_SHARDS_COLLECTION)
      .find({ rolloutId: 'shop-v2', tick: 3 })
      .toArray();
    expect(parts.map((part) => part.storedAt instanceof Date)).toEqual([true, true]);
    const stats = document?.stats as { target: string; successes: number; errors: number }[];
    const total = stats
      .filter((entry) => entry.target === 'canary')
      .reduce((sum, entry) => sum + entry.successes + entry.errors, 0);
    expect(total).toBe(shards[0]!.requests.canary + shards[1]!.requests.canary);
    // Shard 0 plays virtual users 0 and 2, shard 1 users 1 and 3: their sessions never overlap.
    const sessions = new Set(baseline.requests.map((seen) => seen.session));
    expect([...sessions].some((session) => (session as number) % 4 === 1)).toBe(true);
    expect([...sessions].some((session) => (session as number) % 4 === 2)).toBe(true);
  });

  test('unknown profile ids and targets outside the allowlist fail fast, naming the field', async () => {
    const prober = new LoadgenProber({ db, threads: 1 });
    await expect(
      prober.probe(request({ tick: 4, profileIds: ['shopper-1', 'ghost'] }), () => undefined, noSignal()),
    ).rejects.toThrow(
      new ValidationError([{ field: 'profileIds', rule: 'name profiles that are not in the store: ghost' }]),
    );
    await expect(
      prober.probe(
        request({
          tick: 4,
          targets: { baseline: { url: baseline.url }, canary: { url: 'http://192.168.7.7' } },
        }),
        () => undefined,
        noSignal(),
      ),
    ).rejects.toThrow(/targets\.canary: host 192\.168\.7\.7 is not in the target allowlist/);
    expect(baseline.requests).toHaveLength(0);
  });
});

describe('loadgen service', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await buildLoadgenApp({ db });
  });
  afterAll(async () => {
    await app.close();
  });

  test('POST /runs starts a run, GET shows its snapshots and summary, DELETE cancels one', async () => {
    const created = await app.inject({
      method: 'POST',
      url: '/runs',
      payload: {
        profile_id: 'shopper-1',
        duration: 1.2,
        concurrency: 2,
        target_url: baseline.url,
        snapshot_interval_ms: 400,
      },
    });
    expect(created.statusCode).toBe(201);
    const { id } = created.json<{ id: string }>();
    let run = (await app.inject({ url: `/runs/${id}` })).json<{
      status: string;
      snapshots: unknown[];
      summary: { actions: { action: string; requests: number }[] } | null;
    }>();
    expect(run.status).toBe('running');
    while (run.status === 'running') {
      await new Promise((resolve) => setTimeout(resolve, 200));
      run = (await app.inject({ url: `/runs/${id}` })).json();
    }
    expect(run.status).toBe('completed');
    expect(run.snapshots.length).toBeGreaterThanOrEqual(1);
    expect(run.summary?.actions.map((row) => row.action).sort()).toEqual([
      'page_view',
      'search',
      'view_product',
    ]);

    const long = await app.inject({
      method: 'POST',
      url: '/runs',
      payload: {
        criteria: { device_type: 'desktop' },
        duration: 60,
        concurrency: 2,
        target_url: { baseline: baseline.url, canary: canary.url },
      },
    });
    expect(long.statusCode).toBe(201);
    const begin = Date.now();
    const cancelled = await app.inject({ method: 'DELETE', url: `/runs/${long.json<{ id: string }>().id}` });
    expect(cancelled.statusCode).toBe(200);
    expect(cancelled.json()).toMatchObject({ status: 'cancelled' });
    expect(Date.now() - begin).toBeLessThan(2000);
  });

  test('bad bodies get 400 naming the field and the rule, unknown runs 404', async () => {
    const bad = async (payload: Record<string, unknown>) => {
      const response = await app.inject({ method: 'POST', url: '/runs', payload });
      expect(response.statusCode).toBe(400);
      return response.json<{ message: string }>().message;
    };
    expect(
      await bad({ profile_id: 'shopper-1', duration: 5, concurrency: 2, target_url: 'http://10.0.0.8' }),
    ).toMatch(/^target_url: host 10\.0\.0\.8 is not in the target allowlist/);
    expect(
      await bad({ profile_id: 'shopper-1', duration: 99999, concurrency: 5000, target_url: baseline.url }),
    ).toBe('duration: must be at most 1h; concurrency: must be <= 1000');
    expect(await bad({ profile_id: 'nobody', duration: 5, concurrency: 2, target_url: baseline.url })).toBe(
      'profile_id: name profiles that are not in the store: nobody',
    );
    expect(await bad({ duration: 5, concurrency: 2, target_url: 'not a url', extra: 1 })).toMatch(
      /extra: is not a known field/,
    );
    expect(await bad({ duration: 5, concurrency: 2, target_url: 'not a url' })).toBe(
      'profile_id: give either profile_id or criteria (exactly one)',
    );
    expect(
      await bad({ criteria: { $where: 'sleep(1)' }, duration: 5, concurrency: 2, target_url: baseline.url }),
    ).toMatch(/^criteria/);
    expect((await app.inject({ url: '/runs/nope' })).statusCode).toBe(404);
    expect(baseline.requests).toHaveLength(0);
  });
});
