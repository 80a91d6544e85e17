/**
 * bench:loadgen — our engine against wrk (the reference) and autocannon, on one nginx on
 * loopback, with the same connection count, in alternation, several rounds; medians reported.
 *
 * Throughput: closed model, one action, no think time, per-action HDR histograms recorded as in
 * any run. Latency overhead: what each generator reports as p50 for the same server, (a) with one
 * connection in a closed loop (the generator's own per-request path is all that differs), and
 * (b) at a fixed moderate rate: ours in the open model at RATE req/s; wrk has no rate limit, so
 * it runs few connections with a Lua delay() between requests, and its achieved rate is printed
 * next to ours.
 *
 * Environment: LOADGEN_BENCH_ROUNDS (3), LOADGEN_BENCH_SECONDS (8), LOADGEN_BENCH_CONNECTIONS
 * (50), LOADGEN_BENCH_THREADS (2: wrk -t, our engine threads, autocannon workers),
 * LOADGEN_BENCH_RATE (2000), NGINX_WORKERS (1).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadExeca } from '../platform/execa';
import { NginxServer, nginxStaticHttp } from '../devstack/nginx';
import { freePort } from '../devstack/ports';
import { projectRoot } from '../devstack/tools';
import { runLoad } from '../loadgen/run-load';
import type { SessionPlan } from '../loadgen/options';
import { decodeHistogram } from '../loadgen/stats';

const ROUNDS = Number(process.env.LOADGEN_BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.LOADGEN_BENCH_SECONDS ?? 8);
const CONNECTIONS = Number(process.env.LOADGEN_BENCH_CONNECTIONS ?? 50);
const THREADS = Number(process.env.LOADGEN_BENCH_THREADS ?? 2);
const RATE = Number(process.env.LOADGEN_BENCH_RATE ?? 2000);
const WRK = process.env.WRK_PATH ?? '/usr/bin/wrk';

interface Measurement {
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

/** One GET / per session, expecting 200: the same single action wrk sends. */
const SESSIONS: SessionPlan[] = [
  {
    id: 'static',
    steps: [
      { action: 'static', method: 'GET', path: '/', headers: [], expect: { status: [200] }, offsetMs: 0 },
    ],
  },
];

function wrkLatencyMs(text: string, percentile: string): number {
  const match = new RegExp(`^\\s*${percentile}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(text);
  if (!match) return NaN;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
}

async function wrk(url: string, args: string[]): Promise<Measurement> {
  const { execa } = await loadExeca();
  const { stdout } = await execa(WRK, [...args, '--latency', url]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  return { rps, p50Ms: wrkLatencyMs(stdout, '50'), p99Ms: wrkLatencyMs(stdout, '99') };
}

async function autocannon(url: string): Promise<Measurement> {
  const { execa } = await loadExeca();
  const cli = path.join(projectRoot, 'node_modules', 'autocannon', 'autocannon.js');
  const args = [cli, '--json', '-c', String(CONNECTIONS), '-d', String(SECONDS)];
  if (THREADS > 1) args.push('-w', String(THREADS));
  const { stdout } = await execa(process.execPath, [...args, url]);
  const result = JSON.parse(stdout) as {
    requests: { total: number };
    duration: number;
    latency: { p50: number; p99: number };
  };
  return {
    rps: result.requests.total / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
  };
}

async function ours(
  url: string,
  options: { concurrency: number; threads: number; rate?: number },
): Promise<Measurement> {
  const result = await runLoad({
    sessions: SESSIONS,
    targets: [{ name: 'target', url }],
    durationMs: SECONDS * 1000,
    concurrency: options.concurrency,
    threads: options.threads,
    timeScale: 0,
    tagHeader: null,
    snapshotIntervalMs: 60_000,
    ...(options.rate ? { model: 'open' as const, rate: options.rate } : {}),
  });
  const stats = result.stats[0];
  if (!stats || stats.errors > 0)
    throw new Error(`our engine recorded errors: ${JSON.stringify(stats?.errorKinds)}`);
  const histogram = decodeHistogram(stats.latencyHistogram);
  return {
    rps: (stats.successes * 1000) / result.elapsedMs,
    p50Ms: histogram.getValueAtPercentile(50) / 1000,
    p99Ms: histogram.getValueAtPercentile(99) / 1000,
  };
}

function row(name: string, runs: Measurement[], reference?: number): string {
  const rps = median(runs.map((run) => run.rps));
  const cells = [
    name.padEnd(34),
    rps.toFixed(0).padStart(9),
    (reference ? (rps / reference).toFixed(2) : '').padStart(6),
    median(runs.map((run) => run.p50Ms))
      .toFixed(3)
      .padStart(8),
    median(runs.map((run) => run.p99Ms))
      .toFixed(3)
      .padStart(8),
    runs.map((run) => run.rps.toFixed(0)).join(' '),
  ];
  return cells.join('  ');
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'canary-bench-loadgen-'));
  const port = await freePort();
  const nginx = await NginxServer.start({
    dir: path.join(dir, 'nginx'),
    readyPort: port,
    workers: Number(process.env.NGINX_WORKERS ?? 1),
    http: nginxStaticHttp(port, 'x'.repeat(64)),
    logFile: path.join(dir, 'nginx.log'),
  });
  const nginxUrl = `http://127.0.0.1:${port}`;
  const url = `${nginxUrl}/`;
  const delayScript = path.join(dir, 'delay.lua');
  // wrk's only pacing: delay() ms before each request of a connection.
  writeFileSync(delayScript, 'function delay()\n  return 2\nend\n');
  try {
    const load = os.loadavg()[0]?.toFixed(1);
    console.log(
      `bench:loadgen  nginx ${nginxUrl} (${process.env.NGINX_WORKERS ?? 1} worker), ${CONNECTIONS} connections, ` +
        `${THREADS} threads, ${SECONDS} s x ${ROUNDS} rounds, ${os.cpus().length} cores, load ${load}`,
    );
    const results = { wrk: [] as Measurement[], ours: [] as Measurement[], autocannon: [] as Measurement[] };
    const overhead = {
      wrk1: [] as Measurement[],
      ours1: [] as Measurement[],
      wrkPaced: [] as Measurement[],
      oursRate: [] as Measurement[],
    };
    // Warm-up (connections, JIT, nginx caches) is not measured.
    await wrk(url, ['-t1', '-c4', '-d1s']);
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternate the order so drift in the machine's load does not favour one tool.
      const order =
        round % 2 ? (['wrk', 'ours', 'autocannon'] as const) : (['autocannon', 'ours', 'wrk'] as const);
      for (const tool of order) {
        if (tool === 'wrk')
          results.wrk.push(await wrk(url, [`-t${THREADS}`, `-c${CONNECTIONS}`, `-d${SECONDS}s`]));
        if (tool === 'ours')
          results.ours.push(await ours(url, { concurrency: CONNECTIONS, threads: THREADS }));
        if (tool === 'autocannon') results.autocannon.push(await autocannon(url));
      }
      overhead.wrk1.push(await wrk(url, ['-t1', '-c1', `-d${Math.min(SECONDS, 5)}s`]));
      overhead.ours1.push(await ours(url, { concurrency: 1, threads: 1 }));
      overhead.wrkPaced.push(await wrk(url, ['-t1', '-c4', `-d${Math.min(SECONDS, 5)}s`, '-s', delayScript]));
      overhead.oursRate.push(await ours(url, { concurrency: 64, threads: 1, rate: RATE }));
      console.log(
        `round ${round}: wrk ${results.wrk.at(-1)?.rps.toFixed(0)}  ours ${results.ours.at(-1)?.rps.toFixed(0)}  autocannon ${results.autocannon.at(-1)?.rps.toFixed(0)} req/s`,
      );
    }
    const wrkRps = median(results.wrk.map((run) => run.rps));
    const oursRps = median(results.ours.map((run) => run.rps));
    const autocannonRps = median(results.autocannon.map((run) => run.rps));
    console.log('');
    console.log(
      `${'generator'.padEnd(34)}  ${'req/s'.padStart(9)}  ${'x wrk'.padStart(6)}  ${'p50 ms'.padStart(8)}  ${'p99 ms'.padStart(8)}  runs`,
    );
    console.log(row(`wrk -t${THREADS} -c${CONNECTIONS}`, results.wrk, wrkRps));
    console.log(row(`canary loadgen (${THREADS} threads, HDR)`, results.ours, wrkRps));
    console.log(
      row(`autocannon -c${CONNECTIONS}${THREADS > 1 ? ` -w${THREADS}` : ''}`, results.autocannon, wrkRps),
    );
    console.log('');
    console.log('latency overhead (same nginx; p50 as each generator measures it)');
    console.log(row('wrk, 1 connection, closed loop', overhead.wrk1));
    console.log(row('ours, 1 virtual user, closed loop', overhead.ours1));
    console.log(row('wrk, 4 connections, delay() 2 ms', overhead.wrkPaced));
    console.log(row(`ours, open model at ${RATE} req/s`, overhead.oursRate));
    const p50 = (runs: Measurement[]) => median(runs.map((run) => run.p50Ms));
    const closedOverheadUs = (p50(overhead.ours1) - p50(overhead.wrk1)) * 1000;
    const pacedOverheadUs = (p50(overhead.oursRate) - p50(overhead.wrkPaced)) * 1000;
    console.log(
      `overhead: closed loop ${closedOverheadUs.toFixed(0)} µs at p50; at a moderate rate ${pacedOverheadUs.toFixed(0)} µs at p50`,
    );
    console.log(
      JSON.stringify({
        bench: 'loadgen',
        ratio: Math.round((oursRps / wrkRps) * 100) / 100,
        rps: Math.round(oursRps),
        wrk_rps: Math.round(wrkRps),
        autocannon_rps: Math.round(autocannonRps),
        autocannon_ratio: Math.round((autocannonRps / wrkRps) * 100) / 100,
        connections: CONNECTIONS,
        threads: THREADS,
        rounds: ROUNDS,
        p50_overhead_us_closed: Math.round(closedOverheadUs),
        p50_overhead_us_at_rate: Math.round(pacedOverheadUs),
        rate: RATE,
        wrk_paced_rps: Math.round(median(overhead.wrkPaced.map((run) => run.rps))),
      }),
    );
  } finally {
    await nginx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
