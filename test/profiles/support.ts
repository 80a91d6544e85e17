import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient, type CommandStartedEvent, type Db } from 'mongodb';
import { FerretDbServer } from '../../devstack/ferretdb';
import type { Profile } from '../../profiles/profile-schema';

export interface TestMongo {
  ferret: FerretDbServer;
  client: MongoClient;
  db: Db;
  dataDir: string;
  /** Commands the driver sent since the last reset (find, aggregate, insert, ...). */
  commands: CommandStartedEvent[];
  stop(): Promise<void>;
}

/** A real FerretDB (SQLite) on a free loopback port, once per test file, with command monitoring. */
export async function startTestMongo(name: string): Promise<TestMongo> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `canary-${name}-`));
  const ferret = await FerretDbServer.start({
    dataDir: path.join(dataDir, 'ferretdb'),
    logFile: path.join(dataDir, 'ferretdb.log'),
  });
  const client = await MongoClient.connect(ferret.uri, {
    serverSelectionTimeoutMS: 5000,
    monitorCommands: true,
  });
  const commands: CommandStartedEvent[] = [];
  client.on('commandStarted', (event) => commands.push(event));
  return {
    ferret,
    client,
    db: client.db(`test_${name.replace(/[^a-z0-9]/gi, '_')}`),
    dataDir,
    commands,
    async stop() {
      await client.close().catch(() => undefined);
      await ferret.stop();
      if (!process.env.KEEP_TEST_DATA) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A valid profile input; override any field. */
export function profileInput(
  userId: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    user_id: userId,
    behavioral_patterns: [
      { timestamp: 0, action: 'page_view' },
      { timestamp: 4000, action: 'search', data: { query: 'red shoes' } },
      { timestamp: 9000, action: 'view_product', data: { product_id: 42 } },
      { timestamp: 15000, action: 'add_to_cart', data: { product_id: 42, quantity: 2 } },
    ],
    resource_intensity: { period_ms: 60000, cpu_ms: 120, memory_mb: 48, network_bytes: 250000 },
    geo_location: { country: 'US', region: 'US-CA' },
    device_type: 'mobile',
    ...overrides,
  };
}

export function idsOf(profiles: Partial<Profile>[]): string[] {
  return profiles.map((profile) => profile.user_id as string);
}
