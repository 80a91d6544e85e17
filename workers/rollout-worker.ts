import { type NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createProbeActivities, createRolloutActivities, type ActivityDeps } from '../activities';
import { ROLLOUT_TASK_QUEUE } from '../rollout/messages';
import type { WorkerMetrics } from './worker-metrics';

export interface RolloutWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue?: string;
  /** The rollout activities' and the probe's: probes run here unless a spec sends them elsewhere. */
  deps: ActivityDeps;
  /** A prebuilt bundle (tests, benchmarks) saves the seconds webpack needs per worker. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  maxConcurrentActivityTaskExecutions?: number;
  maxConcurrentWorkflowTaskExecutions?: number;
  maxCachedWorkflows?: number;
  /** Prometheus metrics measured by an activity interceptor (serve its registry with serveMetrics). */
  metrics?: WorkerMetrics;
}

export const WORKFLOWS_PATH = require.resolve('../workflows');

/** The worker of the `rollouts` task queue: rollout workflows and their activities. */
export async function createRolloutWorker(options: RolloutWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace ?? 'default',
    taskQueue: options.taskQueue ?? ROLLOUT_TASK_QUEUE,
    activities: { ...createRolloutActivities(options.deps), ...createProbeActivities(options.deps) },
    ...(options.metrics ? { interceptors: { activity: [options.metrics.activityInterceptor()] } } : {}),
    ...(options.workflowBundle
      ? { workflowBundle: options.workflowBundle }
      : { workflowsPath: WORKFLOWS_PATH }),
    maxConcurrentActivityTaskExecutions: options.maxConcurrentActivityTaskExecutions ?? 200,
    maxConcurrentWorkflowTaskExecutions: options.maxConcurrentWorkflowTaskExecutions ?? 40,
    maxCachedWorkflows: options.maxCachedWorkflows ?? 1000,
    // Probes heartbeat every second; a cancellation (a person rolled back) arrives in the answer
    // to a heartbeat, so the SDK's default throttle (0.8 x heartbeat timeout) would delay it.
    maxHeartbeatThrottleInterval: '1 second',
    defaultHeartbeatThrottleInterval: '1 second',
    shutdownGraceTime: '5 seconds',
  });
}
