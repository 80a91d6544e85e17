import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { RolloutClient } from '../../client/rollout-client';
import { until } from '../dashboard/support';
import { runCli } from '../support/cli';
import { appliedWeights } from '../support/doubles';
import { startTestServers, type TestServers } from '../support/environment';
import { testSpec } from '../support/specs';
import { testWorker } from '../support/worker';

let servers: TestServers;

beforeAll(async () => {
  servers = await startTestServers('cli-abort');
});

afterAll(async () => {
  await servers?.stop();
});

const env = (extra: Record<string, string> = {}) => ({
  TEMPORAL_ADDRESS: servers.temporal.address,
  ...extra,
});

describe('canary rollout abort', () => {
  test('cancels the rollout: the router ends at 0 % and the result is aborted', async () => {
    const taskQueue = 'rollouts';
    const worker = await testWorker(servers, taskQueue);
    const rollouts = new RolloutClient(servers.env.client);
    const spec = testSpec({ policy: { probingTicks: 1, initialShare: 10, stepUp: 5, promoteAt: 100 } });
    await worker.runUntil(async () => {
      const handle = await rollouts.start(spec, { taskQueue });
      await until(
        () => rollouts.status(handle.workflowId),
        (status) => status.share >= 15,
      );
      const run = await runCli(['rollout', 'abort', handle.workflowId, '--wait'], { env: env() });
      expect(run.stderr).toBe('');
      expect(run.stdout).toContain(`abort sent to ${handle.workflowId}`);
      expect(run.stdout).toMatch(/: aborted after \d+ ticks/);
      expect(run.exitCode).toBe(2);
      const result = await handle.result();
      expect(result.outcome).toBe('aborted');
      expect(result.finalShare).toBe(0);
      const weights = await appliedWeights(servers.db, handle.workflowId);
      expect(Math.max(...weights)).toBeGreaterThanOrEqual(15);
      expect(weights.at(-1)).toBe(0);
    });
    const again = await runCli(['rollout', 'abort', `rollout-shop-${spec.version}`], { env: env() });
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toContain('no rollout with that id');
  });

  test('the help names abort as the way to stop a rollout, not terminate', async () => {
    const help = await runCli(['rollout', '--help'], { env: env() });
    expect(help.stdout).toMatch(/abort \[options\] <id>\s+cancel the rollout: the canary is taken out/);
  });
});

describe('canary rollout start with a worker policy in its environment', () => {
  test("refuses a spec the workers' policy refuses, naming the field and the rule, exit 2", async () => {
    const file = path.join(servers.dataDir, 'policy-refused.yaml');
    writeFileSync(
      file,
      stringify({
        apiVersion: 'canary.dev/v1',
        kind: 'Rollout',
        metadata: { service: 'shop', version: `policy-${Date.now().toString(36)}` },
        spec: {
          targets: { baseline: { url: 'http://10.0.0.1:8081' }, canary: { url: 'http://10.0.0.2:8082' } },
          router: { kind: 'builtin', adminUrl: 'http://proxy.internal:9000', tokenEnv: 'CANARY_X' },
        },
      }),
    );
    const policyFile = path.join(servers.dataDir, 'worker-policy.yaml');
    writeFileSync(policyFile, 'routerEndpoints: [proxy.internal:9000]\nsecretNames: [CANARY_PROXY_TOKEN]\n');
    const run = await runCli(['rollout', 'start', '-f', file], {
      env: env({ CANARY_WORKER_POLICY: policyFile }),
    });
    expect(run.exitCode).toBe(2);
    expect(run.stderr.trim()).toBe(
      "error: spec.router.tokenEnv: CANARY_X is not in the worker's allowed secret names",
    );
  });
});
