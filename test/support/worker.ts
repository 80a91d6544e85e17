import type { Worker } from '@temporalio/worker';
import { workflowBundle, type TestServers } from './environment';
import { testDeps } from './doubles';
import type { ActivityDeps } from '../../activities/ports';
import { createRolloutWorker } from '../../workers/rollout-worker';

export async function testWorker(
  servers: TestServers,
  taskQueue: string,
  options: { honourProbeDuration?: boolean; deps?: Partial<ActivityDeps> } = {},
): Promise<Worker> {
  return createRolloutWorker({
    connection: servers.env.nativeConnection,
    taskQueue,
    deps: { ...testDeps(servers.db, options), ...options.deps },
    workflowBundle: await workflowBundle(),
  });
}
