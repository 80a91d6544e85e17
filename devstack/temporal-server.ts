import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { ManagedProcess } from './managed-process';
import { freePort, isListening } from './ports';
import { resolveTool } from './tools';

export interface TemporalDevServerOptions {
  /** SQLite file that keeps workflows across restarts; omitted = in memory. */
  dbFile?: string;
  port?: number;
  /** Web UI port; `false` runs headless. */
  uiPort?: number | false;
  /** `--sqlite-pragma NAME=VALUE`; defaults to DEFAULT_SQLITE_PRAGMAS. */
  sqlitePragmas?: string[];
  /** `--dynamic-config-value KEY=JSON`, e.g. `{ 'limit.historyCount.suggestContinueAsNew': 300 }`. */
  dynamicConfig?: Record<string, unknown>;
  logFile: string;
  readyTimeoutMs?: number;
}

/**
 * Write-ahead logging with normal sync: about 5x the throughput of SQLite's defaults on this
 * machine (bench:workflow); a killed server process loses nothing, only an OS crash could lose
 * the last transactions.
 */
export const DEFAULT_SQLITE_PRAGMAS = ['journal_mode=wal', 'synchronous=normal'];

/**
 * Eager activity dispatch hands an activity scheduled by a workflow task straight back to the
 * worker that completes it, saving a round trip per activity (~1.5x ticks/s in bench:workflow).
 */
export const DEFAULT_DYNAMIC_CONFIG: Record<string, unknown> = {
  'system.enableActivityEagerExecution': true,
};

/** The Temporal CLI's dev server as a child process, restartable on the same ports and SQLite file. */
export class TemporalDevServer {
  private process: ManagedProcess | undefined;

  private constructor(
    private readonly options: TemporalDevServerOptions,
    readonly port: number,
    readonly uiPort: number | undefined,
  ) {}

  static async start(options: TemporalDevServerOptions): Promise<TemporalDevServer> {
    const port = options.port ?? (await freePort());
    const uiPort = options.uiPort === false ? undefined : (options.uiPort ?? (await freePort()));
    const server = new TemporalDevServer(options, port, uiPort);
    await server.launch();
    return server;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get uiUrl(): string | undefined {
    return this.uiPort === undefined ? undefined : `http://127.0.0.1:${this.uiPort}`;
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  async stop(): Promise<void> {
    await this.process?.stop();
    this.process = undefined;
  }

  /** Stops and starts again on the same ports and database file (a server restart). */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  private async launch(): Promise<void> {
    const args = [
      'server',
      'start-dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(this.port),
      '--log-level',
      'warn',
    ];
    args.push('--http-port', String(await freePort()), '--metrics-port', String(await freePort()));
    if (this.options.dbFile) {
      mkdirSync(path.dirname(this.options.dbFile), { recursive: true });
      args.push('--db-filename', this.options.dbFile);
    }
    for (const pragma of this.options.sqlitePragmas ?? DEFAULT_SQLITE_PRAGMAS)
      args.push('--sqlite-pragma', pragma);
    if (this.uiPort === undefined) args.push('--headless');
    else args.push('--ui-port', String(this.uiPort));
    for (const [key, value] of Object.entries({ ...DEFAULT_DYNAMIC_CONFIG, ...this.options.dynamicConfig })) {
      args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
    }
    this.process = await ManagedProcess.start({
      name: 'temporal dev server',
      command: resolveTool('temporal'),
      args,
      logFile: this.options.logFile,
      readyTimeoutMs: this.options.readyTimeoutMs ?? 60_000,
      isReady: () => this.answers(),
    });
  }

  private async answers(): Promise<boolean> {
    if (!(await isListening(this.port))) return false;
    const connection = await Connection.connect({ address: this.address, connectTimeout: 2000 });
    try {
      await connection.workflowService.describeNamespace({ namespace: 'default' });
      return true;
    } finally {
      await connection.close();
    }
  }
}
