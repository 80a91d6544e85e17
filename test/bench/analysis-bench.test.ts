import path from 'node:path';
import { loadExeca } from '../../platform/execa';
import { projectRoot } from '../../devstack/tools';

/** Smoke run of `npm run bench:analysis -- --quick`: the tables and the JSON line keep their shape. */
describe('analysis benchmark', () => {
  it('prints a method x volume table, the policy price, and ends with one JSON object', async () => {
    const run = await (
      await loadExeca()
    ).execa(process.execPath, ['--import', 'tsx', path.join(projectRoot, 'bench/analysis.ts'), '--quick'], {
      cwd: projectRoot,
      timeout: 240_000,
    });
    const lines = String(run.stdout).trim().split('\n');
    for (const row of [
      'betting @50',
      'betting-robust @50',
      'sequential @50',
      'mann-whitney @50',
      'betting carried/proof',
    ])
      expect(lines.some((line) => line.startsWith(row))).toBe(true);
    expect(
      lines.some(
        (line) =>
          line.includes('aa FRR') &&
          line.includes('aa15 FRR') &&
          line.includes('lat30 found/early/med/right'),
      ),
    ).toBe(true);
    expect(lines.some((line) => line.startsWith('fixed-horizon reference'))).toBe(true);
    const summary = JSON.parse(lines.at(-1) ?? '') as Record<string, unknown>;
    expect(summary).toMatchObject({ bench: 'analysis', runs_aa: 10, ticks: 20, volumes: [50] });
    expect(typeof summary.ratio).toBe('number');
    const falseRollback = summary.false_rollback as Record<string, Record<string, number>>;
    // Even in the smoke run the per-window method rolls back A/A canaries and the anytime ones do not.
    expect(falseRollback.betting?.['50']).toBe(0);
    expect(falseRollback.sequential?.['50']).toBe(0);
    expect(falseRollback['mann-whitney']?.['50']).toBeGreaterThan(0.1);
    expect(falseRollback['betting-robust']?.['50']).toBe(0);
    // With each target slower or faster as a whole per tick, the robust variant keeps to alpha.
    const withTickEffects = summary.false_rollback_with_tick_effects as Record<
      string,
      Record<string, number>
    >;
    expect(withTickEffects['betting-robust']?.['50']).toBeLessThanOrEqual(0.2);
  }, 300_000);
});
