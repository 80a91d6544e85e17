import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { seededRandom } from '../../core/random';
import type { ReplayResult } from '../../analysis/replay';
import { runCli } from '../support/cli';

let dir: string;

/** Raw samples as a user would record them: one line per request, latencies and errors. */
function recording(name: string, options: { slowdownFrom?: number; ticks?: number } = {}): string {
  const random = seededRandom(name.length * 7919);
  const lines: string[] = [];
  for (let t = 1; t <= (options.ticks ?? 10); t += 1) {
    for (const target of ['baseline', 'canary'] as const) {
      for (const action of ['browse', 'checkout']) {
        const slow =
          target === 'canary' && action === 'checkout' && t >= (options.slowdownFrom ?? Infinity) ? 1.4 : 1;
        for (let i = 0; i < 200; i += 1) {
          const z = Math.sqrt(-2 * Math.log(Math.max(random(), 1e-12))) * Math.cos(2 * Math.PI * random());
          const value = Math.round(40 * Math.exp(0.4 * z) * slow * 100) / 100;
          lines.push(JSON.stringify({ t, target, metric: 'latency_ms', action, value }));
          lines.push(JSON.stringify({ t, target, metric: 'error', action, value: random() < 0.01 ? 1 : 0 }));
        }
      }
    }
  }
  const file = path.join(dir, `${name}.ndjson`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'canary-analyze-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('canary analyze', () => {
  it('replays a recording and reports the first anomalous tick as JSON', async () => {
    const run = await runCli([
      'analyze',
      '--input',
      recording('slow-checkout', { slowdownFrom: 1 }),
      '--json',
    ]);
    expect(run.exitCode).toBe(0);
    const result = JSON.parse(run.stdout) as ReplayResult;
    expect(result).toMatchObject({ method: 'betting', alpha: 0.05 });
    expect(result.ticks.map((tick) => tick.t)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(result.first_anomalous_tick).not.toBeNull();
    const first = result.ticks.find((tick) => tick.t === result.first_anomalous_tick);
    expect(first?.verdict).toBe('anomalous');
    expect(first?.anomalies[0]).toMatchObject({ metric: 'latency_ms', action: 'checkout' });
    const [low, high] = first?.anomalies[0]?.interval ?? [0, 0];
    expect(low).toBeGreaterThan(0);
    expect(high).toBeGreaterThan(low);
  });

  it('prints one line per tick and exits 0 when nothing is wrong', async () => {
    const run = await runCli(['analyze', '--input', recording('same'), '--alpha', '0.01']);
    expect(run.exitCode).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toBe('method betting, alpha 0.01, 10 ticks');
    expect(lines.slice(1, 11).every((line) => /^t=\d+ healthy/.test(line))).toBe(true);
    expect(lines.at(-1)).toBe('first anomalous tick: none');
  });

  it('runs the reference methods on the same file', async () => {
    const run = await runCli([
      'analyze',
      '--input',
      recording('slow-later', { slowdownFrom: 4 }),
      '--method',
      'mann-whitney',
      '--json',
    ]);
    expect(run.exitCode).toBe(0);
    const result = JSON.parse(run.stdout) as ReplayResult;
    expect(result.method).toBe('mann-whitney');
    expect(result.first_anomalous_tick).not.toBeNull();
  });

  it('replays the regimes the lines carry: a regression gone after a cut is forgotten', async () => {
    // Checkout is slow while the canary has 10 % (ticks 1-5); the cut to 5 % fixed it.
    const source = recording('cut', { slowdownFrom: 1, ticks: 5 });
    const fixed = recording('cut-fixed', { ticks: 10 });
    const { readFileSync } = await import('node:fs');
    const mark = (line: string, share: number) => JSON.stringify({ ...JSON.parse(line), share });
    const lines = [
      ...readFileSync(source, 'utf8')
        .trim()
        .split('\n')
        .map((line) => mark(line, 0.1)),
      ...readFileSync(fixed, 'utf8')
        .trim()
        .split('\n')
        .filter((line) => (JSON.parse(line) as { t: number }).t > 5)
        .map((line) => mark(line, 0.05)),
    ];
    const file = path.join(dir, 'regimes.ndjson');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const result = JSON.parse((await runCli(['analyze', '--input', file, '--json'])).stdout) as ReplayResult;
    expect(result.ticks.slice(0, 5).some((tick) => tick.verdict === 'anomalous')).toBe(true);
    expect(result.ticks.slice(5).map((tick) => [tick.regime, tick.verdict])).toEqual(
      Array.from({ length: 5 }, () => [2, 'healthy']),
    );
    // Without the marks the old evidence keeps the canary anomalous.
    writeFileSync(
      file,
      `${lines.map((line) => JSON.stringify({ ...JSON.parse(line), share: undefined })).join('\n')}\n`,
    );
    const unmarked = JSON.parse(
      (await runCli(['analyze', '--input', file, '--json'])).stdout,
    ) as ReplayResult;
    expect(unmarked.ticks.at(-1)?.verdict).toBe('anomalous');
  });

  it('exits 2 naming the line and the field of bad input', async () => {
    const file = path.join(dir, 'bad.ndjson');
    writeFileSync(
      file,
      [
        '{"t":1,"target":"canary","metric":"latency_ms","action":"checkout","value":41.7}',
        '',
        '{"t":2,"target":"canry","metric":"latency_ms","value":-3}',
        'not json',
      ].join('\n'),
    );
    const run = await runCli(['analyze', '--input', file, '--json']);
    expect(run.exitCode).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('error: line 3.target: must be one of baseline, canary');
    expect(run.stderr).toContain('error: line 3.value: must be >= 0');
    expect(run.stderr).toContain('error: line 4: must be one JSON object');
  });

  it('exits 2 on bad flags and a missing file', async () => {
    const input = recording('flags', { ticks: 2 });
    expect((await runCli(['analyze', '--input', input, '--method', 'bayes'])).stderr).toContain(
      'error: --method: must be one of betting, betting-robust, sequential, mann-whitney, seed',
    );
    const alpha = await runCli(['analyze', '--input', input, '--alpha', '0.9']);
    expect(alpha).toMatchObject({
      exitCode: 2,
      stderr: expect.stringContaining('--alpha: must be <= 0.5') as unknown,
    });
    const missing = await runCli(['analyze', '--input', path.join(dir, 'nope.ndjson')]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain('does not exist');
  });
});
