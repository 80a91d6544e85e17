import { mkdirSync } from 'node:fs';
import { MongoClient } from 'mongodb';
import { ManagedProcess } from './managed-process';
import { freePort, isListening } from './ports';
import { resolveTool } from './tools';

export interface FerretDbOptions {
  /** Directory of FerretDB's SQLite files (one per database) and its state. */
  dataDir: string;
  port?: number;
  logFile: string;
  readyTimeoutMs?: number;
}

/** FerretDB with its SQLite backend: a MongoDB wire-protocol server for local runs and CI. */
export class FerretDbServer {
  private process: ManagedProcess | undefined;

  private constructor(
    private readonly options: FerretDbOptions,
    readonly port: number,
  ) {}

  static async start(options: FerretDbOptions): Promise<FerretDbServer> {
    const server = new FerretDbServer(options, options.port ?? (await freePort()));
    await server.launch();
    return server;
  }

  get uri(): string {
    return `mongodb://127.0.0.1:${this.port}/`;
  }

  async stop(): Promise<void> {
    await this.process?.stop();
    this.process = undefined;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  private async launch(): Promise<void> {
    mkdirSync(this.options.dataDir, { recursive: true });
    this.process = await ManagedProcess.start({
      name: 'ferretdb',
      command: resolveTool('ferretdb'),
      args: [
        '--handler=sqlite',
        `--sqlite-url=file:${this.options.dataDir}/`,
        `--state-dir=${this.options.dataDir}`,
        `--listen-addr=127.0.0.1:${this.port}`,
        `--debug-addr=127.0.0.1:${await freePort()}`,
        '--telemetry=disable',
        '--log-level=warn',
      ],
      logFile: this.options.logFile,
      readyTimeoutMs: this.options.readyTimeoutMs ?? 30_000,
      isReady: () => this.answers(),
    });
  }

  private async answers(): Promise<boolean> {
    if (!(await isListening(this.port))) return false;
    const client = new MongoClient(this.uri, { serverSelectionTimeoutMS: 1000, connectTimeoutMS: 1000 });
    try {
      await client.db('admin').command({ ping: 1 });
      return true;
    } finally {
      await client.close();
    }
  }
}
