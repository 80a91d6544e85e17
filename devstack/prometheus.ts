import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { ManagedProcess } from './managed-process';
import { freePort } from './ports';

export interface ScrapeJob {
  jobName: string;
  /** host:port of each target. */
  targets: string[];
  metricsPath?: string;
  labels?: Record<string, string>;
}

export interface PrometheusOptions {
  /** Holds the rendered config and the TSDB; a temporary directory in tests. */
  dataDir: string;
  logFile: string;
  jobs: ScrapeJob[];
  /** Short in tests so data appears within seconds. */
  scrapeIntervalMs?: number;
  port?: number;
  readyTimeoutMs?: number;
}

/** Debian's package installs /usr/bin/prometheus; PROMETHEUS_PATH overrides. */
export function resolvePrometheus(): string {
  const candidates = [
    process.env.PROMETHEUS_PATH,
    '/usr/bin/prometheus',
    ...(process.env.PATH ?? '').split(path.delimiter).map((dir) => path.join(dir, 'prometheus')),
  ];
  for (const candidate of candidates) {
    if (!candidate) continue;
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next candidate
    }
  }
  throw new Error(
    'prometheus is not installed: run scripts/install-debian-packages.sh (Debian package "prometheus")',
  );
}

/** A real Prometheus server on loopback with a rendered config and its own TSDB directory. */
export class PrometheusServer {
  private constructor(
    private readonly process: ManagedProcess,
    readonly port: number,
  ) {}

  static async start(options: PrometheusOptions): Promise<PrometheusServer> {
    const port = options.port ?? (await freePort());
    mkdirSync(path.join(options.dataDir, 'tsdb'), { recursive: true });
    const configFile = path.join(options.dataDir, 'prometheus.yml');
    writeFileSync(configFile, renderPrometheusConfig(options.jobs, options.scrapeIntervalMs ?? 1000));
    const url = `http://127.0.0.1:${port}`;
    const process = await ManagedProcess.start({
      name: 'prometheus',
      command: resolvePrometheus(),
      args: [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${path.join(options.dataDir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--storage.tsdb.retention.time=1d',
        '--log.level=warn',
      ],
      logFile: options.logFile,
      readyTimeoutMs: options.readyTimeoutMs ?? 30_000,
      isReady: async () => (await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) })).ok,
    });
    return new PrometheusServer(process, port);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Waits until an instant query returns at least one series (scrapes have landed). */
  async waitForSeries(query: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const response = await fetch(`${this.url}/api/v1/query?${new URLSearchParams({ query }).toString()}`);
      const body = (await response.json()) as { data?: { result?: unknown[] } };
      if ((body.data?.result?.length ?? 0) > 0) return;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new Error(`prometheus returned no series for ${query} within ${timeoutMs} ms`);
  }

  async stop(): Promise<void> {
    await this.process.stop();
  }
}

export function renderPrometheusConfig(jobs: readonly ScrapeJob[], scrapeIntervalMs: number): string {
  const interval = `${Math.max(1, Math.round(scrapeIntervalMs / 1000))}s`;
  return stringify({
    global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval },
    scrape_configs: jobs.map((job) => ({
      job_name: job.jobName,
      metrics_path: job.metricsPath ?? '/metrics',
      static_configs: [{ targets: job.targets, ...(job.labels ? { labels: job.labels } : {}) }],
    })),
  });
}
