import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadExeca } from '../platform/execa';
import { ManagedProcess } from './managed-process';
import { freePort, isListening } from './ports';

export interface PostgresOptions {
  /** The cluster directory (created by initdb on first start) and its socket directory. */
  dataDir: string;
  port?: number;
  logFile: string;
  readyTimeoutMs?: number;
}

/** PostgreSQL refuses to run as root: there the devstack runs it as Debian's `postgres` user. */
const SERVICE_USER = 'postgres';

/** Debian's server binaries: /usr/lib/postgresql/<major>/bin, the newest major; POSTGRES_BIN_DIR wins. */
export function postgresBinDir(): string {
  const fromEnv = process.env.POSTGRES_BIN_DIR;
  if (fromEnv) return fromEnv;
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((name) => /^\d+$/.test(name) && existsSync(path.join(root, name, 'bin', 'postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (majors.length === 0)
    throw new Error(
      'postgresql is not installed: run `bash scripts/install-debian-packages.sh` (or set POSTGRES_BIN_DIR)',
    );
  return path.join(root, majors[0] as string, 'bin');
}

/** A throwaway PostgreSQL cluster on loopback with trust authentication, for FerretDB's postgresql handler. */
export class PostgresServer {
  private process: ManagedProcess | undefined;

  private constructor(
    private readonly options: PostgresOptions,
    readonly port: number,
    private readonly bin: string,
  ) {}

  static async start(options: PostgresOptions): Promise<PostgresServer> {
    const server = new PostgresServer(options, options.port ?? (await freePort()), postgresBinDir());
    await server.initialise();
    await server.launch();
    return server;
  }

  /** A URL for FerretDB's --postgresql-url and for psql. */
  url(database: string): string {
    return `postgres://${SERVICE_USER}@127.0.0.1:${this.port}/${database}`;
  }

  async stop(): Promise<void> {
    await this.process?.stop();
    this.process = undefined;
  }

  async createDatabase(name: string): Promise<void> {
    const exists = await this.sql('postgres', `SELECT 1 FROM pg_database WHERE datname = '${name}'`);
    if (exists.trim() !== '1') await this.sql('postgres', `CREATE DATABASE "${name}"`);
  }

  /**
   * FerretDB 1.24 pushes a top-level equality down as `_jsonb->'field' @> value`, which its own
   * btree indexes cannot serve: a GIN index on the same expression can. Creates one per field on
   * the table behind `collection` of the FerretDB database `mongoDatabase` (a schema in
   * `database`); idempotent. The collection must exist.
   */
  async indexPushedDownEqualities(
    database: string,
    mongoDatabase: string,
    collection: string,
    fields: readonly string[],
  ): Promise<void> {
    const safe = /^[A-Za-z0-9_.-]+$/;
    for (const name of [mongoDatabase, collection, ...fields])
      if (!safe.test(name)) throw new Error(`refusing to index an unusual name: ${name}`);
    const table = (
      await this.sql(
        database,
        `SELECT _jsonb->>'table' FROM "${mongoDatabase}"._ferretdb_database_metadata WHERE _jsonb->>'_id' = '${collection}'`,
      )
    ).trim();
    if (!table) throw new Error(`FerretDB has no collection ${mongoDatabase}.${collection}`);
    const statements = fields.map(
      (field) =>
        `CREATE INDEX IF NOT EXISTS "${table}_eq_${field.replace(/\./g, '_')}" ON "${mongoDatabase}"."${table}" USING gin ((_jsonb->'${field}'))`,
    );
    await this.sql(database, [...statements, `ANALYZE "${mongoDatabase}"."${table}"`].join(';\n'));
  }

  /** Runs SQL through psql and returns its unaligned output. */
  async sql(database: string, statement: string): Promise<string> {
    const { execa } = await loadExeca();
    const result = await execa(
      path.join(this.bin, 'psql'),
      ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', this.url(database), '-c', statement],
      { env: { PGCONNECT_TIMEOUT: '5' } },
    );
    return result.stdout;
  }

  private asServiceUser(command: string, args: string[]): { command: string; args: string[] } {
    if (process.getuid?.() !== 0) return { command, args };
    return {
      command: 'setpriv',
      args: [`--reuid=${SERVICE_USER}`, `--regid=${SERVICE_USER}`, '--init-groups', command, ...args],
    };
  }

  private async initialise(): Promise<void> {
    mkdirSync(this.options.dataDir, { recursive: true, mode: 0o700 });
    if (process.getuid?.() === 0) {
      letServiceUserThrough(path.dirname(this.options.dataDir));
      const { execa } = await loadExeca();
      const { stdout } = await execa('id', ['-u', SERVICE_USER]);
      const { stdout: group } = await execa('id', ['-g', SERVICE_USER]);
      chownSync(this.options.dataDir, Number(stdout), Number(group));
    }
    if (existsSync(path.join(this.options.dataDir, 'PG_VERSION'))) return;
    const { execa } = await loadExeca();
    const init = this.asServiceUser(path.join(this.bin, 'initdb'), [
      '-D',
      this.options.dataDir,
      '-A',
      'trust',
      '-U',
      SERVICE_USER,
      '-E',
      'UTF8',
      '--no-sync',
    ]);
    await execa(init.command, init.args, { cwd: this.options.dataDir });
  }

  private async launch(): Promise<void> {
    const server = this.asServiceUser(path.join(this.bin, 'postgres'), [
      '-D',
      this.options.dataDir,
      '-k',
      this.options.dataDir,
      '-p',
      String(this.port),
      '-c',
      'listen_addresses=127.0.0.1',
      // A development cluster: losing the last writes on a machine crash is acceptable.
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
    ]);
    this.process = await ManagedProcess.start({
      name: 'postgresql',
      command: server.command,
      args: server.args,
      cwd: this.options.dataDir,
      logFile: this.options.logFile,
      readyTimeoutMs: this.options.readyTimeoutMs ?? 30_000,
      isReady: async () => (await isListening(this.port)) && (await this.accepts()),
    });
  }

  private async accepts(): Promise<boolean> {
    try {
      await this.sql('postgres', 'SELECT 1');
      return true;
    } catch {
      return false;
    }
  }
}

/** Root's temporary directories are 0700: the service user needs to pass through them (not read). */
function letServiceUserThrough(dir: string): void {
  for (let current = dir; current !== path.dirname(current); current = path.dirname(current)) {
    const mode = statSync(current).mode;
    if ((mode & 0o001) !== 0) return;
    chmodSync(current, (mode & 0o7777) | 0o011);
  }
}
