import { RolloutClient } from '../../client/rollout-client';
import { RolloutStore } from '../../client/rollout-store';
import { startTestServers, type TestServers } from '../support/environment';
import { testSpec } from '../support/specs';
import { analysedRegimes } from '../support/doubles';
import { testWorker } from '../support/worker';

let servers: TestServers;

beforeAll(async () => {
  // Temporal suggests continue-as-new after 4096 events by default; lowering it exercises that path.
  servers = await startTestServers('can', {
    dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 120 },
  });
});

afterAll(async () => {
  await servers?.stop();
});

async function runToEnd(taskQueue: string, overrides: Record<string, unknown>) {
  const worker = await testWorker(servers, taskQueue, { honourProbeDuration: false });
  const spec = testSpec({ interval: '200ms', policy: { probingTicks: 2, promoteAt: 25 }, ...overrides });
  const result = await worker.runUntil(async () =>
    (await new RolloutClient(servers.env.client).start(spec, { taskQueue })).result(),
  );
  const ticks = await new RolloutStore(servers.db).listTicks(result.rolloutId);
  return { result, ticks };
}

describe('continue-as-new keeps the rollout going with its state', () => {
  test('when Temporal suggests it', async () => {
    const { result, ticks } = await runToEnd('suggested', {});
    expect(result.continuedAsNew).toBeGreaterThanOrEqual(2);
    expect(result.outcome).toBe('promoted');
    // Analysis state survived every continue-as-new: no tick turned inconclusive.
    expect(ticks.every((tick) => tick.verdict.status === 'healthy')).toBe(true);
    expect(ticks.map((tick) => tick.tick)).toEqual(Array.from({ length: 22 }, (_, i) => i + 1));
    expect(ticks.map((tick) => tick.shareAfter)).toEqual([
      0,
      5,
      ...Array.from({ length: 19 }, (_, i) => 6 + i),
      100,
    ]);
  });

  test("at the spec's own bound, carrying an anomaly's hysteresis, counts and regimes across runs", async () => {
    const { result, ticks } = await runToEnd('own-bound', {
      maxHistoryEvents: 100,
      analysis: { script: { '5': 'anomalous' }, recordRegimes: true },
      policy: { probingTicks: 1, initialShare: 10, promoteAt: 20, recoveryTicks: 2, cooldownTicks: 0 },
    });
    expect(result.continuedAsNew).toBeGreaterThanOrEqual(3);
    expect(result.outcome).toBe('promoted');
    expect(result.anomalyCount).toBe(1);
    // 10..13, cut to 8 at tick 5, hysteresis holds 2 ticks, then up by 1 to 20.
    expect(ticks.map((tick) => tick.shareAfter)).toEqual([
      10, 11, 12, 13, 8, 8, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 100,
    ]);
    // Each tick is analysed in the regime of the share applied while it ran: a new one whenever
    // that share changed (ticks 6-8 share one at 8 %), counted on across every continue-as-new.
    const regimes = await analysedRegimes(servers.db, result.rolloutId);
    expect(regimes.map(({ regime }) => regime?.index)).toEqual([
      1, 2, 3, 4, 5, 6, 6, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
    ]);
    expect(regimes.slice(5, 8).map(({ regime }) => regime)).toEqual(
      Array.from({ length: 3 }, () => ({ index: 6, sinceTick: 6, share: 0.08 })),
    );
    expect(regimes[0]?.regime).toEqual({ index: 1, sinceTick: 1, share: 0 });
  });
});
