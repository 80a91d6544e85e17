import { WorkflowFailedError } from '@temporalio/client';
import { RolloutClient } from '../../client/rollout-client';
import { createRolloutWorker } from '../../workers/rollout-worker';
import { emptyWorkerPolicy } from '../../rollout/worker-policy';
import { appliedWeights, testDeps } from '../support/doubles';
import { startTestServers, workflowBundle, type TestServers } from '../support/environment';
import { testSpec } from '../support/specs';

let servers: TestServers;

beforeAll(async () => {
  servers = await startTestServers('worker-policy');
});

afterAll(async () => {
  await servers?.stop();
});

async function failureOf(run: Promise<unknown>): Promise<string> {
  const error = await run.then(
    () => undefined,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(WorkflowFailedError);
  return (error as WorkflowFailedError).cause?.message ?? '';
}

describe("the rollout workflow checks its spec against the worker's policy", () => {
  test('a spec naming a secret the worker does not allow fails at start, before the router is touched', async () => {
    const taskQueue = 'policy-secret';
    const worker = await createRolloutWorker({
      connection: servers.env.nativeConnection,
      taskQueue,
      deps: testDeps(servers.db),
      workflowBundle: await workflowBundle(),
    });
    const spec = testSpec({
      router: { kind: 'builtin', adminUrl: 'http://10.1.2.3:9000', tokenEnv: 'AWS_SECRET_ACCESS_KEY' },
    });
    const message = await worker.runUntil(async () =>
      failureOf((await new RolloutClient(servers.env.client).start(spec, { taskQueue })).result()),
    );
    expect(message).toBe(
      "router.tokenEnv: AWS_SECRET_ACCESS_KEY is not in the worker's allowed secret names (this development worker also allows names starting with CANARY_); " +
        "router.adminUrl: http://10.1.2.3:9000 is not in the worker's allowed router endpoints (this development worker also allows loopback hosts)",
    );
    expect(await appliedWeights(servers.db, `rollout-shop-${spec.version}`)).toEqual([]);
  });

  test('a production worker refuses an alert sink host it does not list; one it lists runs', async () => {
    const taskQueue = 'policy-production';
    const workerPolicy = { ...emptyWorkerPolicy('production'), alertHosts: ['hooks.internal'] };
    const worker = await createRolloutWorker({
      connection: servers.env.nativeConnection,
      taskQueue,
      deps: { ...testDeps(servers.db), workerPolicy },
      workflowBundle: await workflowBundle(),
    });
    const rollouts = new RolloutClient(servers.env.client);
    const sink = (url: string) => ({ alerts: { sinks: [{ kind: 'alertmanager', url }] } });
    const refused = testSpec({ ...sink('http://127.0.0.1:9093'), policy: { probingTicks: 0, promoteAt: 5 } });
    const allowed = testSpec({
      ...sink('http://hooks.internal:9093'),
      policy: { probingTicks: 0, promoteAt: 5 },
    });
    await worker.runUntil(async () => {
      expect(await failureOf((await rollouts.start(refused, { taskQueue })).result())).toBe(
        "alerts.sinks[0].url: http://127.0.0.1:9093 is not in the worker's allowed alert sink hosts",
      );
      expect((await (await rollouts.start(allowed, { taskQueue })).result()).outcome).toBe('promoted');
    });
  });
});
