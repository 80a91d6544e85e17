/**
 * `npm run bench:profiles`: per FerretDB backend, loads a generated population (default
 * 100 000) into a real FerretDB, starts the profiles API as its own process, then puts
 * GET /profiles?criteria= and GET /profiles/sample?n=1000 under load from a second process
 * (autocannon) and, side by side, the same reads with the bare MongoDB driver from another
 * process (bench/profiles-driver-load.ts). Last stdout line: {"bench":"profiles","ratio":...},
 * ratio = the sample's p50 via the API / p50 of the driver's reads, on the fastest backend.
 *
 *   --profiles N            population (default 100000)
 *   --criteria-requests N   requests per criteria measurement (default 100)
 *   --sample-requests N     requests per sample measurement (default 3: on SQLite each decodes the whole population, about 30 s at 100 000)
 *   --concurrency N         requests in flight (default 1)
 *   --backends LIST         FerretDB backends, in turn (default sqlite,postgresql); postgresql runs
 *                           its own cluster with GIN indexes on the pushed-down equalities
 *   --sample-size N         profiles per sample (default 1000)
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
  limit: number,
  sampling: 'sample-key' | 'stratified',
  requests: number,
  concurrency: number,
): Promise<Measurement> {
  const load = {
    uri,
    db,
    query,
    criteria: CRITERIA,
    limit,
    seed: SEED,
    sampling,
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

interface BackendRun {
  backend: FerretDbBackend;
  population: number;
  loadSeconds: number;
  sampling: 'sample-key' | 'stratified';
  criteria: { api: Measurement; driver: Measurement };
  sample: { api: Measurement; driver: Measurement };
}

async function runBackend(
  backend: FerretDbBackend,
  population: number,
  sampleSize: number,
  requests: { criteria: number; sample: number },
  concurrency: number,
): Promise<BackendRun> {
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
    const sampling = (await store.keySamplingReady()) ? 'sample-key' : 'stratified';
    await client.close();
    process.stderr.write(
      `${backend}: loaded ${population} in ${loadSeconds.toFixed(0)} s; sampling: ${sampling}\n`,
    );

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
      sample: `${base}/profiles/sample?criteria=${criteria}&n=${sampleSize}&seed=${SEED}`,
    };
    const limits = { criteria: LIMIT, sample: sampleSize };
    const measured: Partial<Record<'criteria' | 'sample', { api: Measurement; driver: Measurement }>> = {};
    for (const query of ['criteria', 'sample'] as const) {
      // Driver first, then API: both see the same warmed FerretDB.
      const driver = await driverLoad(
        ferret.uri,
        database,
        query,
        limits[query],
        sampling,
        requests[query],
        concurrency,
      );
      const viaApi = await apiLoad(urls[query], requests[query], concurrency);
      measured[query] = { api: viaApi, driver };
    }
    return {
      backend,
      population,
      loadSeconds,
      sampling,
      criteria: measured.criteria!,
      sample: measured.sample!,
    };
  } finally {
    await api?.stop();
    await ferret.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const r = new FieldReader();
  const population = flag('profiles', 100_000, r);
  const sampleSize = flag('sample-size', 1000, r);
  const requests = { criteria: flag('criteria-requests', 100, r), sample: flag('sample-requests', 3, r) };
  const concurrency = flag('concurrency', 1, r);
  const backendsIndex = process.argv.indexOf('--backends');
  const backends = (backendsIndex < 0 ? 'sqlite,postgresql' : (process.argv[backendsIndex + 1] ?? '')).split(
    ',',
  );
  for (const backend of backends)
    if (backend !== 'sqlite' && backend !== 'postgresql')
      r.fail('--backends', `must list sqlite and/or postgresql, not ${JSON.stringify(backend)}`);
  r.throwIfAny();

  const runs: BackendRun[] = [];
  for (const backend of backends as FerretDbBackend[])
    runs.push(await runBackend(backend, population, sampleSize, requests, concurrency));

  const lines = [
    `profiles bench: ${population} generated profiles per backend, ${concurrency} request(s) in flight, criteria ${JSON.stringify(CRITERIA)}, page ${LIMIT}, sample ${sampleSize} (target < 2000 ms)`,
    ...runs.map(
      (run) =>
        `${run.backend}: load ${run.loadSeconds.toFixed(1)} s (${Math.round(run.population / run.loadSeconds)} profiles/s), samples: ${run.sampling}`,
    ),
    '',
    `${'query'.padEnd(30)} ${'via'.padEnd(7)} ${'reqs'.padStart(5)} ${'errors'.padStart(7)} ${'p50 ms'.padStart(10)} ${'p99 ms'.padStart(10)} ${'req/s'.padStart(9)}`,
    ...runs.flatMap((run) => [
      `[${run.backend}]`,
      row('GET /profiles?criteria=', 'api', run.criteria.api),
      row('  same query, driver only', 'driver', run.criteria.driver),
      row(`GET /profiles/sample n=${sampleSize}`, 'api', run.sample.api),
      row('  same reads, driver only', 'driver', run.sample.driver),
    ]),
    '',
    ...runs.map(
      (run) =>
        `${run.backend}: API overhead (p50 api / p50 driver): criteria ${(run.criteria.api.p50 / run.criteria.driver.p50).toFixed(3)}x, sample ${(run.sample.api.p50 / run.sample.driver.p50).toFixed(3)}x`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  const fastest = runs.reduce((best, run) => (run.sample.api.p50 < best.sample.api.p50 ? run : best));
  const summary: Record<string, unknown> = {
    bench: 'profiles',
    // The sample's API overhead on the fastest backend: p50 via the API / p50 of the same reads with the bare driver.
    ratio: Number((fastest.sample.api.p50 / fastest.sample.driver.p50).toFixed(3)),
    profiles: population,
    sample_size: sampleSize,
    fastest: fastest.backend,
    errors: runs.reduce((sum, run) => sum + run.criteria.api.errors + run.sample.api.errors, 0),
  };
  for (const run of runs) {
    summary[`${run.backend}_load_s`] = Number(run.loadSeconds.toFixed(1));
    summary[`${run.backend}_sampling`] = run.sampling;
    summary[`${run.backend}_sample_p50_ms`] = Number(run.sample.api.p50.toFixed(1));
    summary[`${run.backend}_sample_driver_p50_ms`] = Number(run.sample.driver.p50.toFixed(1));
    summary[`${run.backend}_criteria_p50_ms`] = Number(run.criteria.api.p50.toFixed(1));
    summary[`${run.backend}_criteria_driver_p50_ms`] = Number(run.criteria.driver.p50.toFixed(1));
  }
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`error: ${messageOf(error)}\n`);
  process.exit(2);
});
