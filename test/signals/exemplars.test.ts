/**
 * Exemplars end to end below the workflow: the real prober plays profiles against two real
 * sample shops (the canary slow and failing on search), writes probe_results to FerretDB, the
 * exemplar finder picks the blamed action's requests out of them, and the reproduction line it
 * writes runs through a shell against the real `canary loadgen`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { MongoClient, type Db } from 'mongodb';
import { FerretDbServer } from '../../devstack/ferretdb';
import { projectRoot } from '../../devstack/tools';
import { buildShopApp } from '../../examples/shop/app';
import { defaultOntology } from '../../loadgen/profile-sessions';
import { LoadgenProber } from '../../loadgen/prober';
import { loadExeca } from '../../platform/execa';
import { parseProfile } from '../../profiles/profile-schema';
import { ProfileStore } from '../../profiles/store';
import type { Verdict } from '../../rollout/verdict';
import { ProbeExemplars } from '../../signals/exemplars';
import { profile } from '../loadgen/support/shop-server';

const DB_NAME = 'test_exemplars';
/** Looks like an API key: a search for it must not be stored as typed. */
const SECRET = 'sk9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a';

let dataDir: string;
let ferret: FerretDbServer;
let mongo: MongoClient;
let db: Db;
let baseline: FastifyInstance;
let canary: FastifyInstance;

const urlOf = (app: FastifyInstance) => {
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('shop not listening');
  return `http://127.0.0.1:${address.port}`;
};

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'canary-exemplars-'));
  baseline = buildShopApp({ role: 'baseline', version: '1.0.0' });
  canary = buildShopApp({
    role: 'canary',
    version: '1.1.0',
    faults: {
      latency: [{ action: 'search', extraMs: 120, fraction: 1 }],
      errors: [{ action: 'search', rate: 0.3 }],
      leakBytesPerSecond: 0,
      cpu: [],
    },
  });
  [ferret] = await Promise.all([
    FerretDbServer.start({
      dataDir: path.join(dataDir, 'ferretdb'),
      logFile: path.join(dataDir, 'ferretdb.log'),
    }),
    baseline.listen({ port: 0, host: '127.0.0.1' }),
    canary.listen({ port: 0, host: '127.0.0.1' }),
  ]);
  mongo = await MongoClient.connect(ferret.uri, { serverSelectionTimeoutMS: 5000 });
  db = mongo.db(DB_NAME);
  const store = new ProfileStore(db);
  for (const input of [
    profile('searcher-1', [
      { t: 0, action: 'page_view' },
      { t: 10, action: 'search', data: { query: 'lamp' } },
    ]),
    profile('searcher-2', [{ t: 0, action: 'search', data: { query: SECRET } }]),
    profile('browser-3', [{ t: 0, action: 'view_product', data: { product_id: '7' } }]),
  ])
    await store.put(parseProfile(input, defaultOntology()));
}, 60_000);

afterAll(async () => {
  await mongo?.close();
  await Promise.all([ferret?.stop(), baseline?.close(), canary?.close()]);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const searchRegression: Verdict = {
  status: 'anomalous',
  anomalies: [
    {
      metric: 'latency_ms',
      action: 'search',
      effect: 3,
      interval: [2, 4],
      statistic: 'anytime p=0.001',
      critical: false,
      summary: 'search p90 latency +300 %',
      target: 'canary',
      window: { fromTick: 1, toTick: 2 },
      evidence: { regime: 2, fromTick: 2, samples: { baseline: 80, canary: 80 } },
    },
    {
      metric: 'memory_bytes',
      effect: 0.3,
      interval: [0.2, 0.4],
      statistic: 'anytime p=0.01',
      critical: false,
      summary: 'memory +30 %',
    },
  ],
  reasons: [],
};

describe('exemplars of a blamed action', () => {
  test('the slowest and failed canary requests of the blamed action, with their profiles, no secrets, and a reproduction line that runs', async () => {
    const prober = new LoadgenProber({ db });
    for (const tick of [1, 2])
      await prober.probe(
        {
          rolloutId: 'shop-exemplars',
          tick,
          targets: { baseline: { url: urlOf(baseline) }, canary: { url: urlOf(canary) } },
          profileIds: ['searcher-1', 'searcher-2', 'browser-3'],
          durationMs: 1500,
          concurrency: 3,
          seed: 11,
          timeScale: 0,
        },
        () => undefined,
        new AbortController().signal,
      );

    const verdict = await new ProbeExemplars(db).attach('shop-exemplars', 2, searchRegression);
    const [latency, memory] = verdict.anomalies;
    expect(memory?.exemplars).toBeUndefined(); // a whole-service metric blames no request
    const exemplars = latency?.exemplars;
    expect(exemplars?.fromTick).toBe(2); // the regime's windows, not the whole rollout's
    expect(exemplars?.toTick).toBe(2);
    expect(exemplars?.slowest.length).toBe(5);
    expect(exemplars?.failed.length).toBe(5);
    for (const request of [...(exemplars?.slowest ?? []), ...(exemplars?.failed ?? [])]) {
      expect(request.target).toBe('canary');
      expect(request.method).toBe('GET');
      expect(request.path).toMatch(/^\/search\?q=(lamp|REDACTED)$/);
      expect(['searcher-1', 'searcher-2']).toContain(request.profileId);
    }
    for (const request of exemplars?.slowest ?? []) {
      expect(request.status).toBe(200);
      expect(request.latencyMs).toBeGreaterThanOrEqual(120);
    }
    const latencies = (exemplars?.slowest ?? []).map((request) => request.latencyMs);
    expect(latencies).toEqual([...latencies].sort((a, b) => b - a));
    for (const request of exemplars?.failed ?? []) {
      expect(request.status).toBe(500);
      expect(request.error).toBe('unexpected_status');
    }
    expect(JSON.stringify(verdict)).not.toContain(SECRET);
    expect(JSON.stringify(verdict)).not.toMatch(/user-agent|cookie/i);

    const line = exemplars?.reproduce ?? '';
    expect(line).toMatch(
      new RegExp(
        `^canary loadgen --profiles searcher-\\d(,searcher-\\d)? --baseline ${urlOf(baseline)} --canary ${urlOf(canary)} --duration 1500ms --concurrency [12] --time-scale 0 --seed 11$`,
      ),
    );
    // The line as a person pastes it, with `canary` being the real CLI from source.
    const { execa } = await loadExeca();
    const run = await execa(
      'bash',
      ['-c', `canary() { "${process.execPath}" --import tsx cli/main.ts "$@"; }\n${line} --json`],
      {
        cwd: projectRoot,
        reject: false,
        timeout: 60_000,
        env: { CANARY_MONGO_URI: ferret.uri, CANARY_MONGO_DB: DB_NAME },
      },
    );
    expect(run.stderr).toBe('');
    expect(run.exitCode).toBe(0);
    const result = JSON.parse(String(run.stdout).trim().split('\n').at(-1) ?? '{}') as {
      type: string;
      summary: { target: string; action: string; errors: number }[];
    };
    expect(result.type).toBe('result');
    const search = result.summary.find((row) => row.target === 'canary' && row.action === 'search');
    expect(search?.errors).toBeGreaterThan(0);
  }, 90_000);
});
