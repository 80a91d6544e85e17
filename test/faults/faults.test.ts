/**
 * The fault suite: one real rollout per fault, each fault injected at a chosen moment, on real
 * servers (fault-stack.ts). Every test checks the same four things: each tick recorded exactly
 * once, the real router's final weight equals the decision, a person's decision is kept, and the
 * expected alerts reached the real HTTP receiver. Ticks are 1 s; the suite takes about 3 minutes,
 * most of it in two slow tests (marked SLOW), whose waits are Temporal's and FerretDB's own.
 */
import { RolloutClient, type RolloutHandle } from '../../client/rollout-client';
import { RolloutStore } from '../../client/rollout-store';
import {
  pauseSignal,
  promoteSignal,
  resumeSignal,
  rollbackSignal,
  statusQuery,
} from '../../rollout/messages';
import type { AdapterSpec, RolloutSpec } from '../../rollout/spec';
import type { RolloutResult, RolloutStatus, TickRecord } from '../../rollout/types';
import { testSpec } from '../support/specs';
import { waitFor } from '../support/until';
import { FaultStack, TASK_QUEUE } from './fault-stack';

let stack: FaultStack;
let rollouts: RolloutClient;

beforeAll(async () => {
  stack = await FaultStack.start();
  rollouts = new RolloutClient(stack.servers.env.client);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

/** 10 % after one probing tick, then 40 %, then promotion at 70 %: one step per healthy 1 s tick. */
function faultSpec(overrides: Record<string, unknown> = {}): RolloutSpec {
  return testSpec({
    targets: stack.targets,
    router: stack.builtinSpec,
    interval: '1s',
    probe: { duration: '300ms', concurrency: 2 },
    policy: { probingTicks: 1, initialShare: 10, stepUp: 30, promoteAt: 70 },
    // Verdicts from the spec, not the store: the FerretDB outage must not stall the analysis.
    analysis: { script: { default: 'healthy' } },
    alerts: { sinks: [stack.webhook(stack.alerts, 'on-call')] },
    ...overrides,
  });
}

async function ticksOf(rolloutId: string): Promise<TickRecord[]> {
  return new RolloutStore(stack.servers.db).listTicks(rolloutId);
}

const tickWithShare = (rolloutId: string, share: number) =>
  waitFor(`a tick at ${share} %`, async () =>
    (await ticksOf(rolloutId)).find((tick) => tick.shareAfter === share),
  );

const statusWhere = (handle: RolloutHandle, what: string, done: (status: RolloutStatus) => boolean) =>
  waitFor(what, async () => {
    const status = await handle.query(statusQuery);
    return done(status) ? status : undefined;
  });

interface ReceivedAlert {
  key: string;
  kind: string;
  rollout: { id: string };
  share: { before: number; after: number };
  summary: string;
}

/** Alerts the on-call receiver got for one rollout, once per key (a sink may deliver again). */
function alertsOf(rolloutId: string): ReceivedAlert[] {
  const seen = new Map<string, ReceivedAlert>();
  for (const request of stack.alerts.requests) {
    const alert = JSON.parse(request.body) as ReceivedAlert;
    if (alert.rollout.id === rolloutId && !seen.has(alert.key)) seen.set(alert.key, alert);
  }
  return [...seen.values()];
}

const alertReceived = (rolloutId: string, kind: string) =>
  waitFor(`a ${kind} alert`, async () => alertsOf(rolloutId).find((alert) => alert.kind === kind));

/** The four things every fault must leave true. */
async function expectSound(
  result: Pick<RolloutResult, 'rolloutId' | 'outcome' | 'ticks'>,
  router: AdapterSpec,
  alertKinds: string[],
): Promise<TickRecord[]> {
  const ticks = await ticksOf(result.rolloutId);
  expect(ticks.map((tick) => tick.tick)).toEqual(Array.from({ length: result.ticks }, (_, i) => i + 1));
  expect(await stack.routerShare(router)).toBe(result.outcome === 'promoted' ? 100 : 0);
  const terminal = await alertReceived(result.rolloutId, result.outcome);
  expect(terminal.share.after).toBe(result.outcome === 'promoted' ? 100 : 0);
  // Alerts are sent side by side, so they may arrive in any order.
  expect(
    alertsOf(result.rolloutId)
      .map((alert) => alert.kind)
      .sort(),
  ).toEqual([...alertKinds].sort());
  return ticks;
}

describe('faults injected into real rollouts on real servers', () => {
  test('router down during a raise: the rollout pauses with routing_failed, a person resumes once it is back, and it promotes', async () => {
    const spec = faultSpec();
    const handle = await rollouts.start(spec, { taskQueue: TASK_QUEUE });
    await tickWithShare(handle.workflowId, 10);
    await stack.proxy.stop();
    // The raise to 40 % is retried for about 15 s, then the rollout holds for a person.
    const paused = await statusWhere(handle, 'paused', (status) => status.phase === 'paused');
    expect(paused.pausedReason).toContain('routing failed while setting 40 %');
    expect(paused.appliedShare).toBe(10);
    await stack.proxy.start();
    await handle.signal(resumeSignal, { by: 'fault-suite:on-call' });
    const result = await handle.result();
    expect(result.outcome).toBe('promoted');
    expect(result.reasons).toContain('resumed by fault-suite:on-call');
    await expectSound(result, spec.router, ['routing_failed', 'promoted']);
  }, 90_000);

  test('proxy token rotated before the end, then fixed: final routing retries until it works, routing_failed once, then resolved', async () => {
    const spec = faultSpec();
    const handle = await rollouts.start(spec, { taskQueue: TASK_QUEUE });
    await tickWithShare(handle.workflowId, 10);
    await handle.signal(pauseSignal, { by: 'fault-suite:release', reason: 'checking before promoting' });
    await statusWhere(handle, 'paused', (status) => status.phase === 'paused');
    await stack.rotateProxyToken();
    await handle.signal(promoteSignal, { by: 'fault-suite:release', reason: 'ship it' });
    const failed = await alertReceived(handle.workflowId, 'routing_failed');
    expect(failed.summary).toContain('router.tokenEnv');
    // Several tries later the canary is still where it was: nothing gave up, nothing guessed.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    expect(await stack.routerShare(spec.router)).toBe(10);
    expect((await handle.query(statusQuery)).outcome).toBeNull();
    // The operator gives the worker the new token.
    stack.workerProxyToken = stack.proxyToken;
    await stack.worker?.stop();
    await stack.startWorker();
    const result = await handle.result();
    expect(result.outcome).toBe('promoted');
    expect(result.reasons.join('\n')).toContain('promoted by a person: ship it (fault-suite:release)');
    await expectSound(result, spec.router, ['routing_failed', 'resolved', 'promoted']);
  }, 90_000);

  test('HAProxy restarted mid-rollout serves its config weights: the drift is read back during holds, applied again and alerted', async () => {
    const spec = faultSpec({
      router: stack.haproxySpec,
      // Three holds at 40 % in which only the read-back can notice what HAProxy serves.
      analysis: { script: { '3': 'inconclusive', '4': 'inconclusive', '5': 'inconclusive' } },
    });
    const handle = await rollouts.start(spec, { taskQueue: TASK_QUEUE });
    await tickWithShare(handle.workflowId, 40);
    await stack.haproxy.restart();
    const drift = await alertReceived(handle.workflowId, 'drift');
    expect(drift.share).toEqual({ before: 0, after: 40 });
    const result = await handle.result();
    expect(result.outcome).toBe('promoted');
    const ticks = await expectSound(result, spec.router, ['drift', 'promoted']);
    expect(ticks.slice(2, 5).map((tick) => [tick.action, tick.shareAfter])).toEqual([
      ['hold', 40],
      ['hold', 40],
      ['hold', 40],
    ]);
    expect(result.reasons.join('\n')).toContain('drift repaired: the router serves 40 % again');
  }, 60_000);

  test('SLOW (FerretDB down 12 s) the store stopped: ticks go on, their records are kept and written once it is back', async () => {
    const spec = faultSpec({ policy: { probingTicks: 1, initialShare: 10, stepUp: 5, promoteAt: 70 } });
    const handle = await rollouts.start(spec, { taskQueue: TASK_QUEUE });
    await tickWithShare(handle.workflowId, 15);
    const stoppedAt = Date.now();
    await stack.servers.ferret.stop();
    await new Promise((resolve) => setTimeout(resolve, 12_000));
    await stack.servers.ferret.restart();
    const restartedAt = Date.now();
    const result = await handle.result();
    expect(result.outcome).toBe('promoted');
    const ticks = await expectSound(result, spec.router, ['promoted']);
    // The loop did not wait for the store: ticks kept starting while it was down, about 3.5 s
    // apart (interval, probe, one 3 s try at the store); a loop that waits for the store's
    // retries shows a gap of 8 s or more here.
    const duringOutage = ticks.filter((tick) => tick.startedAt > stoppedAt && tick.startedAt < restartedAt);
    expect(duringOutage.length).toBeGreaterThanOrEqual(2);
    const gaps = ticks.slice(1).map((tick, index) => tick.startedAt - (ticks[index]?.startedAt ?? 0));
    expect(Math.max(...gaps)).toBeLessThan(6000);
  }, 120_000);

  test('the Temporal dev server restarted (same SQLite file) during a probe: the rollout goes on from the same tick', async () => {
    const spec = faultSpec({ probe: { duration: '800ms', concurrency: 2 } });
    const handle = await rollouts.start(spec, { taskQueue: TASK_QUEUE });
    await tickWithShare(handle.workflowId, 10);
    await waitFor('a probe running', async () => {
      const { raw } = await handle.describe();
      return (raw.pendingActivities ?? []).some((activity) => activity.activityType?.name === 'probe');
    });
    await stack.servers.temporal.restart();
    const result = await handle.result();
    expect(result.outcome).toBe('promoted');
    await expectSound(result, spec.router, ['promoted']);
  }, 90_000);

  test('SLOW (30 s activity timeout) the worker SIGKILLed inside setCanaryWeight: a new worker applies the raise once and the rollout promotes', async () => {
    const spec = faultSpec();
    const handle = await rollouts.start(spec, { taskQueue: TASK_QUEUE });
    await tickWithShare(handle.workflowId, 10);
    // Freeze the proxy so the raise to 40 % is caught inside the activity.
    const proxyPid = stack.proxy.pid;
    if (proxyPid === undefined) throw new Error('the proxy is not running');
    process.kill(proxyPid, 'SIGSTOP');
    try {
      await waitFor('setCanaryWeight running', async () => {
        const { raw } = await handle.describe();
        return (raw.pendingActivities ?? []).some(
          (activity) => activity.activityType?.name === 'setCanaryWeight' && Number(activity.attempt) === 1,
        );
      });
      stack.worker?.kill('SIGKILL');
      await stack.worker?.exited;
    } finally {
      process.kill(proxyPid, 'SIGCONT');
    }
    await stack.startWorker();
    const result = await handle.result();
    expect(result.outcome).toBe('promoted');
    const ticks = await expectSound(result, spec.router, ['promoted']);
    expect(ticks.map((tick) => tick.shareAfter)).toEqual([10, 40, 100]);
  }, 120_000);

  test('an alert sink that hangs holds neither the rollout nor a person’s rollback; the other sink gets every alert', async () => {
    const spec = faultSpec({
      alerts: { sinks: [stack.webhook(stack.hangingSink, 'hangs'), stack.webhook(stack.alerts, 'on-call')] },
    });
    const handle = await rollouts.start(spec, { taskQueue: TASK_QUEUE });
    await tickWithShare(handle.workflowId, 10);
    await handle.signal(rollbackSignal, { by: 'fault-suite:on-call', reason: 'saw errors' });
    // Ended for the router and the people at once; only the workflow's bounded alert drain remains.
    const status = await statusWhere(handle, 'rolled back', (current) => current.outcome !== null);
    expect(status.outcome).toBe('rolled_back');
    expect(status.reasons.join('\n')).toContain('rolled back by a person: saw errors (fault-suite:on-call)');
    await expectSound(
      { rolloutId: handle.workflowId, outcome: 'rolled_back', ticks: status.tick },
      spec.router,
      ['rolled_back'],
    );
    await waitFor('the hanging sink tried', async () =>
      stack.hangingSink.received.includes(handle.workflowId),
    );
  }, 60_000);
});
