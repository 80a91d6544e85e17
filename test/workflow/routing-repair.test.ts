/**
 * The control loop keeps real traffic where it decided, against a real Temporal dev server and
 * FerretDB: final routing that fails for any reason is retried until it works, drift is repaired
 * while the rollout holds or is paused, and alert keys stay unique across continue-as-new.
 */
import { RolloutClient, type RolloutHandle } from '../../client/rollout-client';
import { pauseSignal, rollbackSignal, statusQuery } from '../../rollout/messages';
import { appliedWeights, breakRouter, driftRouter, recordedAlerts } from '../support/doubles';
import { startTestServers, type TestServers } from '../support/environment';
import { testSpec } from '../support/specs';
import { until } from '../support/until';
import { testWorker } from '../support/worker';

let servers: TestServers;
let rollouts: RolloutClient;

beforeAll(async () => {
  servers = await startTestServers('routing-repair');
  rollouts = new RolloutClient(servers.env.client);
});

afterAll(async () => {
  await servers?.stop();
});

async function alertKinds(rolloutId: string): Promise<string[]> {
  return (await recordedAlerts(servers.db, rolloutId)).map((alert) => alert.kind);
}

/** Pauses the rollout, so no tick changes the share (and meets a broken router) before the end. */
async function holdStill(handle: RolloutHandle): Promise<void> {
  await handle.signal(pauseSignal, { by: 'test', reason: 'before breaking the router' });
  await until(async () => (await handle.query(statusQuery)).phase === 'paused');
  await new Promise((resolve) => setTimeout(resolve, 700)); // a tick already running ends
}

describe('routing the control loop can be trusted with', () => {
  test('final routing refused like a rotated token is retried until it works: one routing_failed, then resolved', async () => {
    const taskQueue = 'final-refused';
    const worker = await testWorker(servers, taskQueue);
    const spec = testSpec({ policy: { probingTicks: 1 } });
    const result = await worker.runUntil(async () => {
      const handle = await rollouts.start(spec, { taskQueue });
      const id = handle.workflowId;
      await until(async () => (await handle.query(statusQuery)).share >= 6);
      await holdStill(handle);
      await breakRouter(servers.db, id, 'refused-token');
      await handle.signal(rollbackSignal, { by: 'test', reason: 'router token rotated' });
      await until(async () => (await alertKinds(id)).includes('routing_failed'));
      // Several failed tries later (the wait is short for 300 ms ticks), still one alert.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      expect((await handle.query(statusQuery)).appliedShare).toBeGreaterThan(0);
      await breakRouter(servers.db, id, null);
      return handle.result();
    });
    expect(result.outcome).toBe('rolled_back');
    expect(result.finalShare).toBe(0);
    expect((await appliedWeights(servers.db, result.rolloutId)).at(-1)).toBe(0);
    const alerts = await recordedAlerts(servers.db, result.rolloutId);
    expect(alerts.map((alert) => alert.kind)).toEqual(['routing_failed', 'resolved', 'rolled_back']);
    expect(alerts[0]).toMatchObject({ severity: 'critical', deliveries: 1 });
    expect(alerts[0]?.summary).toContain('router.tokenEnv');
  });

  test('drift while paused is read back, applied again and alerted once', async () => {
    const taskQueue = 'drift-paused';
    const worker = await testWorker(servers, taskQueue);
    const spec = testSpec({ policy: { probingTicks: 1 } });
    await worker.runUntil(async () => {
      const handle = await rollouts.start(spec, { taskQueue });
      const id = handle.workflowId;
      await until(async () => (await handle.query(statusQuery)).share >= 6);
      await holdStill(handle);
      const { appliedShare } = await handle.query(statusQuery);
      const before = (await appliedWeights(servers.db, id)).length;
      await driftRouter(servers.db, id, 0);
      await until(async () => (await appliedWeights(servers.db, id)).length > before);
      expect((await appliedWeights(servers.db, id)).slice(before)).toEqual([appliedShare]);
      const router = await servers.db
        .collection<{ _id: string; share: number }>('test_router_state')
        .findOne({ _id: id });
      expect(router?.share).toBe(appliedShare);
      await new Promise((resolve) => setTimeout(resolve, 1000)); // more intervals: no second alert
      const alerts = await recordedAlerts(servers.db, id);
      expect(alerts.filter((alert) => alert.kind === 'drift')).toHaveLength(1);
      expect(alerts.find((alert) => alert.kind === 'drift')).toMatchObject({
        severity: 'critical',
        shareBefore: 0,
        shareAfter: appliedShare,
      });
      expect((await handle.query(statusQuery)).phase).toBe('paused');
      await handle.signal(rollbackSignal, { by: 'test', reason: 'done' });
      expect((await handle.result()).outcome).toBe('rolled_back');
    });
  });

  test('a second routing_failed at the same tick in the next run keeps its own key', async () => {
    const taskQueue = 'keys-across-runs';
    const worker = await testWorker(servers, taskQueue, { honourProbeDuration: false });
    const spec = testSpec({ maxHistoryEvents: 100, policy: { probingTicks: 1 } });
    const result = await worker.runUntil(async () => {
      const handle = await rollouts.start(spec, { taskQueue });
      const id = handle.workflowId;
      await until(async () => (await handle.query(statusQuery)).share >= 5);
      await holdStill(handle);
      await breakRouter(servers.db, id, 'refused-token');
      await handle.signal(rollbackSignal, { by: 'test', reason: 'stop' });
      // Final routing fails until history is long enough to continue as new, and fails again there.
      await until(
        async () => (await alertKinds(id)).filter((kind) => kind === 'routing_failed').length >= 2,
        60_000,
      );
      await breakRouter(servers.db, id, null);
      return handle.result();
    });
    expect(result.outcome).toBe('rolled_back');
    expect(result.continuedAsNew).toBeGreaterThanOrEqual(1);
    const failed = (await recordedAlerts(servers.db, result.rolloutId)).filter(
      (alert) => alert.kind === 'routing_failed',
    );
    expect(new Set(failed.map((alert) => alert.tick)).size).toBe(1);
    expect(failed.map((alert) => alert.key)).toEqual([
      `${result.rolloutId}/routing_failed/${failed[0]?.tick}`,
      `${result.rolloutId}/routing_failed/${failed[0]?.tick}#2`,
    ]);
    expect(failed.every((alert) => alert.deliveries === 1)).toBe(true);
  });
});
