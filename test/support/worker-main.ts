/**
 * A rollout worker in its own process, so a test can SIGKILL it mid-rollout and start another.
 * Configured by environment: TEMPORAL_ADDRESS, CANARY_MONGO_URI, CANARY_MONGO_DB, TASK_QUEUE,
 * WORKFLOW_BUNDLE (path of prebuilt code), and WORKER_COMPONENTS: `doubles` (the default: every
 * component a test double) or `real-routing`: the real routers, alert dispatcher and sinks and
 * tick store on the test's servers (with the secrets the specs name), while the probe sleeps and
 * verdicts follow the spec's script, so a rollout takes seconds and a fault meets a known tick.
 */
import { readFileSync } from 'node:fs';
import { MongoClient } from 'mongodb';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import type { ActivityDeps } from '../../activities/ports';
import { createLogger } from '../../platform/logger';
import { createComponents } from '../../workers/components';
import { readWorkerConfig } from '../../workers/main';
import { createRolloutWorker } from '../../workers/rollout-worker';
import { testDeps } from './doubles';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

async function components(): Promise<{ deps: ActivityDeps; close: () => Promise<unknown> }> {
  if (process.env.WORKER_COMPONENTS === 'real-routing') {
    const real = await createComponents(
      readWorkerConfig(process.env).components,
      createLogger('test-worker', 'warn'),
    );
    const { profiles, metrics, prober, analyzer } = testDeps(real.db);
    return { deps: { ...real.deps, profiles, metrics, prober, analyzer }, close: () => real.close() };
  }
  const mongo = await MongoClient.connect(required('CANARY_MONGO_URI'));
  return { deps: testDeps(mongo.db(required('CANARY_MONGO_DB'))), close: () => mongo.close() };
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const { deps, close: closeComponents } = await components();
  const connection = await NativeConnection.connect({ address: required('TEMPORAL_ADDRESS') });
  const worker = await createRolloutWorker({
    connection,
    taskQueue: required('TASK_QUEUE'),
    deps,
    workflowBundle: { code: readFileSync(required('WORKFLOW_BUNDLE'), 'utf8') },
  });
  process.once('SIGTERM', () => worker.shutdown());
  const running = worker.run();
  console.log('worker running');
  await running;
  await connection.close();
  await closeComponents();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
