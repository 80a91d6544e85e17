import type { Worker } from '@temporalio/worker';
import { RolloutClient } from '../../client/rollout-client';
import { RolloutAlreadyStartedError, RolloutNotFoundError } from '../../client/rollout-errors';
import { rolloutIdFor } from '../../rollout/spec';
import { until } from '../dashboard/support';
import { startTestServers, type TestServers } from '../support/environment';
import { testSpec } from '../support/specs';
import { testWorker } from '../support/worker';

const TASK_QUEUE = 'rollout-client';
/** No worker polls it: what is started there stays running and does nothing. */
const IDLE_QUEUE = 'rollout-client-idle';

let servers: TestServers;
let worker: Worker;
let running: Promise<void>;
let rollouts: RolloutClient;

beforeAll(async () => {
  servers = await startTestServers('rollout-client');
  worker = await testWorker(servers, TASK_QUEUE);
  running = worker.run();
  rollouts = new RolloutClient(servers.env.client);
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await servers?.stop();
});

async function terminate(workflowId: string): Promise<void> {
  await servers.env.client.workflow
    .getHandle(workflowId)
    .terminate('test over')
    .catch(() => undefined);
}

test('the list is newest first, though visibility puts running rollouts before finished ones', async () => {
  const older = testSpec({ policy: { probingTicks: 1, initialShare: 5, stepUp: 1, promoteAt: 100 } });
  const newer = testSpec({ policy: { probingTicks: 0, initialShare: 5, promoteAt: 5 } });
  const olderId = rolloutIdFor(older.service, older.version);
  const newerId = rolloutIdFor(newer.service, newer.version);
  await rollouts.start(older, { taskQueue: TASK_QUEUE });
  try {
    expect((await (await rollouts.start(newer, { taskQueue: TASK_QUEUE })).result()).outcome).toBe(
      'promoted',
    );
    const listed = await until(
      () => rollouts.list({ running: false, limit: 10 }),
      (rows) =>
        rows.some((row) => row.summary.rolloutId === newerId && row.summary.execution === 'COMPLETED'),
    );
    expect(listed.map((row) => row.summary.rolloutId)).toEqual([newerId, olderId]);
    expect(listed[0]?.summary).toMatchObject({
      phase: 'promoted',
      share: 100,
      closedAt: expect.any(Number) as unknown,
    });
    expect(listed[1]?.summary).toMatchObject({ execution: 'RUNNING', service: 'shop', closedAt: null });
    const onlyRunning = await rollouts.list({ running: true, limit: 10 });
    expect(onlyRunning.map((row) => row.summary.rolloutId)).toEqual([olderId]);
  } finally {
    await terminate(olderId);
  }
});

test('an id held by another deployment is refused naming that deployment; the same one is refused as started', async () => {
  // rollout-a-b-1 either way: service a version b-1, or service a-b version 1.
  const first = testSpec({ service: 'a', version: 'b-1' });
  const colliding = testSpec({ service: 'a-b', version: '1' });
  const handle = await rollouts.start(first, { taskQueue: IDLE_QUEUE });
  try {
    const collision = await rollouts
      .start(colliding, { taskQueue: IDLE_QUEUE })
      .catch((error: unknown) => error);
    expect(collision).toBeInstanceOf(RolloutAlreadyStartedError);
    expect(collision).toMatchObject({
      rolloutId: 'rollout-a-b-1',
      holder: { service: 'a', version: 'b-1' },
      message:
        'rollout-a-b-1 is the rollout of service a version b-1: ids of different deployments collide; use another version string',
    });
    // A restart never doubles a run that is still going.
    const again = await rollouts
      .start(first, { taskQueue: IDLE_QUEUE, allowRestart: true })
      .catch((error: unknown) => error);
    expect(again).toBeInstanceOf(RolloutAlreadyStartedError);
    expect(again).toMatchObject({
      holder: undefined,
      message: 'rollout-a-b-1 was already started: a deployment is rolled out once',
    });
  } finally {
    await terminate(handle.workflowId);
  }
});

test('no workflow, or a workflow of another type under a rollout id, is not a rollout', async () => {
  const impostor = 'rollout-shop-impostor';
  await servers.env.client.workflow.start('someOtherWorkflow', {
    taskQueue: IDLE_QUEUE,
    workflowId: impostor,
  });
  try {
    await expect(rollouts.detail(impostor)).rejects.toThrow(new RolloutNotFoundError(impostor));
    await expect(rollouts.pause(impostor, { by: 'test' })).rejects.toBeInstanceOf(RolloutNotFoundError);
    await expect(rollouts.setPolicy(impostor, { stepUp: 2 })).rejects.toBeInstanceOf(RolloutNotFoundError);
    expect(await rollouts.isRunning(impostor)).toBe(false);
  } finally {
    await terminate(impostor);
  }
  const missing = 'rollout-shop-missing';
  await expect(rollouts.status(missing)).rejects.toThrow('no rollout rollout-shop-missing');
  await expect(rollouts.result(missing)).rejects.toBeInstanceOf(RolloutNotFoundError);
  await expect(rollouts.watch(missing, () => undefined, 50)).rejects.toBeInstanceOf(RolloutNotFoundError);
  expect(await rollouts.isRunning(missing)).toBe(false);
});
