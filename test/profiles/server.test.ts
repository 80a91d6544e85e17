import path from 'node:path';
import { loadExeca } from '../../platform/execa';
import { ManagedProcess } from '../../devstack/managed-process';
import { freePort, isListening } from '../../devstack/ports';
import { projectRoot } from '../../devstack/tools';
import { StoreProfileSource } from '../../profiles/profile-source';
import { ProfileStore } from '../../profiles/store';
import { generateProfiles } from '../../profiles/generator';
import { ValidationError } from '../../core/validation';
import { profileInput, startTestMongo, type TestMongo } from './support';

const TOKEN = 'server-test-token-0123456789';
let mongo: TestMongo;
let server: ManagedProcess;
let base: string;

beforeAll(async () => {
  mongo = await startTestMongo('profiles-server');
  const port = await freePort();
  server = await ManagedProcess.start({
    name: 'profiles-api',
    command: process.execPath,
    args: [
      '--import',
      'tsx',
      path.join(projectRoot, 'profiles/api/server.ts'),
      '--port',
      String(port),
      '--db',
      mongo.db.databaseName,
    ],
    cwd: projectRoot,
    env: { CANARY_MONGO_URI: mongo.ferret.uri, PROFILES_API_TOKEN: TOKEN, LOG_LEVEL: 'warn' },
    logFile: path.join(mongo.dataDir, 'profiles-api.log'),
    isReady: () => isListening(port),
  });
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await server?.stop();
  await mongo?.stop();
});

describe('the profiles API server process', () => {
  test('serves reads openly and writes with the token from PROFILES_API_TOKEN', async () => {
    expect(await (await fetch(`${base}/readyz`)).json()).toEqual({
      status: 'ready',
      checks: { mongodb: 'ok' },
    });
    const body = JSON.stringify(profileInput('srv-1'));
    const denied = await fetch(`${base}/profiles`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    });
    expect(denied.status).toBe(401);
    const created = await fetch(`${base}/profiles`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    });
    expect(created.status).toBe(201);
    expect(
      ((await (await fetch(`${base}/profiles/srv-1`)).json()) as { device_type: string }).device_type,
    ).toBe('mobile');
    // The token never reaches the log.
    expect(server.logTail(200)).not.toContain(TOKEN);
  });

  test('bad flags exit 2 naming the flag', async () => {
    const result = await (
      await loadExeca()
    ).execa(process.execPath, ['--import', 'tsx', 'profiles/api/server.ts', '--port', 'http'], {
      cwd: projectRoot,
      reject: false,
      env: { PROFILES_API_TOKEN: 'short' },
    });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('error: --port: must be an integer between 0 and 65535');
    expect(result.stderr).toContain('error: PROFILES_API_TOKEN: must be at least 16 characters');
  });
});

describe('the rollout ProfileSource', () => {
  test('selects a reproducible stratified sample and reports its mix', async () => {
    const store = new ProfileStore(mongo.db);
    await store.load(generateProfiles({ seed: 5, count: 400 }));
    const source = new StoreProfileSource(store);
    const selection = await source.select({
      criteria: { device_type: { in: ['mobile', 'desktop'] } },
      sampleSize: 20,
      seed: 3,
    });
    expect(selection.profileIds).toHaveLength(20);
    expect(
      await source.select({
        criteria: { device_type: { in: ['mobile', 'desktop'] } },
        sampleSize: 20,
        seed: 3,
      }),
    ).toEqual(selection);
    const devices = Object.keys(selection.mix).filter((key) => key.startsWith('device:'));
    expect(devices.sort()).toEqual(['device:desktop', 'device:mobile']);
  });

  test('criteria that match nothing or break the whitelist fail fast with the field named', async () => {
    const source = new StoreProfileSource(new ProfileStore(mongo.db));
    await expect(source.select({ criteria: { geo_location: 'AQ' }, sampleSize: 5, seed: 1 })).rejects.toThrow(
      new ValidationError([{ field: 'profiles.criteria', rule: 'match no profiles in the store' }]),
    );
    await expect(source.select({ criteria: { $where: '1' }, sampleSize: 5, seed: 1 })).rejects.toThrow(
      /^profiles\.criteria\.\$where: is not allowed/,
    );
  });
});
