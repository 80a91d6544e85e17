import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { ManagedProcess } from './managed-process';
import { PostgresServer, postgresBinDir } from './postgresql';
import { freePort, isListening } from './ports';
import { resolveTool } from './tools';

export type FerretDbBackend = 'sqlite' | 'postgresql';

export interface FerretDbOptions {
  /** Directory of FerretDB's state and its backend's files (SQLite files, or a PostgreSQL cluster). */
  dataDir: string;
  /** Default: CANARY_FERRETDB_BACKEND, else sqlite. */
  backend?: FerretDbBackend;
  port?: number;
  logFile: string;
  readyTimeoutMs?: number;
}

const POSTGRES_DATABASE = 'ferretdb';

export function ferretDbBackendFromEnv(): FerretDbBackend {
  const value = process.env.CANARY_FERRETDB_BACKEND ?? 'sqlite';
  if (value !== 'sqlite' && value !== 'postgresql')
    throw new Error(`CANARY_FERRETDB_BACKEND must be sqlite or postgresql, not ${JSON.stringify(value)}`);
  return value;
}

/**
 * The devstack's backend: CANARY_FERRETDB_BACKEND when set; else PostgreSQL, where sampling needs
 * no scan (docs/profiles.md), when Debian's server is installed, unless `dataDir` already holds
 * a SQLite store, which keeps its data by staying on SQLite.
 */
export function embeddedBackend(dataDir: string): FerretDbBackend {
  if (process.env.CANARY_FERRETDB_BACKEND) return ferretDbBackendFromEnv();
  const sqliteStore = existsSync(dataDir) && readdirSync(dataDir).some((name) => name.endsWith('.sqlite'));
  if (sqliteStore && !existsSync(path.join(dataDir, 'postgresql'))) return 'sqlite';
  try {
    postgresBinDir();
    return 'postgresql';
  } catch {
    return 'sqlite';
  }
}

/**
 * FerretDB: a MongoDB wire-protocol server for local runs and CI, on SQLite files or on a
 * PostgreSQL cluster of its own (started and stopped with it, Debian's binaries).
 */
export class FerretDbServer {
  private process: ManagedProcess | undefined;

  private constructor(
    private readonly options: FerretDbOptions,
    readonly port: number,
    readonly backend: FerretDbBackend,
    /** The PostgreSQL cluster behind the postgresql backend. */
    readonly postgres: PostgresServer | undefined,
  ) {}

  static async start(options: FerretDbOptions): Promise<FerretDbServer> {
    const backend = options.backend ?? ferretDbBackendFromEnv();
    let postgres: PostgresServer | undefined;
    if (backend === 'postgresql') {
      postgres = await PostgresServer.start({
        dataDir: path.join(options.dataDir, 'postgresql'),
        logFile: options.logFile.replace(/(\.log)?$/, '-postgresql.log'),
      });
      await postgres.createDatabase(POSTGRES_DATABASE);
    }
    const server = new FerretDbServer(options, options.port ?? (await freePort()), backend, postgres);
    try {
      await server.launch();
    } catch (error) {
      await postgres?.stop();
      throw error;
    }
    return server;
  }

  /**
   * On PostgreSQL, GIN indexes for the top-level equalities FerretDB pushes down (see
   * PostgresServer.indexPushedDownEqualities); nothing to do on SQLite, which pushes none.
   */
  async indexPushedDownEqualities(
    database: string,
    collection: string,
    fields: readonly string[],
  ): Promise<void> {
    await this.postgres?.indexPushedDownEqualities(POSTGRES_DATABASE, database, collection, fields);
  }

  get uri(): string {
    return `mongodb://127.0.0.1:${this.port}/`;
  }

  async stop(): Promise<void> {
    await this.process?.stop();
    this.process = undefined;
    await this.postgres?.stop();
  }

  /** Restarts FerretDB only; its PostgreSQL keeps running. */
  async restart(): Promise<void> {
    await this.process?.stop();
    this.process = undefined;
    await this.launch();
  }

  private async launch(): Promise<void> {
    mkdirSync(this.options.dataDir, { recursive: true });
    this.process = await ManagedProcess.start({
      name: 'ferretdb',
      command: resolveTool('ferretdb'),
      args: [
        ...(this.postgres
          ? ['--handler=postgresql', `--postgresql-url=${this.postgres.url(POSTGRES_DATABASE)}`]
          : ['--handler=sqlite', `--sqlite-url=file:${this.options.dataDir}/`]),
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
