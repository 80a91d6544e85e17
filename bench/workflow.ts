/**
 * bench:workflow — N concurrent rollouts with 1 s ticks and instant activities on one worker
 * and the Temporal dev server (SQLite file). Reports achieved ticks/s against the ideal N/s,
 * the lag between a tick's due time and its start (p50/p99), the period between one rollout's
 * tick starts (1000 ms when it keeps its cadence; a rollout that falls a whole interval behind
 * skips ahead, so the period shows overload better than the lag), tick duration, and the peak
 * RSS of this process, which hosts the worker (the bench driver in it is small).
 *
 *   npm run bench:workflow [-- --sizes 10,100,500 --seconds 20]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection } from '@temporalio/worker';
import { createLogger } from '../platform/logger';
import { installTemporalRuntime } from '../platform/temporal-logging';
import { RolloutClient } from '../client/rollout-client';
import { TemporalDevServer } from '../devstack/temporal-server';
import type { ActivityDeps } from '../activities/ports';
import { createRolloutWorker, WORKFLOWS_PATH } from '../workers/rollout-worker';
import { parseRolloutSpec } from '../rollout/spec';
import type { TickRecord } from '../rollout/types';
import { emptyWorkerPolicy } from '../rollout/worker-policy';

interface Options {
  sizes: number[];
  seconds: number;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { sizes: [10, 100, 500], seconds: 20 };
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1] ?? '';
    if (argv[i] === '--sizes') options.sizes = value.split(',').map(Number);
    else if (argv[i] === '--seconds') options.seconds = Number(value);
    else continue;
    i++;
  }
  if (options.sizes.some((n) => !Number.isInteger(n) || n < 1) || !(options.seconds > 0)) {
    throw new Error('usage: --sizes 10,100,500 (positive integers) --seconds 20 (> 0)');
  }
  return options;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

/** Activities that answer at once, so the benchmark measures Temporal and the workflow only. */
function instantDeps(ticks: TickRecord[]): ActivityDeps {
  const weights = new Map<string, number>();
  return {
    profiles: { select: async () => ({ profileIds: ['u1', 'u2'], mix: {} }) },
    prober: {
      probe: async () => {
        const now = Date.now();
        return {
          startedAt: now,
          endedAt: now,
          requests: { baseline: 1, canary: 1 },
          errors: { baseline: 0, canary: 0 },
        };
      },
    },
    metrics: { collect: async () => ({ samples: 0, sources: [], missing: [] }) },
    analyzer: {
      analyze: async () => ({ verdict: { status: 'healthy', anomalies: [], reasons: [] }, state: null }),
    },
    routers: {
      routerFor: (rolloutId) => ({
        kind: 'bench-memory',
        reconcile: async () => undefined,
        setCanaryWeight: async (share: number) => void weights.set(rolloutId, share),
        getCanaryWeight: async () => weights.get(rolloutId) ?? 0,
        verify: async () => undefined,
        finalize: async () => undefined,
        close: async () => undefined,
      }),
    },
    alerts: { dispatch: async () => undefined },
    ticks: { recordTick: async (record) => void ticks.push(record) },
    workerPolicy: emptyWorkerPolicy('development'),
  };
}

interface Row {
  rollouts: number;
  ticksPerSecond: number;
  ideal: number;
  lagP50: number;
  lagP99: number;
  periodP50: number;
  periodP99: number;
  durationP50: number;
  rssMb: number;
}

async function measure(
  client: Client,
  size: number,
  seconds: number,
  ticks: TickRecord[],
  run: string,
): Promise<Row> {
  const rollouts = new RolloutClient(client);
  const handles = [];
  for (let i = 0; i < size; i++) {
    const spec = parseRolloutSpec({
      service: 'bench',
      version: `${run}-${size}-${i}`,
      targets: { baseline: { url: 'http://127.0.0.1:1' }, canary: { url: 'http://127.0.0.1:2' } },
      router: { kind: 'bench-memory' },
      interval: '1s',
      probe: { duration: '100ms' },
      // 1 % steps from 5 %: the rollouts keep ticking for the whole measurement.
      policy: { probingTicks: 1, stepUp: 0.5 },
    });
    handles.push(rollouts.start(spec, { taskQueue: 'bench' }));
  }
  const started = await Promise.all(handles);
  const warmupMs = 5000;
  await new Promise((resolve) => setTimeout(resolve, warmupMs));
  ticks.length = 0;
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 250);
  const from = Date.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const window = ticks.filter((tick) => tick.startedAt >= from);
  clearInterval(sampler);
  await Promise.all(started.map((handle) => handle.terminate('benchmark done').catch(() => undefined)));
  const lags = window.map((tick) => tick.startedAt - tick.scheduledAt).sort((a, b) => a - b);
  // Time between consecutive tick starts of one rollout: 1000 ms when it keeps its cadence.
  const lastStart = new Map<string, number>();
  const periods: number[] = [];
  for (const tick of [...window].sort((a, b) => a.startedAt - b.startedAt)) {
    const previous = lastStart.get(tick.rolloutId);
    if (previous !== undefined) periods.push(tick.startedAt - previous);
    lastStart.set(tick.rolloutId, tick.startedAt);
  }
  periods.sort((a, b) => a - b);
  const durations = window.map((tick) => tick.finishedAt - tick.startedAt).sort((a, b) => a - b);
  return {
    rollouts: size,
    ticksPerSecond: window.length / seconds,
    ideal: size,
    lagP50: quantile(lags, 0.5),
    lagP99: quantile(lags, 0.99),
    periodP50: quantile(periods, 0.5),
    periodP99: quantile(periods, 0.99),
    durationP50: quantile(durations, 0.5),
    rssMb: peakRss / 2 ** 20,
  };
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  // Terminating the measured rollouts strands in-flight activities; their completions are
  // refused with warnings that say nothing about the benchmark.
  installTemporalRuntime(createLogger('bench-workflow', 'error'), 'ERROR');
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'canary-bench-workflow-'));
  const server = await TemporalDevServer.start({
    dbFile: path.join(dataDir, 'temporal.db'),
    uiPort: false,
    logFile: path.join(dataDir, 'temporal.log'),
  });
  const ticks: TickRecord[] = [];
  const nativeConnection = await NativeConnection.connect({ address: server.address });
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const worker = await createRolloutWorker({
    connection: nativeConnection,
    taskQueue: 'bench',
    deps: instantDeps(ticks),
    workflowBundle: await bundleWorkflowCode({
      workflowsPath: WORKFLOWS_PATH,
      logger: new DefaultLogger('ERROR'),
    }),
    maxCachedWorkflows: 2000,
    maxConcurrentWorkflowTaskExecutions: 100,
  });
  const rows: Row[] = [];
  try {
    await worker.runUntil(async () => {
      for (const size of options.sizes) {
        process.stderr.write(`measuring ${size} concurrent rollouts for ${options.seconds} s...\n`);
        rows.push(await measure(client, size, options.seconds, ticks, Date.now().toString(36)));
      }
    });
  } finally {
    await connection.close();
    await nativeConnection.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }

  const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '-');
  console.log(
    'rollouts | ticks/s | ideal ticks/s | achieved/ideal | lag p50 ms | lag p99 ms | period p50 ms | period p99 ms | tick p50 ms | RSS MB',
  );
  console.log(
    '-------- | ------- | ------------- | -------------- | ---------- | ---------- | ------------- | ------------- | ----------- | ------',
  );
  for (const row of rows) {
    console.log(
      [
        String(row.rollouts).padStart(8),
        fmt(row.ticksPerSecond, 1).padStart(7),
        String(row.ideal).padStart(13),
        fmt(row.ticksPerSecond / row.ideal, 2).padStart(14),
        fmt(row.lagP50).padStart(10),
        fmt(row.lagP99).padStart(10),
        fmt(row.periodP50).padStart(13),
        fmt(row.periodP99).padStart(13),
        fmt(row.durationP50).padStart(11),
        fmt(row.rssMb).padStart(6),
      ].join(' | '),
    );
  }
  const headline = rows.find((row) => row.rollouts === 100) ?? rows[rows.length - 1];
  const summary: Record<string, number | string> = {
    bench: 'workflow',
    ratio: Number(((headline?.ticksPerSecond ?? 0) / (headline?.ideal ?? 1)).toFixed(3)),
  };
  for (const row of rows) {
    summary[`ticks_per_s_${row.rollouts}`] = Number(row.ticksPerSecond.toFixed(1));
    summary[`lag_p99_ms_${row.rollouts}`] = Math.round(row.lagP99);
    summary[`period_p99_ms_${row.rollouts}`] = Math.round(row.periodP99);
    summary[`rss_mb_${row.rollouts}`] = Math.round(row.rssMb);
  }
  console.log(JSON.stringify(summary));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
