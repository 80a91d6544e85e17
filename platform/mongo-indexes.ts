/**
 * The indexes of our MongoDB collections, declared by the component that owns each collection
 * (next to its store) and created by every process that uses the database when it starts, with
 * the declarations its composition root assembles. Idempotent: an index that exists as declared
 * is left alone, so processes may start in any order and any number of times.
 *
 * Per-tick data expires through a TTL index on `storedAt`, a Date that every write of such a
 * document sets. FerretDB 1.24 (our local and CI backend) refuses the TTL option
 * (NotImplemented); there the same index is created without it, with a warning: documents are
 * kept until deleted by hand.
 */
import { MongoClient, MongoServerError, type Db } from 'mongodb';
import type { Logger } from './logger';

export interface IndexDeclaration {
  /** Explicit, so a declaration and the index on the server compare by name. */
  name: string;
  key: Record<string, 1 | -1>;
  unique?: boolean;
  /** TTL: the document is deleted this long after the Date in the key's one field. */
  expireAfterSeconds?: number;
}

export interface CollectionIndexes {
  collection: string;
  indexes: IndexDeclaration[];
}

/** What a run did, per collection-qualified index name (`alert_deliveries.storedAt_1`). */
export interface IndexReport {
  created: string[];
  /** The TTL changed (a new retention), applied with collMod. */
  retimed: string[];
  /** Declared with a TTL that this server does not apply (FerretDB). */
  notExpiring: string[];
}

/** The Date a TTL index expires a document by: when it was last written. */
export interface StoredAt {
  storedAt: Date;
}

/** Spread into every write of a document in a collection with expiresAfterDays(). */
export function storedNow(): StoredAt {
  return { storedAt: new Date() };
}

/** The TTL index of a collection whose documents are kept `retentionDays` after their last write. */
export function expiresAfterDays(retentionDays: number): IndexDeclaration {
  const field: keyof StoredAt = 'storedAt';
  return {
    name: `${field}_1`,
    key: { [field]: 1 },
    expireAfterSeconds: Math.round(retentionDays * 86_400),
  };
}

const NAMESPACE_EXISTS = 48;
const NAMESPACE_NOT_FOUND = 26;
const NOT_IMPLEMENTED = 238;

interface ExistingIndex {
  name: string;
  key: Record<string, unknown>;
  unique?: boolean;
  expireAfterSeconds?: number;
}

export async function ensureIndexes(
  db: Db,
  declarations: readonly CollectionIndexes[],
  logger?: Pick<Logger, 'info' | 'warn'>,
): Promise<IndexReport> {
  const report: IndexReport = { created: [], retimed: [], notExpiring: [] };
  for (const { collection, indexes } of mergeByCollection(declarations)) {
    const existing = await listIndexes(db, collection);
    // A collection declared with no index of its own still exists once its owner has started.
    if (existing.length === 0 && indexes.length === 0) await createCollection(db, collection);
    for (const declared of indexes) {
      const qualified = `${collection}.${declared.name}`;
      const current = existing.find((index) => index.name === declared.name);
      if (!current) {
        const expiring = await createIndex(db, collection, declared);
        report.created.push(qualified);
        if (!expiring) report.notExpiring.push(qualified);
        continue;
      }
      if (!sameShape(current, declared))
        throw new Error(
          `index ${qualified} exists as ${describe(current)} but is declared as ${describe(declared)}: ` +
            `drop it (db.${collection}.dropIndex('${declared.name}')) and start again to rebuild it`,
        );
      if (current.expireAfterSeconds === declared.expireAfterSeconds) continue;
      if (await retime(db, collection, declared)) report.retimed.push(qualified);
      else report.notExpiring.push(qualified);
    }
  }
  if (report.created.length > 0 || report.retimed.length > 0)
    logger?.info({ created: report.created, retimed: report.retimed }, 'database indexes updated');
  if (report.notExpiring.length > 0)
    logger?.warn(
      { indexes: report.notExpiring },
      'this database server does not expire documents (TTL indexes are not implemented, e.g. FerretDB): ' +
        'per-tick data is kept until deleted by hand',
    );
  return report;
}

/**
 * What a process does with the database at start: connect, then create the indexes it declares.
 * A failure closes the client again, so a process that cannot start leaves no connection open.
 */
export async function openDatabase(
  settings: { uri: string; database: string },
  declarations: readonly CollectionIndexes[],
  logger?: Pick<Logger, 'info' | 'warn'>,
): Promise<{ client: MongoClient; db: Db }> {
  const client = await MongoClient.connect(settings.uri, { serverSelectionTimeoutMS: 10_000 });
  const db = client.db(settings.database);
  try {
    await ensureIndexes(db, declarations, logger);
  } catch (error) {
    await client.close();
    throw error;
  }
  return { client, db };
}

/** Two processes may declare the same collection (the dashboard reads what the worker writes). */
function mergeByCollection(declarations: readonly CollectionIndexes[]): CollectionIndexes[] {
  const merged = new Map<string, Map<string, IndexDeclaration>>();
  for (const { collection, indexes } of declarations) {
    const byName = merged.get(collection) ?? new Map<string, IndexDeclaration>();
    merged.set(collection, byName);
    for (const index of indexes) {
      const other = byName.get(index.name);
      if (other && describe(other) !== describe(index))
        throw new Error(`index ${collection}.${index.name} is declared twice, differently`);
      byName.set(index.name, index);
    }
  }
  return [...merged].map(([collection, byName]) => ({ collection, indexes: [...byName.values()] }));
}

async function listIndexes(db: Db, collection: string): Promise<ExistingIndex[]> {
  try {
    return (await db.collection(collection).indexes()) as ExistingIndex[];
  } catch (error) {
    if (error instanceof MongoServerError && error.code === NAMESPACE_NOT_FOUND) return [];
    throw error;
  }
}

async function createCollection(db: Db, collection: string): Promise<void> {
  try {
    await db.createCollection(collection);
  } catch (error) {
    if (!(error instanceof MongoServerError && error.code === NAMESPACE_EXISTS)) throw error;
  }
}

/** One createIndex per index: FerretDB 1.24 panics on some multi-index createIndexes commands. */
async function createIndex(db: Db, collection: string, declared: IndexDeclaration): Promise<boolean> {
  const options = {
    name: declared.name,
    ...(declared.unique ? { unique: true } : {}),
  };
  if (declared.expireAfterSeconds === undefined) {
    await db.collection(collection).createIndex(declared.key, options);
    return true;
  }
  try {
    await db
      .collection(collection)
      .createIndex(declared.key, { ...options, expireAfterSeconds: declared.expireAfterSeconds });
    return true;
  } catch (error) {
    if (!(error instanceof MongoServerError && error.code === NOT_IMPLEMENTED)) throw error;
    await db.collection(collection).createIndex(declared.key, options);
    return false;
  }
}

/** A new retention on an existing TTL index; false where the server has no TTL (FerretDB). */
async function retime(db: Db, collection: string, declared: IndexDeclaration): Promise<boolean> {
  try {
    await db.command({
      collMod: collection,
      index: { name: declared.name, expireAfterSeconds: declared.expireAfterSeconds },
    });
    return true;
  } catch (error) {
    if (error instanceof MongoServerError && error.code === NOT_IMPLEMENTED) return false;
    throw error;
  }
}

/** Same key and uniqueness; a TTL may differ only where one is declared (collMod sets it). */
function sameShape(existing: ExistingIndex, declared: IndexDeclaration): boolean {
  return (
    JSON.stringify(existing.key) === JSON.stringify(declared.key) &&
    Boolean(existing.unique) === Boolean(declared.unique) &&
    (declared.expireAfterSeconds !== undefined || existing.expireAfterSeconds === undefined)
  );
}

function describe(index: ExistingIndex | IndexDeclaration): string {
  return JSON.stringify({
    key: index.key,
    ...(index.unique ? { unique: true } : {}),
    ...(index.expireAfterSeconds === undefined ? {} : { expireAfterSeconds: index.expireAfterSeconds }),
  });
}
