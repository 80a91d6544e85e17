/**
 * `npm run bench:profiles`: loads a generated population (default 100 000) into a real FerretDB,
 * starts the profiles API as its own process, then puts GET /profiles?criteria= and
 * GET /profiles/sample under load from a second process (autocannon) and, side by side, the same
 * queries issued straight through the driver from another process. The API's overhead is the
 * ratio of the two p50 latencies. Last stdout line: {"bench":"profiles","ratio":...}.
 *
 *   --profiles N      population (default 100000)
 *   --criteria-requests N   requests per criteria measurement (default 100)
 *   --sample-requests N     requests per sample measurement (default 2: on FerretDB each decodes the whole population, about a minute at 100 000)
 *   --concurrency N         requests in flight (default 2)
 *   --backend B             FerretDB's backend: sqlite (default) or postgresql (its own cluster, GIN
 *                           indexes on the pushed-down equalities, so samples are read by sample key)
 *
 * Runs with `node --conditions=import --import tsx` (see package.json): stack/ starts FerretDB
 * with execa 9, an ES module that tsx can only load through the `import` condition.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadExeca } from '../platform/execa';
import { MongoClient } from 'mongodb';
import { generateProfiles } from '../profiles/generator';
import { PROFILE_EQUALITY_FIELDS, PROFILES_COLLECTION, ProfileStore } from '../profiles/store';
import { FerretDbServer, type FerretDbBackend } from '../devstack/ferretdb';
import { ManagedProcess } from '../devstack/managed-process';
import { freePort, isListening } from '../devstack/ports';
import { projectRoot } from '../devstack/tools';
import { FieldReader } from '../core/validation';
import { messageOf } from '../core/errors';

interface Measurement {
  requests: number;
  errors: number;
  p50: number;
  p99: number;
  rps: number;
}

const TOKEN = 'bench-token-0123456789abcdef';
const CRITERIA = { device_type: 'mobile', geo_location: 'US' };
const LIMIT = 50;
const SEED = 7;

function flag(name: string, fallback: number, r: FieldReader): number {
  const index = process.argv.indexOf(`--${name}`);
  if (index < 0) return fallback;
  return (
    r.number(Number(process.argv[index + 1]), `--${name}`, { min: 1, max: 10_000_000, integer: true }) ??
    fallback
  );
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
}

async function driverLoad(
  uri: string,
  db: string,
  query: 'criteria' | 'sample',
  requests: number,
  concurrency: number,
): Promise<Measurement> {
  const load = {
    uri,
    db,
    query,
    criteria: CRITERIA,
    limit: LIMIT,
    seed: SEED,
    amount: requests,
    concurrency,
  };
  const result = await (
    await loadExeca()
  ).execa(
    process.execPath,
    ['--import', 'tsx', path.join(__dirname, 'profiles-driver-load.ts'), JSON.stringify(load)],
    {
      cwd: projectRoot,
    },
  );
  const { latencies, elapsedMs } = JSON.parse(result.stdout) as { latencies: number[]; elapsedMs: number };
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors: 0,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    rps: (latencies.length / elapsedMs) * 1000,
  };
}

async function apiLoad(url: string, requests: number, concurrency: number): Promise<Measurement> {
  const started = performance.now();
  const result = await (
    await loadExeca()
  ).execa(
    process.execPath,
    [
      require.resolve('autocannon/autocannon.js'),
      '-c',
      String(concurrency),
      '-a',
      String(requests),
      '-t',
      '600',
      '-j',
      url,
    ],
    { cwd: projectRoot },
  );
  const elapsedMs = performance.now() - started;
  const report = JSON.parse(result.stdout) as {
    latency: { p50: number; p99: number };
    requests: { total: number };
    non2xx: number;
    errors: number;
    timeouts: number;
    '2xx': number;
  };
  return {
    requests: report['2xx'],
    errors: report.non2xx + report.errors + report.timeouts,
    p50: report.latency.p50,
    p99: report.latency.p99,
    // autocannon's own figure averages per second; with requests of seconds each, count over the run.
    rps: (report['2xx'] / elapsedMs) * 1000,
  };
}

function row(query: string, via: string, m: Measurement): string {
  const cells = [
    query.padEnd(30),
    via.padEnd(7),
    String(m.requests).padStart(5),
    String(m.errors).padStart(7),
    m.p50.toFixed(1).padStart(10),
    m.p99.toFixed(1).padStart(10),
    m.rps.toFixed(2).padStart(9),
  ];
  return cells.join(' ');
}

async function main(): Promise<void> {
  const r = new FieldReader();
  const population = flag('profiles', 100_000, r);
  const requests = { criteria: flag('criteria-requests', 100, r), sample: flag('sample-requests', 2, r) };
  const concurrency = flag('concurrency', 2, r);
  r.throwIfAny();
  const backendIndex = process.argv.indexOf('--backend');
  const backend = (backendIndex < 0 ? 'sqlite' : process.argv[backendIndex + 1]) as FerretDbBackend;
  if (backend !== 'sqlite' && backend !== 'postgresql') {
    process.stderr.write('error: --backend must be sqlite or postgresql\n');
    process.exit(2);
  }

  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'canary-bench-profiles-'));
  const ferret = await FerretDbServer.start({
    dataDir: path.join(dataDir, 'ferretdb'),
    logFile: path.join(dataDir, 'ferretdb.log'),
    backend,
  });
  let api: ManagedProcess | undefined;
  try {
    const database = 'bench';
    const client = await MongoClient.connect(ferret.uri);
    const store = new ProfileStore(client.db(database));
    await store.ensureIndexes();
    const loadStarted = performance.now();
    await store.load(generateProfiles({ seed: 1, count: population }), { batchSize: 1000 });
    await ferret.indexPushedDownEqualities(database, PROFILES_COLLECTION, PROFILE_EQUALITY_FIELDS);
    const loadSeconds = (performance.now() - loadStarted) / 1000;
    await client.close();

    const port = await freePort();
    api = await ManagedProcess.start({
      name: 'profiles-api',
      command: process.execPath,
      args: [
        '--import',
        'tsx',
        path.join(projectRoot, 'profiles/api/server.ts'),
        '--port',
        String(port),
        '--db',
        database,
        '--log-level',
        'warn',
      ],
      cwd: projectRoot,
      env: { CANARY_MONGO_URI: ferret.uri, PROFILES_API_TOKEN: TOKEN },
      logFile: path.join(dataDir, 'profiles-api.log'),
      isReady: () => isListening(port),
      readyTimeoutMs: 60_000,
    });
    const base = `http://127.0.0.1:${port}`;
    const criteria = encodeURIComponent(JSON.stringify(CRITERIA));
    const urls = {
      criteria: `${base}/profiles?criteria=${criteria}&limit=${LIMIT}`,
      sample: `${base}/profiles/sample?criteria=${criteria}&n=${LIMIT}&seed=${SEED}`,
    };
    const results: Record<string, { api: Measurement; driver: Measurement }> = {};
    for (const query of ['criteria', 'sample'] as const) {
      // Driver first, then API: both see the same warmed FerretDB.
      const driver = await driverLoad(ferret.uri, database, query, requests[query], concurrency);
      const viaApi = await apiLoad(urls[query], requests[query], concurrency);
      results[query] = { api: viaApi, driver };
    }

    const ratios = {
      criteria: (results.criteria?.api.p50 ?? NaN) / (results.criteria?.driver.p50 ?? NaN),
      sample: (results.sample?.api.p50 ?? NaN) / (results.sample?.driver.p50 ?? NaN),
    };
    const lines = [
      `profiles bench: ${population} generated profiles on FerretDB (${backend}), ${concurrency} requests in flight, criteria ${JSON.stringify(CRITERIA)}, page/sample size ${LIMIT}`,
      `load: ${loadSeconds.toFixed(1)} s (${Math.round(population / loadSeconds)} profiles/s, batches of 1000, indexes in place)`,
      '',
      `${'query'.padEnd(30)} ${'via'.padEnd(7)} ${'reqs'.padStart(5)} ${'errors'.padStart(7)} ${'p50 ms'.padStart(10)} ${'p99 ms'.padStart(10)} ${'req/s'.padStart(9)}`,
      row('GET /profiles?criteria=', 'api', results.criteria!.api),
      row('  same query, driver only', 'driver', results.criteria!.driver),
      row('GET /profiles/sample', 'api', results.sample!.api),
      row('  same sample, driver only', 'driver', results.sample!.driver),
      '',
      `API overhead (p50 api / p50 driver): criteria ${ratios.criteria.toFixed(3)}x, sample ${ratios.sample.toFixed(3)}x (target < 1.5x)`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    const ratio = Math.max(ratios.criteria, ratios.sample);
    process.stdout.write(
      `${JSON.stringify({
        bench: 'profiles',
        backend,
        ratio: Number(ratio.toFixed(3)),
        profiles: population,
        load_s: Number(loadSeconds.toFixed(1)),
        criteria_p50_ms: Number(results.criteria!.api.p50.toFixed(1)),
        criteria_driver_p50_ms: Number(results.criteria!.driver.p50.toFixed(1)),
        sample_p50_ms: Number(results.sample!.api.p50.toFixed(1)),
        sample_driver_p50_ms: Number(results.sample!.driver.p50.toFixed(1)),
        errors: results.criteria!.api.errors + results.sample!.api.errors,
      })}\n`,
    );
  } finally {
    await api?.stop();
    await ferret.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`error: ${messageOf(error)}\n`);
  process.exit(2);
});
