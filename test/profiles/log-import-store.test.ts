import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../support/cli';
import { startTestMongo, type TestMongo } from './support';

const FIXTURE = path.join(__dirname, '../fixtures/access-logs/shop-combined.access-log');

/** Personal data and secrets the fixture's queries and paths carry, as they appear decoded. */
const SENSITIVE = [
  'jane.doe@example.com',
  'bob+shop@mail.example.org',
  '20 7946 0958',
  '867-5309',
  '202-555-0143',
  '4111 1111 1111 1111',
  '4111111111111111',
  '5500-0055-5555-5559',
  '378282246310005',
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9',
  'd41d8cd98f00b204e9800998ecf8427e',
  'sk_live_51HxQ2eKx9TqYbP0aZ7cR3mN',
  '10.1.2.3',
  'fe80::1ff:fe23:4567:890a',
];

let mongo: TestMongo;
let env: Record<string, string>;
const dir = mkdtempSync(path.join(os.tmpdir(), 'canary-log-import-'));

beforeAll(async () => {
  mongo = await startTestMongo('log-import-store');
  env = {
    CANARY_MONGO_URI: mongo.ferret.uri,
    CANARY_MONGO_DB: mongo.db.databaseName,
    CANARY_IMPORT_SALT: 'fixture-pepper-1',
  };
});

afterAll(async () => {
  await mongo?.stop();
});

describe('importing a real-looking access log', () => {
  test('the fixture carries every sensitive value and every crawler named', () => {
    const log = readFileSync(FIXTURE, 'utf8');
    const decoded = decodeURIComponent(log.replace(/\+/g, ' '));
    for (const value of SENSITIVE) expect(decoded.includes(value) || log.includes(value)).toBe(true);
    for (const agent of [
      'ezooms',
      'Feedfetcher-Google',
      'UniversalFeedParser',
      'Tiny Tiny RSS',
      'Googlebot',
      'curl/',
    ])
      expect(log).toContain(agent);
  });

  test('stores no bot, no unknown agent and no personal value, and reports what it left out', async () => {
    const result = await runCli(['profiles', 'import', FIXTURE], { env });
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    const report = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({
      lines: 360,
      parsed: 360,
      excludedAgents: { bot: 144, unknown: 20 },
      skipped: { bot_agent: 144, unknown_agent: 20, ignored_by_rule: 48 },
      scrubbed: { email: 3, phone: 3, card: 4, token: 4, ip: 2 },
      clients: 12,
      profiles: 23,
      written: 23,
    });

    const stored = await mongo.db
      .collection('profiles')
      .find({ _id: { $regex: '^imp-' } } as never)
      .toArray();
    expect(stored).toHaveLength(23);
    const text = JSON.stringify(stored);
    for (const value of SENSITIVE) expect(text).not.toContain(value);
    // Only people's devices: no crawler or feed reader became a user.
    const devices = new Set(stored.map((profile) => profile.device_type as string));
    expect([...devices].sort()).toEqual(['desktop', 'mobile', 'tablet', 'tv']);
    // What was scrubbed is still there as a typed placeholder, so the search stays a search.
    const queries = stored.flatMap((profile) =>
      (profile.behavioral_patterns as { action: string; data?: { query?: string } }[])
        .filter((pattern) => pattern.action === 'search')
        .map((pattern) => pattern.data?.query),
    );
    for (const placeholder of ['<email>', '<phone>', '<card>', '<token>', '<ip>'])
      expect(queries).toContain(`order for ${placeholder}`);
    expect(queries).toContain('red shoes');
  });

  test('a configuration can keep bots and turn a rule off; a bad one names the field', async () => {
    const config = path.join(dir, 'import.yaml');
    writeFileSync(config, 'agents:\n  excludeBots: false\nscrub:\n  ip: false\n');
    const kept = await runCli(['profiles', 'import', FIXTURE, '--rules', config, '--dry-run'], { env });
    expect(kept.exitCode).toBe(0);
    const keptReport = JSON.parse(kept.stdout) as { scrubbed: Record<string, number> };
    expect(keptReport).toMatchObject({
      excludedAgents: { bot: 0, unknown: 20 },
      // The crawlers' searches for an address are scrubbed too, now that their lines are kept.
      scrubbed: { email: 24, card: 4, token: 4, phone: 3 },
    });
    expect(keptReport.scrubbed.ip).toBeUndefined();

    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'agents:\n  excludeBots: sometimes\nscrub:\n  mail: true\n  extra:\n    - { name: order, pattern: "(" }\n',
    );
    const refused = await runCli(['profiles', 'import', FIXTURE, '--rules', bad], { env });
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('scrub.mail: is not a known field');
    expect(refused.stderr).toContain('scrub.extra[0].pattern: must be a valid regular expression');
    expect(refused.stderr).toContain('agents.excludeBots: must be true or false');
  });
});
