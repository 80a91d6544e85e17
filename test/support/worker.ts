import type { Worker } from '@temporalio/worker';
import { workflowBundle, type TestServers } from './environment';
import { testDeps } from './doubles';
import { createRolloutWorker } from '../../workers/rollout-worker';

export async function testWorker(
  servers: TestServers,
  taskQueue: string,
  options: { honourProbeDuration?: boolean } = {},
): Promise<Worker> {
  return createRolloutWorker({
    connection: servers.env.nativeConnection,
    taskQueue,
    deps: testDeps(servers.db, options),
    workflowBundle: await workflowBundle(),
  });
}
