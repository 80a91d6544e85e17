import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ManagedProcess } from '../../devstack/managed-process';
import { projectRoot } from '../../devstack/tools';
import { RolloutClient } from '../../client/rollout-client';
import { RolloutStore } from '../../client/rollout-store';
import type { PolicyState } from '../../rollout/types';
import { initialPolicyState, nextTrafficShare } from '../../workflows/policy';
import type { RolloutSpec } from '../../rollout/spec';
import { appliedWeights, recordedAlerts } from '../support/doubles';
import { startTestServers, workflowBundle, type TestServers } from '../support/environment';
import { testSpec } from '../support/specs';
import { testWorker } from '../support/worker';

let servers: TestServers;
let rollouts: RolloutClient;
let bundlePath: string;

beforeAll(async () => {
  servers = await startTestServers('durability');
  rollouts = new RolloutClient(servers.env.client);
  bundlePath = path.join(servers.dataDir, 'workflow-bundle.js');
  writeFileSync(bundlePath, (await workflowBundle()).code);
});

afterAll(async () => {
  await servers?.stop();
});

async function startWorkerProcess(taskQueue: string, name: string): Promise<ManagedProcess> {
  const logFile = path.join(servers.dataDir, `${name}.log`);
  return ManagedProcess.start({
    name,
    command: process.execPath,
    args: ['--import', 'tsx', path.join(projectRoot, 'test/support/worker-main.ts')],
    env: {
      TEMPORAL_ADDRESS: servers.temporal.address,
      CANARY_MONGO_URI: servers.ferret.uri,
      CANARY_MONGO_DB: servers.db.databaseName,
      TASK_QUEUE: taskQueue,
      WORKFLOW_BUNDLE: bundlePath,
    },
    cwd: projectRoot,
    logFile,
    readyTimeoutMs: 60_000,
    isReady: async () => readFileSync(logFile, 'utf8').includes('worker running'),
  });
}

async function waitForTicks(rolloutId: string, count: number, timeoutMs = 60_000): Promise<void> {
  const store = new RolloutStore(servers.db);
  const deadline = Date.now() + timeoutMs;
  while ((await store.listTicks(rolloutId)).length < count) {
    if (Date.now() > deadline) throw new Error(`fewer than ${count} ticks recorded in time`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The shares the pure policy prescribes for all-healthy ticks: what the rollout must have done. */
function expectedShares(spec: RolloutSpec): number[] {
  const shares: number[] = [];
  let state: PolicyState = initialPolicyState();
  while (state.phase !== 'promoted') {
    state = nextTrafficShare(spec.policy, state, {
      tick: shares.length + 1,
      status: 'healthy',
      critical: false,
    }).state;
    shares.push(state.share);
  }
  return shares;
}

function withoutRepeats(values: number[]): number[] {
  return values.filter((value, index) => index === 0 || value !== values[index - 1]);
}

/** Every tick exactly once, the policy's shares in order, each weight change applied once. */
async function expectNothingLostOrDoubled(spec: RolloutSpec, rolloutId: string): Promise<void> {
  const ticks = await new RolloutStore(servers.db).listTicks(rolloutId);
  const shares = expectedShares(spec);
  expect(ticks.map((tick) => tick.tick)).toEqual(shares.map((_, index) => index + 1));
  expect(ticks.map((tick) => tick.shareAfter)).toEqual(shares);
  // A retried setCanaryWeight may repeat the same value (harmless); it never applies a step twice.
  expect(withoutRepeats(await appliedWeights(servers.db, rolloutId))).toEqual(withoutRepeats([0, ...shares]));
  const alerts = await recordedAlerts(servers.db, rolloutId);
  expect(alerts.map((alert) => alert.kind)).toEqual(['promoted']);
}

describe('durability', () => {
  test('a worker killed with SIGKILL mid-rollout is replaced and the rollout continues from the same tick', async () => {
    const taskQueue = 'sigkill';
    const spec = testSpec({
      interval: '500ms',
      probe: { duration: '300ms' },
      policy: { probingTicks: 2, promoteAt: 12 },
    });
    const rolloutId = `rollout-${spec.service}-${spec.version}`;
    const first = await startWorkerProcess(taskQueue, 'worker-a');
    const handle = await rollouts.start(spec, { taskQueue });
    await waitForTicks(rolloutId, 4);
    first.kill('SIGKILL');
    await first.exited;
    const ticksAtKill = (await new RolloutStore(servers.db).listTicks(rolloutId)).length;

    const second = await startWorkerProcess(taskQueue, 'worker-b');
    try {
      const result = await handle.result();
      expect(result.outcome).toBe('promoted');
      expect(result.ticks).toBeGreaterThan(ticksAtKill);
      await expectNothingLostOrDoubled(spec, rolloutId);
    } finally {
      await second.stop();
    }
  });

  test('the Temporal dev server restarted on its SQLite file mid-rollout: the rollout finishes correctly', async () => {
    const taskQueue = 'server-restart';
    const worker = await testWorker(servers, taskQueue);
    const spec = testSpec({
      interval: '500ms',
      probe: { duration: '200ms' },
      policy: { probingTicks: 2, promoteAt: 12 },
    });
    const rolloutId = `rollout-${spec.service}-${spec.version}`;
    await worker.runUntil(async () => {
      const handle = await rollouts.start(spec, { taskQueue });
      await waitForTicks(rolloutId, 4);
      await servers.temporal.restart();
      const result = await handle.result();
      expect(result.outcome).toBe('promoted');
    });
    await expectNothingLostOrDoubled(spec, rolloutId);
  });
});
