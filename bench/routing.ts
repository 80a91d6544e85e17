/**
 * bench:routing — throughput and added latency of the built-in proxy against HAProxy and NGINX,
 * each in front of the same upstream (an NGINX serving a static answer on two ports, one per
 * side, at a 50 % split), driven by wrk from its own process. Every server gets one worker
 * (HAProxy nbthread 1, NGINX worker_processes 1, the proxy is one Node process), so the
 * comparison is per core. Rounds interleave the targets so drift in machine load hits all alike.
 *
 *   npm run bench:routing [-- --seconds 6 --rounds 3 --connections 32]
 *
 * Last stdout line: {"bench":"routing","ratio":<builtin rps / haproxy rps>,...}
 *
 * Soak: the built-in proxy alone at a fixed rate (our load engine, open model) for --soak
 * seconds, with errors, latency and the proxy's resident memory reported every --interval:
 *
 *   npm run bench:routing -- --soak 600 [--rate 2000 --interval 60]
 *
 * Last stdout line: {"bench":"routing-soak","ratio":<achieved rate / asked rate>,"errors":...}
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { renderHaproxyBackend } from '../routing/haproxy-router';
import { renderNginxInclude } from '../routing/nginx-router';
import { BuiltinProxyServer } from '../devstack/builtin-proxy';
import { HaproxyServer } from '../devstack/haproxy';
import { NginxServer, nginxProxyHttp } from '../devstack/nginx';
import { freePort } from '../devstack/ports';
import { resolveTool } from '../devstack/tools';
import type { SessionPlan } from '../loadgen/options';
import { runLoad } from '../loadgen/run-load';
import { decodeHistogram } from '../loadgen/stats';

const run = promisify(execFile);

interface Options {
  seconds: number;
  rounds: number;
  connections: number;
  /** Seconds of soak; 0: the comparison instead. */
  soak: number;
  rate: number;
  interval: number;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { seconds: 6, rounds: 3, connections: 32, soak: 0, rate: 2000, interval: 60 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]?.replace(/^--/, '') as keyof Options;
    const value = Number(argv[i + 1]);
    if (!(key in options) || !Number.isInteger(value) || value < 1) {
      throw new Error(
        'usage: --seconds 6 --rounds 3 --connections 32 | --soak 600 --rate 2000 --interval 60 (positive integers)',
      );
    }
    options[key] = value;
  }
  return options;
}

interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000 };

export function parseWrk(output: string): WrkResult {
  const latency = (percentile: string): number => {
    const match = new RegExp(`^\\s*${percentile}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(output);
    if (!match) throw new Error(`wrk printed no ${percentile}% latency:\n${output}`);
    return Number(match[1]) * (UNIT_MS[match[2] as string] as number);
  };
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(output);
  if (!rps) throw new Error(`wrk printed no Requests/sec:\n${output}`);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output);
  const errors =
    (socket ? socket.slice(1).reduce((sum, count) => sum + Number(count), 0) : 0) + Number(non2xx?.[1] ?? 0);
  return { rps: Number(rps[1]), p50Ms: latency('50'), p99Ms: latency('99'), errors };
}

async function wrk(url: string, seconds: number, connections: number): Promise<WrkResult> {
  const { stdout } = await run(
    resolveTool('wrk'),
    ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', url],
    { timeout: (seconds + 30) * 1000 },
  );
  return parseWrk(stdout);
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-routing-'));
  const stops: (() => Promise<void>)[] = [];
  try {
    const [baselinePort, canaryPort] = [await freePort(), await freePort()];
    const upstream = await NginxServer.start({
      dir: path.join(dir, 'upstream'),
      readyPort: canaryPort,
      http: [baselinePort, canaryPort]
        .map(
          (port) =>
            `    server { listen 127.0.0.1:${port}; location / { default_type text/plain; return 200 "ok\\n"; } }`,
        )
        .join('\n'),
      logFile: path.join(dir, 'upstream.log'),
    });
    stops.push(() => upstream.stop());
    const targets = {
      baseline: { url: `http://127.0.0.1:${baselinePort}` },
      canary: { url: `http://127.0.0.1:${canaryPort}` },
    };

    const builtin = await BuiltinProxyServer.start({
      baseline: targets.baseline.url,
      canary: targets.canary.url,
      adminToken: randomBytes(24).toString('hex'),
      flags: ['--share', '50'],
      logFile: path.join(dir, 'builtin.log'),
    });
    stops.push(() => builtin.stop());
    if (options.soak > 0) {
      await soak(builtin, options);
      return;
    }

    const haproxyPort = await freePort();
    const haproxy = await HaproxyServer.start({
      dir: path.join(dir, 'haproxy'),
      listen: `127.0.0.1:${haproxyPort}`,
      backends: renderHaproxyBackend(
        {
          backend: 'shop',
          servers: { baseline: 'baseline', canary: 'canary' },
          sticky: undefined,
          healthCheck: { path: '/', intervalMs: 1000 },
        },
        targets,
        50,
      ),
      defaultBackend: 'shop',
      logFile: path.join(dir, 'haproxy.log'),
    });
    stops.push(() => haproxy.stop());

    const nginxPort = await freePort();
    const includeFile = path.join(dir, 'shop-upstream.conf');
    writeFileSync(
      includeFile,
      renderNginxInclude(
        { upstream: 'shop', statusListen: `127.0.0.1:${await freePort()}`, sticky: undefined, keepalive: 64 },
        targets,
        { generation: 1, share: 50 },
      ),
    );
    const nginx = await NginxServer.start({
      dir: path.join(dir, 'nginx'),
      readyPort: nginxPort,
      http: nginxProxyHttp({ includeFile, listen: `127.0.0.1:${nginxPort}`, upstream: 'shop' }),
      logFile: path.join(dir, 'nginx.log'),
    });
    stops.push(() => nginx.stop());

    const contenders = {
      direct: `${targets.baseline.url}/`,
      builtin: `${builtin.url}/`,
      haproxy: `http://127.0.0.1:${haproxyPort}/`,
      nginx: `http://127.0.0.1:${nginxPort}/`,
    };
    const results: Record<keyof typeof contenders, WrkResult[]> = {
      direct: [],
      builtin: [],
      haproxy: [],
      nginx: [],
    };
    process.stdout.write(
      `wrk -t1 -c${options.connections}, ${options.rounds} rounds x ${options.seconds} s per target, 50 % split, one worker each\n`,
    );
    for (let round = 1; round <= options.rounds; round += 1) {
      for (const [name, url] of Object.entries(contenders) as [keyof typeof contenders, string][]) {
        await wrk(url, 1, options.connections); // warm connections and JIT
        const result = await wrk(url, options.seconds, options.connections);
        results[name].push(result);
        process.stdout.write(
          `  round ${round} ${name.padEnd(8)} ${result.rps.toFixed(0).padStart(7)} req/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms\n`,
        );
      }
    }

    const summary = Object.fromEntries(
      Object.entries(results).map(([name, runs]) => [
        name,
        {
          rps: median(runs.map((r) => r.rps)),
          p50Ms: median(runs.map((r) => r.p50Ms)),
          p99Ms: median(runs.map((r) => r.p99Ms)),
          errors: runs.reduce((sum, r) => sum + r.errors, 0),
        },
      ]),
    ) as Record<keyof typeof contenders, WrkResult>;
    const direct = summary.direct;
    const ratio = summary.builtin.rps / summary.haproxy.rps;
    process.stdout.write(
      '\n| target | req/s (median) | p50 ms | p99 ms | added p50 ms | errors | vs HAProxy |\n',
    );
    process.stdout.write('|---|---:|---:|---:|---:|---:|---:|\n');
    for (const [name, result] of Object.entries(summary)) {
      const added = name === 'direct' ? '-' : (result.p50Ms - direct.p50Ms).toFixed(2);
      const versus = name === 'direct' ? '-' : `${(result.rps / summary.haproxy.rps).toFixed(2)}x`;
      process.stdout.write(
        `| ${name} | ${result.rps.toFixed(0)} | ${result.p50Ms.toFixed(2)} | ${result.p99Ms.toFixed(2)} | ${added} | ${result.errors} | ${versus} |\n`,
      );
    }
    process.stdout.write(
      `\nbuilt-in proxy / HAProxy throughput: ${ratio.toFixed(2)}x (target >= 0.5x)\n` +
        `${JSON.stringify({
          bench: 'routing',
          ratio: Number(ratio.toFixed(3)),
          builtin_rps: Math.round(summary.builtin.rps),
          haproxy_rps: Math.round(summary.haproxy.rps),
          nginx_rps: Math.round(summary.nginx.rps),
          direct_rps: Math.round(direct.rps),
          builtin_p50_ms: summary.builtin.p50Ms,
          builtin_p99_ms: summary.builtin.p99Ms,
          haproxy_p50_ms: summary.haproxy.p50Ms,
          haproxy_p99_ms: summary.haproxy.p99Ms,
          nginx_p50_ms: summary.nginx.p50Ms,
          nginx_p99_ms: summary.nginx.p99Ms,
        })}\n`,
    );
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One GET / per session, expecting 200. */
const SOAK_SESSIONS: SessionPlan[] = [
  {
    id: 'soak',
    steps: [{ action: 'get', method: 'GET', path: '/', headers: [], expect: { status: [200] }, offsetMs: 0 }],
  },
];

/** The proxy's own view from its /metrics: resident memory and its error and 5xx counts. */
async function proxyGauges(
  adminUrl: string,
): Promise<{ rssBytes: number; upstreamErrors: number; answered5xx: number }> {
  const response = await fetch(`${adminUrl}/metrics`);
  const text = await response.text();
  const sum = (pattern: RegExp): number =>
    [...text.matchAll(pattern)].reduce((total, match) => total + Number(match[1]), 0);
  return {
    rssBytes: sum(/^canary_proxy_process_resident_memory_bytes (\d+)$/gm),
    upstreamErrors: sum(/^canary_proxy_upstream_errors_total\{[^}]*\} (\d+)$/gm),
    answered5xx: sum(/^canary_proxy_requests_total\{[^}]*status_class="5xx"\} (\d+)$/gm),
  };
}

async function soak(builtin: BuiltinProxyServer, options: Options): Promise<void> {
  const windows = Math.ceil(options.soak / options.interval);
  process.stdout.write(
    `soak: built-in proxy alone, ${options.rate} req/s (open model, our load engine) for ${options.soak} s, reported every ${options.interval} s\n\n`,
  );
  process.stdout.write(
    '| minute | req/s | errors | dropped | p50 ms | p99 ms | proxy RSS MB | proxy 5xx | upstream errors |\n',
  );
  process.stdout.write('|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n');
  const start = await proxyGauges(builtin.adminUrl);
  const rss: number[] = [start.rssBytes];
  let requests = 0;
  let errors = 0;
  let dropped = 0;
  let elapsedMs = 0;
  const errorKinds: Record<string, number> = {};
  let last = start;
  for (let window = 1; window <= windows; window += 1) {
    const seconds = Math.min(options.interval, options.soak - (window - 1) * options.interval);
    const result = await runLoad({
      sessions: SOAK_SESSIONS,
      targets: [{ name: 'builtin', url: builtin.url }],
      durationMs: seconds * 1000,
      concurrency: 256,
      threads: 1,
      model: 'open',
      rate: options.rate,
      timeScale: 0,
      tagHeader: null,
      snapshotIntervalMs: 60_000,
    });
    const stats = result.stats[0];
    const histogram = stats ? decodeHistogram(stats.latencyHistogram) : undefined;
    const gauges = await proxyGauges(builtin.adminUrl);
    const windowErrors = (stats?.errors ?? 0) + result.unfinished;
    for (const [kind, count] of Object.entries(stats?.errorKinds ?? {}))
      errorKinds[kind] = (errorKinds[kind] ?? 0) + Number(count);
    requests += (stats?.successes ?? 0) + (stats?.errors ?? 0);
    errors += windowErrors;
    // Arrivals that found all 256 slots busy: the machine or the proxy fell behind the rate.
    dropped += result.sessions.dropped;
    elapsedMs += result.elapsedMs;
    rss.push(gauges.rssBytes);
    process.stdout.write(
      `| ${((window * options.interval) / 60).toFixed(1)} | ${(((stats?.successes ?? 0) * 1000) / result.elapsedMs).toFixed(0)} | ${windowErrors} | ${result.sessions.dropped} | ${((histogram?.getValueAtPercentile(50) ?? 0) / 1000).toFixed(2)} | ${((histogram?.getValueAtPercentile(99) ?? 0) / 1000).toFixed(2)} | ${(gauges.rssBytes / 2 ** 20).toFixed(1)} | ${gauges.answered5xx - last.answered5xx} | ${gauges.upstreamErrors - last.upstreamErrors} |\n`,
    );
    last = gauges;
  }
  const achieved = (requests * 1000) / elapsedMs;
  const rssMb = rss.map((bytes) => Number((bytes / 2 ** 20).toFixed(1)));
  // Growth after the first window, which includes warm-up (JIT, pools, buffers).
  const settled = rssMb.length > 2 ? rssMb.slice(1) : rssMb;
  process.stdout.write(
    `\n${requests} requests, ${errors} errors, ${dropped} arrivals dropped${Object.keys(errorKinds).length ? ` ${JSON.stringify(errorKinds)}` : ''}; proxy RSS ${rssMb[0]} MB at start, ${rssMb.at(-1)} MB at the end\n` +
      `${JSON.stringify({
        bench: 'routing-soak',
        ratio: Number((achieved / options.rate).toFixed(3)),
        seconds: options.soak,
        rate: options.rate,
        requests,
        errors,
        dropped,
        error_kinds: errorKinds,
        proxy_5xx: last.answered5xx - start.answered5xx,
        proxy_upstream_errors: last.upstreamErrors - start.upstreamErrors,
        rss_mb: rssMb,
        rss_growth_after_first_window_mb: Number(((settled.at(-1) ?? 0) - (settled[0] ?? 0)).toFixed(1)),
      })}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench:routing failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
