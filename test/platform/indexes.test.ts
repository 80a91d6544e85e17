/**
 * The indexes of every collection the system writes, as the processes leave them when they start
 * on a real FerretDB (and Temporal, for the dashboard): the exact set, twice, and the TTL that a
 * MongoDB server would be asked for.
 */
import { MongoClient, type CommandStartedEvent, type Db } from 'mongodb';
import pino from 'pino';
import * as deliveryStore from '../../alerts/delivery-store';
import * as rolloutStore from '../../client/rollout-store';
import { startDashboard } from '../../dashboard/server';
import * as prober from '../../loadgen/prober';
import { startLoadgenService } from '../../loadgen/service/server';
import { ensureIndexes } from '../../platform/mongo-indexes';
import { startServer as startProfilesApi } from '../../profiles/api/server';
import * as profileStore from '../../profiles/store';
import * as sampleStore from '../../signals/sample-store';
import { createComponents, workerIndexes } from '../../workers/components';
import { readWorkerConfig } from '../../workers/main';
import { runCli } from '../support/cli';
import { startTestServers, type TestServers } from '../support/environment';

const RETENTION_DAYS = 30;
const TTL_SECONDS = RETENTION_DAYS * 86_400;
const silent = pino({ level: 'silent' });

let servers: TestServers;
let env: NodeJS.ProcessEnv;
let ferret: boolean;

beforeAll(async () => {
  servers = await startTestServers('indexes');
  env = {
    TEMPORAL_ADDRESS: servers.temporal.address,
    CANARY_MONGO_URI: servers.ferret.uri,
    CANARY_MONGO_DB: servers.db.databaseName,
    CANARY_RETENTION_DAYS: String(RETENTION_DAYS),
    DASHBOARD_HOST: '127.0.0.1',
    DASHBOARD_PORT: '0',
    LOADGEN_PORT: '0',
    LOG_LEVEL: 'silent',
  };
  const info = await servers.db.admin().command({ buildInfo: 1 });
  ferret = 'ferretdbVersion' in info;
});

afterAll(async () => {
  await servers?.stop();
});

/** What each process does on start, in the order a deployment might start them. */
async function startEveryProcess(): Promise<void> {
  const worker = await createComponents(readWorkerConfig(env, silent).components, silent);
  await worker.close();
  const dashboard = await startDashboard(env);
  await dashboard.close();
  const profilesApi = await startProfilesApi([
    '--mongo-uri',
    servers.ferret.uri,
    '--db',
    servers.db.databaseName,
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--log-level',
    'silent',
  ]);
  await profilesApi.close();
  const loadgen = await startLoadgenService(env);
  await loadgen.close();
  const cli = await runCli(['profiles', 'generate', '--count', '5'], { env });
  expect(cli.exitCode).toBe(0);
}

interface Listed {
  name: string;
  key: Record<string, number>;
  unique?: true;
  expireAfterSeconds?: number;
}

async function listEveryCollection(db: Db): Promise<Record<string, Listed[]>> {
  const names = (await db.listCollections().toArray()).map((collection) => collection.name).sort();
  const listing: Record<string, Listed[]> = {};
  for (const name of names) {
    const indexes = await db.collection(name).indexes();
    listing[name] = indexes
      .map((index) => ({
        name: index.name as string,
        key: index.key as Record<string, number>,
        ...(index.unique ? { unique: true as const } : {}),
        ...(index.expireAfterSeconds === undefined ? {} : { expireAfterSeconds: index.expireAfterSeconds }),
      }))
      .sort((a, b) => (a.name < b.name ? -1 : 1));
  }
  return listing;
}

/** The exact indexes; FerretDB 1.24 cannot hold the TTL option, MongoDB must. */
function expectedIndexes(): Record<string, Listed[]> {
  const id: Listed = { name: '_id_', key: { _id: 1 } };
  const ttl: Listed = {
    name: 'storedAt_1',
    key: { storedAt: 1 },
    ...(ferret ? {} : { expireAfterSeconds: TTL_SECONDS }),
  };
  const byTick: Listed = { name: 'rolloutId_1_tick_1', key: { rolloutId: 1, tick: 1 } };
  const criteria = [
    'actions',
    'actions_per_minute',
    'activity_level',
    'device_type',
    'geo_location.country',
    'geo_location.region',
    'pattern_count',
    'resource_intensity.cpu_ms',
    'resource_intensity.memory_mb',
    'resource_intensity.network_bytes',
    'resource_intensity.period_ms',
    'schema_version',
    'session_duration_ms',
  ].map((path): Listed => ({ name: `criteria_${path}`, key: { [path]: 1 } }));
  return {
    alert_deliveries: [
      id,
      { name: 'rolloutId_1_sinkId_1_at_1', key: { rolloutId: 1, sinkId: 1, at: 1 } },
      ttl,
    ],
    probe_checkpoints: [id, ttl],
    probe_results: [id, { ...byTick, unique: true }, ttl],
    probe_shards: [id, byTick, ttl],
    profiles: [
      id,
      ...criteria,
      { name: 'sample_key', key: { sample_key: 1 } },
      { name: 'sample_slot_4096', key: { sample_slot_4096: 1 } },
      { name: 'sample_slot_64', key: { sample_slot_64: 1 } },
      { name: 'strata', key: { device_type: 1, 'geo_location.country': 1, activity_level: 1 } },
    ],
    profiles_meta: [id],
    rollout_investigations: [id, byTick],
    rollout_samples: [id, { ...byTick, unique: true }, ttl],
    rollout_ticks: [id, { ...byTick, unique: true }],
  };
}

test('every process creates the declared indexes at start, and starting again changes nothing', async () => {
  await startEveryProcess();
  const first = await listEveryCollection(servers.db);
  expect(first).toEqual(expectedIndexes());

  await startEveryProcess();
  expect(await listEveryCollection(servers.db)).toEqual(first);
  const again = await ensureIndexes(servers.db, workerIndexes(RETENTION_DAYS));
  expect({ created: again.created, retimed: again.retimed }).toEqual({ created: [], retimed: [] });
});

test('every collection a store names is one whose indexes are declared', () => {
  const named = [deliveryStore, rolloutStore, prober, profileStore, sampleStore].flatMap((module) =>
    Object.entries(module)
      .filter(([name]) => name.endsWith('_COLLECTION'))
      .map(([, collection]) => collection as string),
  );
  expect(named.sort()).toEqual(Object.keys(expectedIndexes()).sort());
  expect(
    workerIndexes(RETENTION_DAYS)
      .map((declaration) => declaration.collection)
      .sort(),
  ).toEqual(named.sort());
});

test('TTL indexes are requested with the retention; where the server refuses, they are created without it', async () => {
  const client = await MongoClient.connect(servers.ferret.uri, { monitorCommands: true });
  const commands: CommandStartedEvent[] = [];
  client.on('commandStarted', (event) => commands.push(event));
  try {
    const db = client.db(`${servers.db.databaseName}_ttl`);
    const report = await ensureIndexes(db, workerIndexes(7));
    const requested = commands
      .filter((event) => event.commandName === 'createIndexes')
      .flatMap((event) =>
        (event.command.indexes as { name: string; expireAfterSeconds?: number }[]).map((index) => ({
          collection: event.command.createIndexes as string,
          name: index.name,
          expireAfterSeconds: index.expireAfterSeconds,
        })),
      )
      .filter((index) => index.name === 'storedAt_1');
    const expiring = [
      'alert_deliveries',
      'probe_checkpoints',
      'probe_results',
      'probe_shards',
      'rollout_samples',
    ];
    // Asked with the TTL first, for each collection of per-tick data.
    expect(
      requested
        .filter((index) => index.expireAfterSeconds !== undefined)
        .map((index) => index.collection)
        .sort(),
    ).toEqual(expiring);
    expect(new Set(requested.flatMap((index) => index.expireAfterSeconds ?? []))).toEqual(
      new Set([7 * 86_400]),
    );
    expect(report.notExpiring.sort()).toEqual(
      ferret ? expiring.map((collection) => `${collection}.storedAt_1`) : [],
    );

    // Another retention later: MongoDB changes the TTL in place; FerretDB has none to change.
    const retimed = await ensureIndexes(db, workerIndexes(14));
    expect(retimed.created).toEqual([]);
    expect(retimed.retimed.length).toBe(ferret ? 0 : expiring.length);
  } finally {
    await client.close();
  }
});

test('an index that exists under a declared name with another shape stops the start, naming it', async () => {
  const db = servers.mongo.db(`${servers.db.databaseName}_clash`);
  await db.collection('probe_results').createIndex({ tick: 1 }, { name: 'rolloutId_1_tick_1' });
  await expect(ensureIndexes(db, prober.probeIndexes(RETENTION_DAYS))).rejects.toThrow(
    /^index probe_results\.rolloutId_1_tick_1 exists as \{"key":\{"tick":1\}\} but is declared as \{"key":\{"rolloutId":1,"tick":1\},"unique":true\}/,
  );
});
