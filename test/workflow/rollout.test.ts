import { WorkflowUpdateFailedError } from '@temporalio/client';
import { RolloutStore } from '../../client/rollout-store';
import {
  pauseSignal,
  promoteSignal,
  resumeSignal,
  rollbackSignal,
  setPolicyUpdate,
  statusQuery,
} from '../../rollout/messages';
import { RolloutClient } from '../../client/rollout-client';
import type { RolloutStatus } from '../../rollout/types';
import { appliedWeights, recordedAlerts, ScriptedAnalyzer } from '../support/doubles';
import type { AnalyzeRequest } from '../../activities/ports';
import { generateProfiles } from '../../profiles/generator';
import { StoreProfileSource } from '../../profiles/profile-source';
import { ProfileStore } from '../../profiles/store';
import { startTestServers, type TestServers } from '../support/environment';
import { testSpec } from '../support/specs';
import { until } from '../support/until';
import { testWorker } from '../support/worker';

let servers: TestServers;
let rollouts: RolloutClient;

beforeAll(async () => {
  servers = await startTestServers('rollout');
  rollouts = new RolloutClient(servers.env.client);
});

afterAll(async () => {
  await servers?.stop();
});

function sharesOf(ticks: { shareAfter: number }[]): number[] {
  return ticks.map((tick) => tick.shareAfter);
}

describe('rollout workflow against a real Temporal dev server and FerretDB', () => {
  test('a healthy rollout probes at 0 %, ramps from 5 % by 1 % per clean tick and promotes', async () => {
    const taskQueue = 'healthy';
    const worker = await testWorker(servers, taskQueue);
    const spec = testSpec({ policy: { probingTicks: 2, initialShare: 5, stepUp: 1, promoteAt: 10 } });
    const result = await worker.runUntil(async () => {
      const handle = await rollouts.start(spec, { taskQueue });
      return handle.result();
    });
    expect(result.outcome).toBe('promoted');
    expect(result.finalShare).toBe(100);
    const ticks = await new RolloutStore(servers.db).listTicks(result.rolloutId);
    expect(ticks.map((tick) => tick.tick)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(sharesOf(ticks)).toEqual([0, 5, 6, 7, 8, 9, 100]);
    expect(ticks.map((tick) => tick.action)).toEqual([
      'hold',
      'start',
      'raise',
      'raise',
      'raise',
      'raise',
      'promote',
    ]);
    expect(await appliedWeights(servers.db, result.rolloutId)).toEqual([0, 5, 6, 7, 8, 9, 100]);
    const alerts = await recordedAlerts(servers.db, result.rolloutId);
    expect(alerts.map((alert) => alert.kind)).toEqual(['promoted']);
  });

  test('an anomaly cuts the share by 5 at once; hysteresis and cooldown hold it before it rises again', async () => {
    const taskQueue = 'anomaly';
    const worker = await testWorker(servers, taskQueue);
    const spec = testSpec({
      policy: {
        probingTicks: 1,
        initialShare: 20,
        stepUp: 1,
        stepDown: 5,
        recoveryTicks: 2,
        cooldownTicks: 8,
        promoteAt: 24,
      },
      analysis: { script: { '4': 'anomalous' } },
    });
    const result = await worker.runUntil(async () => (await rollouts.start(spec, { taskQueue })).result());
    expect(result.outcome).toBe('promoted');
    const ticks = await new RolloutStore(servers.db).listTicks(result.rolloutId);
    // 1 start 20; 2-3 raise; 4 anomaly -> 17; 5-6 hysteresis holds; 7-10 raise to 21; 11 cooldown
    // keeps it below the cut level (22) until tick 12; then 22, 23, promote at 24.
    expect(sharesOf(ticks)).toEqual([20, 21, 22, 17, 17, 17, 18, 19, 20, 21, 21, 22, 23, 100]);
    expect(ticks[10]?.reason).toContain('cooldown');
    expect(ticks[3]?.action).toBe('reduce');
    expect(ticks[3]?.investigation).toMatchObject({ tick: 4, shareBefore: 22, shareAfter: 17 });
    expect(ticks[3]?.investigation?.anomalies[0]?.action).toBe('checkout');
    const alerts = await recordedAlerts(servers.db, result.rolloutId);
    expect(alerts.map((alert) => alert.kind)).toEqual(['anomaly', 'resolved', 'promoted']);
    expect(alerts[0]).toMatchObject({ shareBefore: 22, shareAfter: 17, deliveries: 1 });
  });

  test('persistent anomalies roll the canary back and leave it at 0 %', async () => {
    const taskQueue = 'rollback';
    const worker = await testWorker(servers, taskQueue);
    const spec = testSpec({
      policy: { probingTicks: 1, initialShare: 30, maxAnomalies: 3, anomalyWindowTicks: 10 },
      analysis: { script: { default: 'anomalous', '1': 'healthy', '2': 'healthy' } },
    });
    const result = await worker.runUntil(async () => (await rollouts.start(spec, { taskQueue })).result());
    expect(result.outcome).toBe('rolled_back');
    expect(result.reasons.join('\n')).toContain('3 anomalous ticks within 10 ticks');
    const ticks = await new RolloutStore(servers.db).listTicks(result.rolloutId);
    expect(sharesOf(ticks)).toEqual([30, 31, 26, 21, 0]);
    expect((await appliedWeights(servers.db, result.rolloutId)).at(-1)).toBe(0);
  });

  test('a critical anomaly rolls back at once, even while probing at 0 %', async () => {
    const taskQueue = 'critical';
    const worker = await testWorker(servers, taskQueue);
    const spec = testSpec({ analysis: { script: { '2': 'critical' } } });
    const result = await worker.runUntil(async () => (await rollouts.start(spec, { taskQueue })).result());
    expect(result.outcome).toBe('rolled_back');
    expect(result.ticks).toBe(2);
    // The canary never got real traffic.
    expect(Math.max(...(await appliedWeights(servers.db, result.rolloutId)))).toBe(0);
  });

  test('inconclusive ticks never raise the share, and too many in a row pause the rollout', async () => {
    const taskQueue = 'inconclusive';
    const worker = await testWorker(servers, taskQueue);
    const spec = testSpec({
      policy: { probingTicks: 1, initialShare: 10, maxInconclusiveTicks: 3, promoteAt: 13 },
      analysis: { script: { '3': 'inconclusive', '4': 'inconclusive', '5': 'inconclusive' } },
    });
    await worker.runUntil(async () => {
      const handle = await rollouts.start(spec, { taskQueue });
      let status: RolloutStatus | undefined;
      await until(async () => {
        const current = await handle.query(statusQuery);
        status = current;
        return current.phase === 'paused';
      });
      expect(status?.pausedReason).toContain('3 inconclusive ticks in a row');
      expect(status?.share).toBe(11);
      await handle.signal(resumeSignal, { by: 'test' });
      const result = await handle.result();
      expect(result.outcome).toBe('promoted');
    });
    const ticks = await new RolloutStore(servers.db).listTicks(`rollout-shop-${spec.version}`);
    expect(sharesOf(ticks)).toEqual([10, 11, 11, 11, 11, 12, 100]);
  });

  test('pause holds the share, resume continues, rollback ends it with the reason given', async () => {
    const taskQueue = 'signals';
    const worker = await testWorker(servers, taskQueue);
    const spec = testSpec({ policy: { probingTicks: 1 } });
    await worker.runUntil(async () => {
      const handle = await rollouts.start(spec, { taskQueue });
      await until(async () => (await handle.query(statusQuery)).share >= 6);
      await handle.signal(pauseSignal, { by: 'cli:alice', reason: 'checking dashboards' });
      await until(async () => (await handle.query(statusQuery)).phase === 'paused');
      const paused = await handle.query(statusQuery);
      // A tick already running when the pause arrived may still finish (it cannot raise the
      // share); after that, nothing ticks while paused.
      await new Promise((resolve) => setTimeout(resolve, 1200));
      const settled = await handle.query(statusQuery);
      await new Promise((resolve) => setTimeout(resolve, 1200)); // four intervals
      const stillPaused = await handle.query(statusQuery);
      expect(stillPaused.phase).toBe('paused');
      expect(settled.tick).toBeLessThanOrEqual(paused.tick + 1);
      expect(stillPaused.tick).toBe(settled.tick);
      expect(stillPaused.share).toBe(paused.share);
      expect(stillPaused.pausedReason).toBe('checking dashboards (cli:alice)');

      await handle.signal(resumeSignal, { by: 'cli:alice' });
      await until(async () => (await handle.query(statusQuery)).tick >= paused.tick + 2);
      await handle.signal(rollbackSignal, { by: 'cli:bob', reason: 'error budget burning' });
      const result = await handle.result();
      expect(result.outcome).toBe('rolled_back');
      expect(result.reasons.join('\n')).toContain('rolled back by a person: error budget burning (cli:bob)');
      expect((await appliedWeights(servers.db, result.rolloutId)).at(-1)).toBe(0);
    });
  });

  test('promote skips the remaining steps', async () => {
    const taskQueue = 'promote';
    const worker = await testWorker(servers, taskQueue);
    const spec = testSpec({ policy: { probingTicks: 1 } });
    await worker.runUntil(async () => {
      const handle = await rollouts.start(spec, { taskQueue });
      await until(async () => (await handle.query(statusQuery)).share >= 5);
      await handle.signal(promoteSignal, { by: 'dashboard', reason: 'looks good' });
      const result = await handle.result();
      expect(result.outcome).toBe('promoted');
      expect((await appliedWeights(servers.db, result.rolloutId)).at(-1)).toBe(100);
    });
  });

  test('setPolicy rejects bad input naming the field, and applies good input at run time', async () => {
    const taskQueue = 'policy';
    const worker = await testWorker(servers, taskQueue);
    const spec = testSpec({ policy: { probingTicks: 1 } });
    await worker.runUntil(async () => {
      const handle = await rollouts.start(spec, { taskQueue });
      const rejected = async (patch: Record<string, unknown>) => {
        const error = await handle.executeUpdate(setPolicyUpdate, { args: [patch] }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
        return (error as WorkflowUpdateFailedError).cause?.message ?? '';
      };
      expect(await rejected({ stepUp: -1 })).toContain('policy.stepUp: must be > 0');
      expect(await rejected({ stepSize: 2 })).toContain('policy.stepSize: is not a known field');
      expect(await rejected({ initialShare: 50, promoteAt: 40 })).toContain(
        'policy.initialShare: must not exceed policy.promoteAt',
      );
      expect(await rejected({ recoveryTicks: 1.5 })).toContain('policy.recoveryTicks: must be an integer');

      const updated = await handle.executeUpdate(setPolicyUpdate, { args: [{ stepUp: 20 }] });
      expect(updated.stepUp).toBe(20);
      const result = await handle.result();
      expect(result.outcome).toBe('promoted');
      const ticks = await new RolloutStore(servers.db).listTicks(result.rolloutId);
      // Steps of 20 reach 100 within a few ticks of the change.
      expect(ticks.length).toBeLessThan(15);
    });
  });

  test('a router that keeps refusing a change pauses the rollout with the reason instead of guessing', async () => {
    const taskQueue = 'router-down';
    const worker = await testWorker(servers, taskQueue);
    const spec = testSpec({
      router: { kind: 'test-recording', unavailableAbove: 6 },
      policy: { probingTicks: 1 },
    });
    await worker.runUntil(async () => {
      const handle = await rollouts.start(spec, { taskQueue });
      await until(async () => (await handle.query(statusQuery)).phase === 'paused', 60_000);
      const status = await handle.query(statusQuery);
      expect(status.pausedReason).toContain('routing failed while setting 7 %');
      expect(status.share).toBe(7);
      expect(status.appliedShare).toBe(6); // never a wrong weight left silently
      await handle.signal(rollbackSignal, { by: 'test', reason: 'router broken' });
      expect((await handle.result()).outcome).toBe('rolled_back');
    });
  });

  test('a probe fans out over shards on a dedicated task queue and their summaries add up', async () => {
    const worker = await testWorker(servers, 'fan-out');
    const probeWorker = await testWorker(servers, 'fan-out-probes');
    const spec = testSpec({
      probe: { duration: '100ms', concurrency: 4, shards: 2, taskQueue: 'fan-out-probes' },
      policy: { probingTicks: 1, promoteAt: 6 },
    });
    const result = await probeWorker.runUntil(() =>
      worker.runUntil(async () => (await rollouts.start(spec, { taskQueue: 'fan-out' })).result()),
    );
    expect(result.outcome).toBe('promoted');
    const ticks = await new RolloutStore(servers.db).listTicks(result.rolloutId);
    // Each shard's double reports profiles x concurrency requests per target; two shards add up.
    expect(ticks.every((tick) => tick.probe?.requests.canary === 2 * 5 * 4)).toBe(true);
  });

  test("the analyze activity receives the sampled profiles' actions, known before the first look", async () => {
    const store = new ProfileStore(servers.db);
    await store.load(generateProfiles({ seed: 9, count: 200 }));
    const requests: AnalyzeRequest[] = [];
    const scripted = new ScriptedAnalyzer(servers.db);
    const worker = await testWorker(servers, 'known-actions', {
      deps: {
        profiles: new StoreProfileSource(store),
        // Records what the activity is given, then answers as the other tests' analyzer does.
        analyzer: {
          analyze: async (request) => {
            requests.push(request);
            return scripted.analyze(request);
          },
        },
      },
    });
    const spec = testSpec({
      profiles: { criteria: { device_type: 'mobile' }, sampleSize: 12, seed: 4 },
      policy: { probingTicks: 1, promoteAt: 6 },
    });
    const result = await worker.runUntil(async () =>
      (await rollouts.start(spec, { taskQueue: 'known-actions' })).result(),
    );
    expect(result.outcome).toBe('promoted');
    // The same sample again (it is reproducible), and the actions its profiles use.
    const selection = await new StoreProfileSource(store).select(spec.profiles);
    const sampled = await store.getMany(selection.profileIds, ['actions']);
    const expected = [...new Set(sampled.flatMap((profile) => profile.actions ?? []))].sort();
    expect(expected.length).toBeGreaterThan(0);
    expect(requests.length).toBeGreaterThan(0);
    for (const request of requests) expect(request.actions).toEqual(expected);
  });

  test('starting the same deployment twice is refused', async () => {
    const taskQueue = 'duplicate';
    const worker = await testWorker(servers, taskQueue);
    const spec = testSpec();
    await worker.runUntil(async () => {
      const handle = await rollouts.start(spec, { taskQueue });
      await expect(rollouts.start(spec, { taskQueue })).rejects.toThrow(/already started/i);
      await handle.signal(rollbackSignal, { reason: 'done' });
      await handle.result();
      await expect(rollouts.start(spec, { taskQueue })).rejects.toThrow(/already started/i);
      // A restart after the end runs under its own id, so it never finds the first run's data.
      const restarted = await rollouts.start(spec, { taskQueue, allowRestart: true });
      expect(restarted.workflowId).toBe(`${handle.workflowId}+r2`);
      await expect(rollouts.start(spec, { taskQueue, allowRestart: true })).rejects.toThrow(
        /already started/i,
      );
      await restarted.signal(rollbackSignal, { reason: 'done' });
      expect((await restarted.result()).rolloutId).toBe(`${handle.workflowId}+r2`);
    });
  });

  test('cancelling the workflow while a probe runs aborts the rollout and takes the canary out', async () => {
    const taskQueue = 'cancel-mid-probe';
    const worker = await testWorker(servers, taskQueue);
    const spec = testSpec({ interval: '20s', probe: { duration: '15s', concurrency: 2 } });
    const result = await worker.runUntil(async () => {
      const handle = await rollouts.start(spec, { taskQueue });
      await until(async () => {
        const { raw } = await handle.describe();
        return (raw.pendingActivities ?? []).some((activity) => activity.activityType?.name === 'probe');
      });
      await handle.cancel();
      return handle.result();
    });
    expect(result.outcome).toBe('aborted');
    expect(result.finalShare).toBe(0);
    expect((await appliedWeights(servers.db, result.rolloutId)).at(-1)).toBe(0);
  });
});
