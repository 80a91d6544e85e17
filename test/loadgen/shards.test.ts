/**
 * Probe shards and engine threads split one seeded workload: for any shard count and any
 * thread count per shard (workers on different machines pick their own), every virtual user
 * and every open-model arrival belongs to exactly one (shard, thread).
 */
import { Engine } from '../../loadgen/engine';
import { resolveLoadOptions, type EnginePlan } from '../../loadgen/options';
import { defaultOntology, sessionsFromProfiles } from '../../loadgen/profile-sessions';
import { owns } from '../../loadgen/schedule';
import { profile } from './support/shop-server';

const sessions = sessionsFromProfiles(
  [profile('browser', [{ t: 0, action: 'page_view' }])],
  defaultOntology(),
);

async function basePlan(): Promise<EnginePlan> {
  return resolveLoadOptions({
    sessions,
    targets: [{ name: 'target', url: 'http://127.0.0.1:9' }],
    durationMs: 1000,
    concurrency: 1,
    timeScale: 0,
    threads: 1,
  });
}

describe('shards x threads', () => {
  test('partition the sessions exactly, whatever thread count each shard uses', async () => {
    const base = await basePlan();
    const cases: number[][] = [[1], [3], [1, 2], [2, 1, 3], [4, 1, 2, 7], [5, 5, 1, 2, 3]];
    for (const threadsPerShard of cases) {
      const count = threadsPerShard.length;
      const engines: Engine[] = [];
      for (const [index, threads] of threadsPerShard.entries())
        for (let thread = 0; thread < threads; thread++)
          engines.push(new Engine({ ...base, shard: { index, count }, threads }, thread));
      try {
        for (let item = 0; item < 5000; item++) {
          const owners = engines.filter((engine) => owns(item, engine.share, engine.shares));
          expect(owners).toHaveLength(1);
          // The item lies in the shard `item % count`, whatever that shard's thread count.
          expect(owners[0]?.plan.shard.index).toBe(item % count);
        }
      } finally {
        await Promise.all(engines.map((engine) => engine.cancel()));
      }
    }
  });
});
