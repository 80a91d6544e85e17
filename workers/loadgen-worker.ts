/**
 * The worker of the `loadgen` task queue: it serves only the `probe` activity, so probe capacity
 * grows by running more of these (each probe runs the engine in its own threads). A rollout fans
 * a probe out by scheduling several `probe` activities on this queue, each with
 * `shard: { index, count }`; the prober merges the shards' results exactly into probe_results.
 * Run it with `workers/main.ts --queues loadgen`.
 */
import { type NativeConnection, Worker } from '@temporalio/worker';
import { createProbeActivities } from '../activities';
import type { Prober } from '../activities/ports';
import { LOADGEN_TASK_QUEUE } from '../rollout/messages';
import type { WorkerMetrics } from './worker-metrics';

export interface LoadgenWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue?: string;
  prober: Prober;
  /** Probes one worker runs at once; each uses engine threads, so keep it near the core count. */
  maxConcurrentProbes?: number;
  /** Probe request counts and activity durations for Prometheus. */
  metrics?: WorkerMetrics;
}

export async function createLoadgenWorker(options: LoadgenWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace ?? 'default',
    taskQueue: options.taskQueue ?? LOADGEN_TASK_QUEUE,
    activities: createProbeActivities({ prober: options.prober }),
    ...(options.metrics ? { interceptors: { activity: [options.metrics.activityInterceptor()] } } : {}),
    maxConcurrentActivityTaskExecutions: options.maxConcurrentProbes ?? 2,
    // A cancellation reaches an activity in the answer to a heartbeat: the SDK's default throttle
    // (0.8 x heartbeat timeout) would hold it back for seconds, the probe heartbeats every second.
    maxHeartbeatThrottleInterval: '1 second',
    defaultHeartbeatThrottleInterval: '1 second',
    shutdownGraceTime: '5 seconds',
  });
}
