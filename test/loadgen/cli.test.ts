import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withoutCredentials } from '../../cli/commands/loadgen';
import { freePort } from '../../devstack/ports';
import { runCli } from '../support/cli';
import { profile, ShopServer } from './support/shop-server';

let dir: string;
let shop: ShopServer;
let profilesFile: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'canary-loadgen-cli-'));
  shop = await ShopServer.start();
  profilesFile = path.join(dir, 'profiles.json');
  writeFileSync(
    profilesFile,
    JSON.stringify([
      profile('cli-1', [
        { t: 0, action: 'page_view' },
        { t: 20, action: 'search', data: { query: 'tea' } },
      ]),
    ]),
  );
});

afterAll(async () => {
  await shop.close();
  rmSync(dir, { recursive: true, force: true });
});

/** `canary loadgen` with the profiles file against the test shop, plus `flags`. */
const loadgen = (...flags: string[]) =>
  runCli(['loadgen', '--profiles', profilesFile, '--target', shop.url, ...flags]);

describe('canary loadgen', () => {
  test('--json prints NDJSON snapshots, then the result with mergeable stats', async () => {
    const run = await loadgen(
      '--duration',
      '1.5',
      '--concurrency',
      '2',
      '--time-scale',
      '0',
      '--interval',
      '0.5',
      '--json',
    );
    expect(run.stderr).toBe('');
    expect(run.exitCode).toBe(0);
    const lines = run.stdout
      .trim()
      .split('\n')
      .map(
        (line) =>
          JSON.parse(line) as {
            type: string;
            final?: boolean;
            totals?: unknown[];
            summary?: { action: string; requests: number }[];
          },
      );
    expect(lines.filter((line) => line.type === 'snapshot').length).toBeGreaterThanOrEqual(3);
    expect(lines.at(-2)).toMatchObject({ type: 'snapshot', final: true });
    const result = lines.at(-1);
    expect(result?.type).toBe('result');
    const served = shop.requests.length;
    const counted = (result?.summary ?? []).reduce((sum, row) => sum + row.requests, 0);
    expect(served - counted).toBeGreaterThanOrEqual(0);
    expect(served - counted).toBeLessThanOrEqual(2);
  });

  test('prints a per-action table', async () => {
    const run = await loadgen('--duration', '1', '--concurrency', '1');
    expect(run.exitCode).toBe(0);
    const [header, ...rows] = run.stdout.trim().split('\n');
    expect(header?.split(/\s{2,}/)).toEqual([
      'target',
      'action',
      'count',
      'rps',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'errors',
    ]);
    expect(rows.some((row) => /^target\s+search\s+\d+/.test(row))).toBe(true);
    expect(run.stdout).toMatch(/completed after 1\.0 s/);
  });

  test('bad input exits 2 naming the flag, before any request', async () => {
    shop.reset();
    const run = await runCli([
      'loadgen',
      '--profiles',
      profilesFile,
      '--target',
      'http://10.9.9.9',
      '--duration',
      'soon',
      '--concurrency',
      '0',
      '--rate',
      '5',
    ]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr.trim().split('\n')).toEqual([
      'error: --duration: must be seconds (30) or a duration such as 500ms, 30s or 2m',
      'error: --concurrency: must be >= 1',
      'error: --rate: needs --open (the closed model has no rate)',
    ]);
    const target = await runCli([
      'loadgen',
      '--profiles',
      profilesFile,
      '--baseline',
      shop.url,
      '--canary',
      'http://10.9.9.9:80',
    ]);
    expect(target.exitCode).toBe(2);
    expect(target.stderr).toMatch(/^error: --canary: host 10\.9\.9\.9 is not in the target allowlist/);
    const missing = await runCli(['loadgen', '--profiles', 'no such thing!', '--target', shop.url]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(
      /^error: --profiles: must be an existing file, comma-separated profile ids, or JSON criteria/,
    );
    expect(shop.requests).toHaveLength(0);
  });

  test('an unreachable profile store is named without the credentials of its URI', async () => {
    const port = await freePort();
    const run = await runCli([
      'loadgen',
      '--profiles',
      'u1,u2',
      '--target',
      shop.url,
      '--mongo-uri',
      `mongodb://reader:s3cret-pw@127.0.0.1:${port}/?authSource=admin`,
    ]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain(
      `error: --mongo-uri: cannot reach the profile store at mongodb://127.0.0.1:${port}/?authSource=admin`,
    );
    expect(run.stderr).not.toMatch(/s3cret-pw|reader/);
    expect(withoutCredentials('mongodb+srv://a:b@c.example.net,d.example.net/db')).toBe(
      'mongodb+srv://c.example.net,d.example.net/db',
    );
    expect(withoutCredentials('mongodb://h:27017/x?user=a@b')).toBe('mongodb://h:27017/x?user=a@b');
  });
});
