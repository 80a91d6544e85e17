/**
 * End to end, real everything on loopback: the local stack (Temporal dev server, FerretDB, the
 * sample shop as baseline and canary, the built-in router, the worker with the real components,
 * the API) and rollouts started through the real CLI or client.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { MongoClient } from 'mongodb';
import { stringify } from 'yaml';
import { request } from 'undici';
import type { ShopFaults } from '../../examples/shop/faults';
import { parseRolloutDocument } from '../../rollout/document';
import { RolloutClient } from '../../client/rollout-client';
import { CHECKOUT_REGRESSION, demoRolloutDocument, NO_FAULTS } from '../../devstack/demo-rollout';
import { MONGO_DB, type LocalStack } from '../../devstack/local-stack';
import { RolloutStore } from '../../client/rollout-store';
import { statusQuery } from '../../rollout/messages';
import type { TrafficPolicy } from '../../rollout/spec';
import type { RolloutResult, RolloutStatus, TickRecord } from '../../rollout/types';
import { runCli } from '../support/cli';
import { startE2eStack, stopE2eStack } from './local-stack-fixture';

let dataDir: string;
let stack: LocalStack;
let client: Client;
let mongo: MongoClient;
let counter = 0;

const FAST: Partial<TrafficPolicy> = {
  probingTicks: 2,
  initialShare: 10,
  stepUp: 30,
  recoveryTicks: 1,
  cooldownTicks: 2,
};

beforeAll(async () => {
  ({ dataDir, stack, client, mongo } = await startE2eStack('canary-e2e-', 600));
}, 240_000);

afterAll(() => stopE2eStack({ dataDir, stack, client, mongo }));

function rolloutFile(policy: Partial<TrafficPolicy> = FAST): { file: string; id: string; version: string } {
  counter += 1;
  const version = `2.0.${counter}-e2e`;
  const file = path.join(dataDir, `${version}.yaml`);
  writeFileSync(file, stringify(demoRolloutDocument(stack, { version, intervalMs: 2000, policy })));
  return { file, id: `rollout-shop-${version}`, version };
}

async function setFaults(faults: ShopFaults): Promise<void> {
  await stack.injectCanaryFaults(faults);
}

async function ticksOf(id: string): Promise<TickRecord[]> {
  return new RolloutStore(mongo.db(MONGO_DB)).listTicks(id);
}

async function waitForStatus(
  id: string,
  done: (status: RolloutStatus) => boolean,
  timeoutMs = 120_000,
): Promise<RolloutStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await client.workflow
      .getHandle(id)
      .query(statusQuery)
      .catch(() => undefined);
    if (status && done(status)) return status;
    if (Date.now() > deadline) throw new Error(`rollout ${id} did not reach the expected state in time`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function routerShare(): Promise<number> {
  const response = await request(`${stack.proxyAdminUrl}/weight`, {
    headers: { authorization: `Bearer ${stack.state.proxyToken}` },
  });
  return ((await response.body.json()) as { share: number }).share;
}

/** Requests that reached each upstream through the router, from the router's own metrics. */
async function realTrafficByUpstream(): Promise<{ baseline: number; canary: number }> {
  const text = await (await request(`${stack.proxyAdminUrl}/metrics`)).body.text();
  const sum = (upstream: string) =>
    text
      .split('\n')
      .filter((line) => line.startsWith(`canary_proxy_requests_total{upstream="${upstream}"`))
      .reduce((total, line) => total + Number(line.split(' ').at(-1)), 0);
  return { baseline: sum('baseline'), canary: sum('canary') };
}

const RECOVERY_TIMEOUT_MS = 240_000;

const env = () => ({ TEMPORAL_ADDRESS: stack.temporal.address });

describe('end to end on the local stack', () => {
  test('a healthy canary is promoted; `canary rollout start --wait` exits 0 and the router gives it all traffic', async () => {
    await setFaults(NO_FAULTS);
    const { file, id } = rolloutFile();
    const run = await runCli(['rollout', 'start', '-f', file, '--wait'], { env: env(), timeout: 240_000 });
    expect(run.stderr).toBe('');
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toContain(`${id}: promoted`);
    expect(await routerShare()).toBe(100);
    const ticks = await ticksOf(id);
    expect(ticks.every((tick) => tick.verdict.status !== 'anomalous')).toBe(true);
    expect(ticks.at(-1)?.action).toBe('promote');
  });

  test('a latency regression on checkout is found, blamed on checkout, and the canary rolled back at once: it is severe (exit 1)', async () => {
    await setFaults(NO_FAULTS);
    const { file, id } = rolloutFile({ ...FAST, stepUp: 10, maxAnomalies: 2 });
    const started = await runCli(['rollout', 'start', '-f', file], { env: env() });
    expect(started.exitCode).toBe(0);
    await waitForStatus(id, (status) => status.share >= 20);
    await setFaults(CHECKOUT_REGRESSION);
    const watch = await runCli(['rollout', 'watch', id], { env: env(), timeout: 240_000 });
    expect(watch.exitCode).toBe(1);
    const ticks = await ticksOf(id);
    // 250 ms on a millisecond checkout is far beyond the 1.5x severe ratio: rolled back at the
    // first verdict that grades it severe, at most one tick after the first detection.
    const story = ticks.map(({ tick, verdict, action, reason }) => ({
      tick,
      status: verdict.status,
      action,
      reason,
    }));
    const found = story.find((tick) => tick.status === 'anomalous');
    const rolledBack = story.find((tick) => tick.action === 'rollback');
    // The whole story in the message when this fails: which ticks found what and did what.
    expect(found && rolledBack ? '' : JSON.stringify(story)).toBe('');
    expect(rolledBack?.reason).toMatch(/^severe regression: checkout latency_ms at /);
    expect((rolledBack?.tick ?? Infinity) - (found?.tick ?? 0)).toBeLessThanOrEqual(1);
    const anomalies = ticks.flatMap((tick) => tick.verdict.anomalies);
    expect(anomalies.length).toBeGreaterThan(0);
    expect(
      anomalies.every((anomaly) => anomaly.action === 'checkout' && anomaly.metric === 'latency_ms'),
    ).toBe(true);
    expect(anomalies[0]?.summary).toMatch(/^checkout .*latency \+\d+ %/);
    expect(await routerShare()).toBe(0);
  });

  test('an error-rate regression on checkout is found and blamed on checkout, and the canary rolled back', async () => {
    await setFaults(NO_FAULTS);
    const document = parseRolloutDocument(
      stringify(
        demoRolloutDocument(stack, {
          version: `2.1.${++counter}-e2e`,
          intervalMs: 2000,
          policy: { ...FAST, stepUp: 10, maxAnomalies: 2 },
        }),
      ),
    );
    const handle = await new RolloutClient(client).start(document);
    await waitForStatus(handle.workflowId, (status) => status.share >= 20);
    await setFaults({ ...NO_FAULTS, errors: [{ action: 'checkout', rate: 0.4 }] });
    const result = await handle.result();
    expect(result.outcome).toBe('rolled_back');
    const anomalies = (await ticksOf(handle.workflowId)).flatMap((tick) => tick.verdict.anomalies);
    expect(anomalies.some((anomaly) => anomaly.action === 'checkout' && anomaly.metric === 'error')).toBe(
      true,
    );
    expect(anomalies.every((anomaly) => anomaly.action === 'checkout')).toBe(true);
  });

  test('a regression caught while probing at 0 % reaches no real user', async () => {
    await setFaults(CHECKOUT_REGRESSION);
    const before = await realTrafficByUpstream();
    const { file, id } = rolloutFile({ ...FAST, probingTicks: 4, maxAnomalies: 2 });
    // Real users keep coming through the router during the whole rollout.
    let done = false;
    const users = (async () => {
      while (!done) {
        await request(`${stack.proxyUrl}/products/7`).then(
          (response) => response.body.dump(),
          () => undefined,
        );
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    const run = await runCli(['rollout', 'start', '-f', file, '--wait'], { env: env(), timeout: 240_000 });
    done = true;
    await users;
    expect(run.exitCode).toBe(1);
    const ticks = await ticksOf(id);
    expect(ticks.every((tick) => tick.shareAfter === 0)).toBe(true);
    const after = await realTrafficByUpstream();
    expect(after.baseline - before.baseline).toBeGreaterThan(100);
    expect(after.canary - before.canary).toBe(0);
    await setFaults(NO_FAULTS);
  });

  test(
    'the worker killed with SIGKILL mid-rollout and started again: the rollout finishes correctly',
    async () => {
      await setFaults(NO_FAULTS);
      const { file, id } = rolloutFile({ ...FAST, stepUp: 15 });
      expect((await runCli(['rollout', 'start', '-f', file], { env: env() })).exitCode).toBe(0);
      await waitForStatus(id, (status) => status.tick >= 3);
      await stack.worker.kill();
      await new Promise((resolve) => setTimeout(resolve, 3000));
      await stack.worker.start();
      const result = (await client.workflow.getHandle(id).result()) as RolloutResult;
      expect(result.outcome).toBe('promoted');
      const ticks = await ticksOf(id);
      expect(ticks.map((tick) => tick.tick)).toEqual(ticks.map((_, index) => index + 1));
      const raises = ticks
        .filter((tick) => tick.action === 'raise' || tick.action === 'start')
        .map((tick) => tick.shareAfter);
      expect(raises).toEqual([10, 25, 40, 55, 70, 85]);
      expect(await routerShare()).toBe(100);
    },
    // A killed worker's activities are retried after their timeouts (heartbeat 15 s, routing 30 s):
    // on a loaded CI machine the rollout needs more than the default two minutes to finish.
    RECOVERY_TIMEOUT_MS,
  );

  test(
    'the Temporal dev server restarted on its SQLite file mid-rollout: the rollout finishes correctly',
    async () => {
      await setFaults(NO_FAULTS);
      const { file, id } = rolloutFile();
      expect((await runCli(['rollout', 'start', '-f', file], { env: env() })).exitCode).toBe(0);
      await waitForStatus(id, (status) => status.tick >= 3);
      await stack.temporal.restart();
      const result = (await client.workflow.getHandle(id).result()) as RolloutResult;
      expect(result.outcome).toBe('promoted');
      const ticks = await ticksOf(id);
      expect(ticks.map((tick) => tick.tick)).toEqual(ticks.map((_, index) => index + 1));
      expect(await routerShare()).toBe(100);
    },
    RECOVERY_TIMEOUT_MS,
  );
});
