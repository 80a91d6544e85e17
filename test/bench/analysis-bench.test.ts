import path from 'node:path';
import { loadExeca } from '../../platform/execa';
import { projectRoot } from '../../devstack/tools';

/** Smoke run of `npm run bench:analysis -- --quick`: the table and the JSON line keep their shape. */
describe('analysis benchmark', () => {
  it('prints a method x scenario table and ends with one JSON object', async () => {
    const run = await (
      await loadExeca()
    ).execa(process.execPath, ['--import', 'tsx', path.join(projectRoot, 'bench/analysis.ts'), '--quick'], {
      cwd: projectRoot,
      timeout: 240_000,
    });
    const lines = String(run.stdout).trim().split('\n');
    for (const row of ['sequential a=0.05', 'mann-whitney a=0.05', 'seed a=0.05', 'mann-whitney @FRR=seq'])
      expect(lines.some((line) => line.startsWith(row))).toBe(true);
    expect(lines.some((line) => line.includes('aa FRR') && line.includes('tail det/med/right'))).toBe(true);
    const summary = JSON.parse(lines.at(-1) ?? '') as Record<string, unknown>;
    expect(summary).toMatchObject({ bench: 'analysis', rollouts_aa: 40, ticks: 20 });
    for (const key of [
      'ratio',
      'false_rollback_sequential',
      'false_rollback_mann_whitney',
      'false_rollback_seed',
    ])
      expect(typeof summary[key]).toBe('number');
    // Even in the smoke run the naive methods roll back A/A canaries and the sequential one does not.
    expect(summary.false_rollback_sequential).toBe(0);
    expect(summary.false_rollback_mann_whitney as number).toBeGreaterThan(0.1);
  }, 300_000);
});
