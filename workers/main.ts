#!/usr/bin/env node
/**
 * The worker process: `node dist/workers/main.js [--queues rollouts,loadgen]`.
 * `rollouts` runs rollout workflows and all their activities; `loadgen` serves only probes, for
 * rollouts whose spec sends probes there (probe.taskQueue), so probe capacity scales with the
 * number of these workers.
 *
 * Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY / TEMPORAL_TLS_* (see
 * platform/temporal-connection.ts), CANARY_MONGO_URI, CANARY_MONGO_DB, CANARY_ONTOLOGY,
 * LOADGEN_ALLOWED_TARGETS, LOADGEN_MAX_*, LOADGEN_PROBES_PER_WORKER, the router tokens the
 * rollout specs name (CANARY_PROXY_TOKEN by default), the alert sinks' secrets they name
 * (secretEnv, urlEnv, bearerTokenEnv), and METRICS_PORT: serve Prometheus metrics on
 * http://0.0.0.0:METRICS_PORT/metrics (off when unset).
 */
import type { Worker } from '@temporalio/worker';
import { Command, InvalidArgumentError } from 'commander';
import { createLogger } from '../platform/logger';
import { serveMetrics, type MetricsServer } from '../platform/metrics-server';
import { installTemporalRuntime } from '../platform/temporal-logging';
import { connectWorker, temporalTargetFromEnv } from '../platform/temporal-connection';
import { LOADGEN_TASK_QUEUE, ROLLOUT_TASK_QUEUE } from '../rollout/messages';
import { componentsConfigFromEnv, createComponents } from './components';
import { createLoadgenWorker } from './loadgen-worker';
import { createRolloutWorker } from './rollout-worker';

const QUEUES = [ROLLOUT_TASK_QUEUE, LOADGEN_TASK_QUEUE];

function parseQueues(value: string): string[] {
  const queues = value.split(',').map((queue) => queue.trim());
  const unknown = queues.filter((queue) => !QUEUES.includes(queue));
  if (queues.length === 0 || unknown.length > 0) {
    throw new InvalidArgumentError(`must be a comma-separated list of ${QUEUES.join(', ')}`);
  }
  return queues;
}

async function main(): Promise<void> {
  const options = new Command('canary-worker')
    .option('--queues <list>', 'task queues to serve', parseQueues, [ROLLOUT_TASK_QUEUE])
    .parse(process.argv)
    .opts<{ queues: string[] }>();
  const metricsPort = process.env.METRICS_PORT ? Number(process.env.METRICS_PORT) : undefined;
  if (
    metricsPort !== undefined &&
    !(Number.isInteger(metricsPort) && metricsPort >= 0 && metricsPort <= 65535)
  )
    throw new Error(`METRICS_PORT=${process.env.METRICS_PORT}: must be a port number 0-65535`);
  const logger = createLogger('worker');
  installTemporalRuntime(logger);
  const target = temporalTargetFromEnv();
  const components = await createComponents(componentsConfigFromEnv(), logger);
  const connection = await connectWorker(target);
  const workers: Worker[] = [];
  if (options.queues.includes(ROLLOUT_TASK_QUEUE)) {
    workers.push(
      await createRolloutWorker({
        connection,
        namespace: target.namespace,
        deps: components.deps,
        metrics: components.metrics,
      }),
    );
  }
  if (options.queues.includes(LOADGEN_TASK_QUEUE)) {
    const maxConcurrentProbes = Number(process.env.LOADGEN_PROBES_PER_WORKER ?? '2');
    if (!(Number.isInteger(maxConcurrentProbes) && maxConcurrentProbes >= 1 && maxConcurrentProbes <= 64))
      throw new Error(
        `LOADGEN_PROBES_PER_WORKER=${process.env.LOADGEN_PROBES_PER_WORKER}: must be an integer 1-64`,
      );
    workers.push(
      await createLoadgenWorker({
        connection,
        namespace: target.namespace,
        prober: components.prober,
        maxConcurrentProbes,
        metrics: components.metrics,
      }),
    );
  }
  let metricsServer: MetricsServer | undefined;
  if (metricsPort !== undefined) {
    metricsServer = await serveMetrics(metricsPort, { registry: components.metrics.registry });
    logger.info({ url: metricsServer.url }, 'serving metrics');
  }
  const stop = () => workers.forEach((worker) => worker.shutdown());
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  logger.info(
    { queues: options.queues, temporal: target.address, namespace: target.namespace },
    'worker running',
  );
  try {
    await Promise.all(workers.map((worker) => worker.run()));
  } finally {
    await metricsServer?.close();
    await connection.close();
    await components.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
});
