import path from 'node:path';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { WorkflowFailedError } from '@temporalio/client';
import { createLoadgenWorker } from '../../workers/loadgen-worker';
import { LoadgenProber, PROBE_RESULTS_COLLECTION } from '../../loadgen/prober';
import { defaultOntology } from '../../loadgen/profile-sessions';
import { parseProfile } from '../../profiles/profile-schema';
import { ProfileStore } from '../../profiles/store';
import type { ProbeRequest } from '../../activities/ports';
import { startTestServers, type TestServers } from '../support/environment';
import { profile, ShopServer } from './support/shop-server';
import type { fanOutProbe } from './workflows/fan-out';

let servers: TestServers;
let baseline: ShopServer;
let canary: ShopServer;
let loadgenWorker: Worker;
let workflowWorker: Worker;
let running: Promise<void>;

const WORKFLOW_QUEUE = 'loadgen-test-workflows';

beforeAll(async () => {
  [servers, baseline, canary] = await Promise.all([
    startTestServers('loadgen'),
    ShopServer.start(),
    ShopServer.start(),
  ]);
  await new ProfileStore(servers.db).put(
    parseProfile(
      profile('visitor', [
        { t: 0, action: 'page_view' },
        { t: 30, action: 'search', data: { query: 'chair' } },
      ]),
      defaultOntology(),
    ),
  );
  const bundle = await bundleWorkflowCode({
    workflowsPath: path.join(__dirname, 'workflows', 'fan-out.ts'),
    logger: {
      log: () => undefined,
      trace: () => undefined,
      debug: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      error: console.error,
    },
  });
  loadgenWorker = await createLoadgenWorker({
    connection: servers.env.nativeConnection,
    prober: new LoadgenProber({ db: servers.db, threads: 1 }),
  });
  workflowWorker = await Worker.create({
    connection: servers.env.nativeConnection,
    taskQueue: WORKFLOW_QUEUE,
    workflowBundle: bundle,
  });
  running = Promise.all([loadgenWorker.run(), workflowWorker.run()]).then(() => undefined);
});

afterAll(async () => {
  loadgenWorker?.shutdown();
  workflowWorker?.shutdown();
  await running;
  await Promise.all([servers?.stop(), baseline?.close(), canary?.close()]);
});

const request = (tick: number, durationMs: number): ProbeRequest => ({
  rolloutId: 'fan-out',
  tick,
  targets: { baseline: { url: baseline.url }, canary: { url: canary.url } },
  profileIds: ['visitor'],
  durationMs,
  concurrency: 4,
  seed: 3,
});

test('probes fanned out on the loadgen queue heartbeat and merge into one probe_results document', async () => {
  const summaries = await servers.env.client.workflow.execute<typeof fanOutProbe>('fanOutProbe', {
    taskQueue: WORKFLOW_QUEUE,
    workflowId: 'fan-out-1',
    args: [request(1, 1500), 2],
  });
  const [first, second] = summaries;
  const document = await servers.db
    .collection(PROBE_RESULTS_COLLECTION)
    .findOne({ rolloutId: 'fan-out', tick: 1 });
  expect(document?.shards).toBe(2);
  const merged = (document?.stats as { target: string; successes: number }[])
    .filter((entry) => entry.target === 'baseline')
    .reduce((sum, entry) => sum + entry.successes, 0);
  expect(merged).toBe((first?.requests.baseline ?? 0) + (second?.requests.baseline ?? 0));
  expect(merged).toBeGreaterThan(20);
});

test('cancelling the workflow stops its probes within two seconds (a heartbeat, throttled to 1 s, carries it)', async () => {
  const handle = await servers.env.client.workflow.start('fanOutProbe', {
    taskQueue: WORKFLOW_QUEUE,
    workflowId: 'fan-out-2',
    args: [request(2, 60_000), 2],
  });
  while (baseline.requests.filter((seen) => seen.at > Date.now() - 200).length === 0)
    await new Promise((resolve) => setTimeout(resolve, 100));
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const cancelledAt = Date.now();
  await handle.cancel();
  await expect(handle.result()).rejects.toThrow(WorkflowFailedError);
  // The activities learn of the cancellation from a heartbeat (throttled to 1 s) and stop.
  await new Promise((resolve) => setTimeout(resolve, 2500));
  const late = baseline.requests.filter((seen) => seen.at > cancelledAt + 2000);
  expect(late).toHaveLength(0);
});
