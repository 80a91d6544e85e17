#!/usr/bin/env node
/**
 * The worker of the `loadgen` task queue: it serves only the `probe` activity, so probe capacity
 * grows by running more of these (each probe runs the engine in its own threads). A rollout fans
 * a probe out by scheduling several `probe` activities on this queue, each with
 * `shard: { index, count }`; the prober merges the shards' results exactly into probe_results.
 *
 * Environment: TEMPORAL_ADDRESS (127.0.0.1:7233), TEMPORAL_NAMESPACE (default), CANARY_MONGO_URI,
 * CANARY_MONGO_DB, LOADGEN_ALLOWED_TARGETS, LOADGEN_MAX_* limits, LOADGEN_PROBES_PER_WORKER (2).
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { MongoClient } from 'mongodb';
import { createActivities, type ActivityDeps } from '../activities';
import type { Prober } from '../activities/ports';
import { createLogger } from '../lib/logger';
import { TargetAllowlist } from '../loadgen/allowlist';
import { limitsFromEnv } from '../loadgen/options';
import { LoadgenProber } from '../loadgen/prober';
import { LOADGEN_TASK_QUEUE } from '../workflows/messages';

export interface LoadgenWorkerOptions {
  connection: NativeConnection;
  namespace?: string;
  taskQueue?: string;
  prober: Prober;
  /** Probes one worker runs at once; each uses engine threads, so keep it near the core count. */
  maxConcurrentProbes?: number;
}

/** Ports this queue never serves: only `probe` is registered, so these are never reached. */
function probeOnlyDeps(prober: Prober): ActivityDeps {
  const notHere = (port: string) => () => {
    throw new Error(`${port} is not served on the ${LOADGEN_TASK_QUEUE} task queue`);
  };
  return {
    prober,
    profiles: { select: notHere('profiles') },
    metrics: { collect: notHere('metrics') },
    analyzer: { analyze: notHere('analyzer') },
    routers: { routerFor: notHere('routers') },
    alerts: { dispatch: notHere('alerts') },
    ticks: { recordTick: notHere('ticks') },
  };
}

export async function createLoadgenWorker(options: LoadgenWorkerOptions): Promise<Worker> {
  const activities = createActivities(probeOnlyDeps(options.prober));
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace ?? 'default',
    taskQueue: options.taskQueue ?? LOADGEN_TASK_QUEUE,
    activities: { probe: (input: Parameters<typeof activities.probe>[0]) => activities.probe(input) },
    maxConcurrentActivityTaskExecutions: options.maxConcurrentProbes ?? 2,
    // A cancellation reaches an activity in the answer to a heartbeat: the SDK's default throttle
    // (0.8 x heartbeat timeout) would hold it back for seconds, the probe heartbeats every second.
    maxHeartbeatThrottleInterval: '1 second',
    defaultHeartbeatThrottleInterval: '1 second',
    shutdownGraceTime: '5 seconds',
  });
}

async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const logger = createLogger('loadgen-worker');
  const mongo = await MongoClient.connect(env.CANARY_MONGO_URI ?? 'mongodb://127.0.0.1:27017/', {
    serverSelectionTimeoutMS: 10_000,
  });
  const connection = await NativeConnection.connect({ address: env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' });
  const prober = new LoadgenProber({
    db: mongo.db(env.CANARY_MONGO_DB ?? 'canary'),
    allowlist: TargetAllowlist.parse(env.LOADGEN_ALLOWED_TARGETS, 'LOADGEN_ALLOWED_TARGETS'),
    limits: limitsFromEnv(env),
    logger,
  });
  const worker = await createLoadgenWorker({
    connection,
    namespace: env.TEMPORAL_NAMESPACE ?? 'default',
    prober,
    maxConcurrentProbes: Number(env.LOADGEN_PROBES_PER_WORKER ?? '2'),
  });
  logger.info({ taskQueue: LOADGEN_TASK_QUEUE }, 'loadgen worker running');
  try {
    await worker.run();
  } finally {
    await connection.close();
    await mongo.close();
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  });
}
