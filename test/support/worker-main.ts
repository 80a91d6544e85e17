/**
 * A rollout worker in its own process, wired with the test doubles, so a test can SIGKILL it
 * mid-rollout and start another. Configured by environment:
 * TEMPORAL_ADDRESS, CANARY_MONGO_URI, CANARY_MONGO_DB, TASK_QUEUE, WORKFLOW_BUNDLE (path of prebuilt code).
 */
import { readFileSync } from 'node:fs';
import { MongoClient } from 'mongodb';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { createRolloutWorker } from '../../workers/rollout-worker';
import { testDeps } from './doubles';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const mongo = await MongoClient.connect(required('CANARY_MONGO_URI'));
  const connection = await NativeConnection.connect({ address: required('TEMPORAL_ADDRESS') });
  const worker = await createRolloutWorker({
    connection,
    taskQueue: required('TASK_QUEUE'),
    deps: testDeps(mongo.db(required('CANARY_MONGO_DB'))),
    workflowBundle: { code: readFileSync(required('WORKFLOW_BUNDLE'), 'utf8') },
  });
  process.once('SIGTERM', () => worker.shutdown());
  const running = worker.run();
  console.log('worker running');
  await running;
  await connection.close();
  await mongo.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
