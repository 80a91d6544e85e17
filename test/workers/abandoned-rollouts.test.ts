import { readFileSync } from 'node:fs';
import path from 'node:path';
import { RolloutClient } from '../../client/rollout-client';
import { RolloutStore } from '../../client/rollout-store';
import { ManagedProcess } from '../../devstack/managed-process';
import { projectRoot } from '../../devstack/tools';
import { HttpReceiver } from '../alerts/receiver';
import { until } from '../dashboard/support';
import { startTestServers, type TestServers } from '../support/environment';
import { testSpec } from '../support/specs';
import { testWorker } from '../support/worker';

let servers: TestServers;
let receiver: HttpReceiver;

beforeAll(async () => {
  [servers, receiver] = await Promise.all([startTestServers('abandoned'), HttpReceiver.start()]);
});

afterAll(async () => {
  await receiver?.stop();
  await servers?.stop();
});

const CHECKED = 'checked for rollouts that ended with the canary in traffic';

/** The real worker process (workers/main.ts, real components) against the test's servers. */
async function startWorker(name: string): Promise<{ process: ManagedProcess; log: () => string }> {
  const logFile = path.join(servers.dataDir, `${name}.log`);
  const log = () => readFileSync(logFile, 'utf8');
  const worker = await ManagedProcess.start({
    name,
    command: process.execPath,
    args: ['--import', 'tsx', path.join(projectRoot, 'workers/main.ts')],
    env: {
      TEMPORAL_ADDRESS: servers.temporal.address,
      CANARY_MONGO_URI: servers.ferret.uri,
      CANARY_MONGO_DB: servers.db.databaseName,
      CANARY_HOOK_SECRET: 'hmac-secret-for-the-test',
      LOG_LEVEL: 'info',
    },
    cwd: projectRoot,
    logFile,
    readyTimeoutMs: 180_000,
    isReady: async () => log().includes(CHECKED),
  });
  return { process: worker, log };
}

test('a starting worker alerts, once and critical, a rollout terminated with the canary at >= 10 %', async () => {
  const rollouts = new RolloutClient(servers.env.client);
  const store = new RolloutStore(servers.db);
  const sinks = [{ kind: 'webhook', url: `${receiver.url}/hook`, secretEnv: 'CANARY_HOOK_SECRET' }];
  const inTraffic = testSpec({
    policy: { probingTicks: 1, initialShare: 10, stepUp: 1, promoteAt: 100 },
    alerts: { sinks },
  });
  const probing = testSpec({ policy: { probingTicks: 1000 }, alerts: { sinks } });
  const worker = await testWorker(servers, 'rollouts');
  const [terminated, runId] = await worker.runUntil(async () => {
    const handle = await rollouts.start(inTraffic, { taskQueue: 'rollouts' });
    const atZero = await rollouts.start(probing, { taskQueue: 'rollouts' });
    await until(
      () => store.lastTick(handle.workflowId),
      (tick) => (tick?.shareAfter ?? 0) >= 10,
      60_000,
    );
    await until(
      () => store.lastTick(atZero.workflowId),
      (tick) => tick !== null,
      60_000,
    );
    await handle.terminate('pressed terminate instead of abort');
    await atZero.terminate('pressed terminate during probing');
    return [handle.workflowId, (await handle.describe()).runId] as const;
  });
  receiver.reset();

  const first = await startWorker('worker-1');
  const key = `${terminated}/abandoned/${runId}`;
  try {
    expect(receiver.requests.map((r) => r.headers['x-canary-event'])).toEqual([key]);
    const body = JSON.parse(receiver.requests[0]!.body) as {
      kind: string;
      severity: string;
      summary: string;
    };
    expect(body).toMatchObject({ kind: 'abandoned', severity: 'critical' });
    expect(body.summary).toMatch(/terminated with the canary at 1\d % of real traffic/);
    const checked = first
      .log()
      .split('\n')
      .find((line) => line.includes(CHECKED));
    expect(checked).toContain(terminated);
    expect(checked).not.toContain(`rollout-shop-${probing.version}`);
  } finally {
    await first.process.stop();
  }

  const second = await startWorker('worker-2');
  await second.process.stop();
  expect(receiver.requests.map((r) => r.headers['x-canary-event'])).toEqual([key]);
});
