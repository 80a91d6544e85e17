import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../support/cli';
import { startTestMongo, type TestMongo } from './support';

let mongo: TestMongo;
let env: Record<string, string>;
const dir = mkdtempSync(path.join(os.tmpdir(), 'canary-profiles-cli-'));

beforeAll(async () => {
  mongo = await startTestMongo('profiles-cli');
  env = { CANARY_MONGO_URI: mongo.ferret.uri, CANARY_MONGO_DB: mongo.db.databaseName };
});

afterAll(async () => {
  await mongo?.stop();
});

const lines = (text: string) =>
  text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe('canary profiles', () => {
  test('generate is seeded: the same seed prints the same profiles, and loads idempotently', async () => {
    const a = await runCli(['profiles', 'generate', '--count', '5', '--seed', '9', '--out', '-']);
    const b = await runCli(['profiles', 'generate', '--count', '5', '--seed', '9', '--out', '-']);
    expect(a.exitCode).toBe(0);
    expect(lines(a.stdout)).toHaveLength(5);
    expect(a.stdout).toBe(b.stdout);

    const loaded = await runCli(['profiles', 'generate', '--count', '300', '--seed', '9'], { env });
    expect(loaded.exitCode).toBe(0);
    expect(lines(loaded.stdout)[0]).toMatchObject({ generated: 300, created: 300, updated: 0 });
    const again = await runCli(['profiles', 'generate', '--count', '300', '--seed', '9'], { env });
    expect(lines(again.stdout)[0]).toMatchObject({ created: 0, updated: 300 });
    expect(await mongo.db.collection('profiles').countDocuments()).toBe(300);
  });

  test('query by flat and JSON criteria, sample and stats', async () => {
    const flat = await runCli(
      [
        'profiles',
        'query',
        '--where',
        'device_type=mobile',
        'geo_location=US',
        '--limit',
        '500',
        '--fields',
        'device_type,geo_location',
      ],
      { env },
    );
    expect(flat.exitCode).toBe(0);
    const found = lines(flat.stdout);
    expect(found.length).toBe(
      await mongo.db
        .collection('profiles')
        .countDocuments({ device_type: 'mobile', 'geo_location.country': 'US' }),
    );
    for (const profile of found)
      expect(profile).toMatchObject({ device_type: 'mobile', geo_location: { country: 'US' } });

    const json = await runCli(
      [
        'profiles',
        'query',
        '--criteria',
        '{"device_type":"mobile","geo_location":"US"}',
        '--limit',
        '500',
        '--fields',
        'device_type,geo_location',
      ],
      { env },
    );
    expect(json.stdout).toBe(flat.stdout);

    const sample = await runCli(
      ['profiles', 'query', '--sample', '12', '--seed', '4', '--fields', 'user_id'],
      { env },
    );
    const resample = await runCli(
      ['profiles', 'query', '--sample', '12', '--seed', '4', '--fields', 'user_id'],
      { env },
    );
    expect(lines(sample.stdout)).toHaveLength(12);
    expect(sample.stdout).toBe(resample.stdout);
    expect(JSON.parse(sample.stderr)).toMatchObject({ population: 300, sampled: 12, seed: 4 });

    const stats = lines((await runCli(['profiles', 'query', '--stats'], { env })).stdout)[0];
    expect(stats?.total).toBe(300);
  });

  test('import reads an access log and reports what it parsed and skipped', async () => {
    const log = path.join(dir, 'access.log');
    writeFileSync(
      log,
      [
        '198.51.100.1 - - [10/Oct/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 900 "-" "Mozilla/5.0 (X11; Linux x86_64)"',
        '198.51.100.1 - - [10/Oct/2024:10:00:04 +0000] "GET /products/3 HTTP/1.1" 200 900 "-" "Mozilla/5.0 (X11; Linux x86_64)"',
        '198.51.100.1 - - [10/Oct/2024:10:00:05 +0000] "GET /logo.png HTTP/1.1" 200 900 "-" "Mozilla/5.0 (X11; Linux x86_64)"',
        'garbage line',
      ].join('\n'),
    );
    const result = await runCli(['profiles', 'import', log, '--salt', 'pepper-123', '--country', 'FR'], {
      env,
    });
    expect(result.exitCode).toBe(0);
    expect(lines(result.stdout)[0]).toMatchObject({
      lines: 4,
      parsed: 3,
      mapped: 2,
      skipped: { malformed: 1, ignored_by_rule: 1 },
      profiles: 1,
      written: 1,
    });
    const imported = await mongo.db.collection('profiles').findOne({ _id: { $regex: '^imp-' } } as never);
    expect(imported).toMatchObject({
      device_type: 'desktop',
      geo_location: { country: 'FR' },
      actions: ['page_view', 'view_product'],
    });
  });

  test('import takes the salt from CANARY_IMPORT_SALT, so it stays out of ps', async () => {
    const log = path.join(dir, 'env-salt.log');
    writeFileSync(
      log,
      '198.51.100.2 - - [10/Oct/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 900 "-" "Mozilla/5.0 (X11; Linux x86_64)"\n',
    );
    const result = await runCli(['profiles', 'import', log, '--dry-run'], {
      env: { ...env, CANARY_IMPORT_SALT: 'pepper-from-env' },
    });
    expect(result.exitCode).toBe(0);
    expect(lines(result.stdout)[0]).toMatchObject({ lines: 1, mapped: 1, profiles: 1 });
  });

  test('generate --out into a missing directory exits 2 naming --out, without a stack trace', async () => {
    const result = await runCli(['profiles', 'generate', '--count', '3', '--out', '/no/such/dir/x.jsonl']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/^error: --out: cannot write \/no\/such\/dir\/x\.jsonl: ENOENT/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  test.each([
    [['profiles', 'generate', '--count', 'lots', '--out', '-'], 'error: --count: must be a finite number'],
    [['profiles', 'generate', '--count', '0', '--out', '-'], 'error: --count: must be >= 1'],
    [['profiles', 'import', 'x.log'], 'error: --salt: is required'],
    [
      ['profiles', 'import', 'x.log', '--salt', 's', '--session-gap', 'forever'],
      'error: --session-gap: must be a duration',
    ],
    [['profiles', 'query', '--criteria', '{"$where":"1"}'], 'error: --criteria.$where: is not allowed'],
    [['profiles', 'query', '--where', 'colour=red'], 'error: colour: is not a field criteria can select on'],
    [['profiles', 'query', '--fields', 'password'], 'error: --fields: password is not a profile field'],
    [['profiles', 'ontology', 'missing.yaml'], 'error: ontology: cannot read missing.yaml'],
  ])('canary %j exits 2 with %s', async (args, message) => {
    const result = await runCli(args, { env });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(message);
  });

  test('ontology checks a file and lists its actions', async () => {
    const result = await runCli(['profiles', 'ontology', 'profiles/ontology/default.yaml']);
    expect(result.exitCode).toBe(0);
    expect(lines(result.stdout)[0]).toMatchObject({
      name: 'shop',
      actions: { view_product: 'GET /products/{product_id}' },
    });
  });
});
