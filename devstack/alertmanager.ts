import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import type { ProcessSpec } from './managed-process';
import { freePort } from './ports';
import { RestartableServer } from './restartable-server';
import { resolveTool } from './tools';

export interface AlertmanagerOptions {
  /** Holds alertmanager.yml and the notification log / silences. */
  dir: string;
  /** The whole alertmanager.yml; defaults to one receiver that sends nowhere. */
  config?: string;
  port?: number;
  logFile: string;
  readyTimeoutMs?: number;
}

/** Routes everything to a receiver without integrations: alerts are kept and shown, not sent. */
export const SILENT_ALERTMANAGER_CONFIG = [
  'route:',
  '  receiver: blackhole',
  'receivers:',
  '  - name: blackhole',
  '',
].join('\n');

/**
 * Debian's Prometheus Alertmanager as a single node (clustering off) on loopback, with its own
 * config and storage directory; restart keeps both, as a real restart would.
 */
export class AlertmanagerServer extends RestartableServer {
  readonly configFile: string;

  private constructor(
    private readonly options: AlertmanagerOptions,
    readonly port: number,
  ) {
    super();
    this.configFile = path.join(options.dir, 'alertmanager.yml');
  }

  static async start(options: AlertmanagerOptions): Promise<AlertmanagerServer> {
    mkdirSync(path.join(options.dir, 'data'), { recursive: true });
    const server = new AlertmanagerServer(options, options.port ?? (await freePort()));
    writeFileSync(server.configFile, options.config ?? SILENT_ALERTMANAGER_CONFIG);
    await server.launch();
    return server;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  protected processSpec(): ProcessSpec {
    return {
      name: 'alertmanager',
      command: resolveTool('alertmanager'),
      args: [
        `--config.file=${this.configFile}`,
        `--storage.path=${path.join(this.options.dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
        // An empty cluster address turns gossip off: no extra port, no peers to wait for.
        '--cluster.listen-address=',
        '--log.level=warn',
      ],
      logFile: this.options.logFile,
      readyTimeoutMs: this.options.readyTimeoutMs ?? 20_000,
      stopGraceMs: 2000,
      isReady: () => this.answersReady(),
    };
  }

  private async answersReady(): Promise<boolean> {
    const response = await request(`${this.url}/-/ready`, { headersTimeout: 1000, bodyTimeout: 1000 });
    await response.body.dump();
    return response.statusCode === 200;
  }
}
