#!/usr/bin/env node
/**
 * The worker process: `node dist/workers/main.js [--queues rollouts,loadgen]`.
 * `rollouts` runs rollout workflows and all their activities; `loadgen` serves only probes, for
 * rollouts whose spec sends probes there (probe.taskQueue), so probe capacity scales with the
 * number of these workers.
 *
 * Environment (read once, by readWorkerConfig): TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
 * TEMPORAL_API_KEY / TEMPORAL_TLS_* (see platform/temporal-connection.ts), CANARY_MONGO_URI,
 * CANARY_MONGO_DB, CANARY_ONTOLOGY, CANARY_RETENTION_DAYS, LOADGEN_ALLOWED_TARGETS,
 * LOADGEN_MAX_*, LOADGEN_PROBES_PER_WORKER, and WORKER_METRICS_PORT: serve Prometheus metrics on
 * http://0.0.0.0:WORKER_METRICS_PORT/metrics (off when unset), LOG_LEVEL, and the worker policy
 * (CANARY_WORKER_POLICY, CANARY_WORKER_PROFILE, CANARY_ALLOWED_*; see client/worker-policy.ts).
 * Read when a rollout needs them, if the policy allows: the router tokens its spec names
 * (CANARY_PROXY_TOKEN by default) and the alert sinks' secrets (secretEnv, urlEnv, bearerTokenEnv).
 * At start it alerts rollouts that ended abnormally with the canary in traffic.
 */
import type { Worker } from '@temporalio/worker';
import { Command, InvalidArgumentError } from 'commander';
import { integer, LOG_LEVEL_VARIABLE, port, readConfig, variable } from '../platform/config';
import { createLogger, type Logger } from '../platform/logger';
import { serveMetrics, type MetricsServer } from '../platform/metrics-server';
import { writeErrorLines } from '../platform/process';
import { installTemporalRuntime } from '../platform/temporal-logging';
import {
  connectClient,
  connectWorker,
  TEMPORAL_VARIABLES,
  temporalTarget,
  type TemporalTarget,
} from '../platform/temporal-connection';
import { LOADGEN_TASK_QUEUE, ROLLOUT_TASK_QUEUE } from '../rollout/messages';
import { alertAbandonedRollouts } from '../client/abandoned-rollouts';
import { RolloutStore } from '../client/rollout-store';
import { messageOf } from '../core/errors';
import { COMPONENTS_VARIABLES, createComponents, type Components, type ComponentsConfig } from './components';
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

const WORKER_VARIABLES = {
  ...TEMPORAL_VARIABLES,
  ...COMPONENTS_VARIABLES,
  metricsPort: variable('WORKER_METRICS_PORT', port, { legacy: ['METRICS_PORT'] }),
  probesPerWorker: variable('LOADGEN_PROBES_PER_WORKER', integer({ min: 1, max: 64 }), { default: 2 }),
  logLevel: LOG_LEVEL_VARIABLE,
};

export interface WorkerConfig {
  target: TemporalTarget;
  components: ComponentsConfig;
  metricsPort?: number;
  probesPerWorker: number;
  logLevel: string;
}

export function readWorkerConfig(env: NodeJS.ProcessEnv, logger?: Logger): WorkerConfig {
  const values = readConfig(env, WORKER_VARIABLES, { logger });
  const target = temporalTarget(values);
  return {
    target,
    components: { ...values, namespace: target.namespace, env },
    metricsPort: values.metricsPort,
    probesPerWorker: values.probesPerWorker,
    logLevel: values.logLevel,
  };
}

/**
 * Rollouts that were terminated, failed or timed out skipped finish(), which takes the canary out
 * of traffic: each one whose canary was above 0 % gets a critical `abandoned` alert, once.
 */
async function reportAbandonedRollouts(
  target: TemporalTarget,
  components: Components,
  retentionDays: number,
  logger: Logger,
): Promise<void> {
  const temporal = await connectClient(target);
  try {
    const abandoned = await alertAbandonedRollouts({
      temporal,
      store: new RolloutStore(components.db),
      alerts: components.deps.alerts,
      workerPolicy: components.deps.workerPolicy,
      logger,
      lookbackDays: retentionDays,
    });
    logger.info(
      { rollouts: abandoned.map(({ rolloutId, runId, share }) => ({ rolloutId, runId, share })) },
      'checked for rollouts that ended with the canary in traffic',
    );
  } finally {
    await temporal.connection.close();
  }
}

async function main(): Promise<void> {
  const options = new Command('canary-worker')
    .option('--queues <list>', 'task queues to serve', parseQueues, [ROLLOUT_TASK_QUEUE])
    .parse(process.argv)
    .opts<{ queues: string[] }>();
  const config = readWorkerConfig(process.env);
  const { target, components: componentsConfig, metricsPort, probesPerWorker } = config;
  const logger = createLogger('worker', config.logLevel);
  installTemporalRuntime(logger);
  const components = await createComponents(componentsConfig, logger);
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
    workers.push(
      await createLoadgenWorker({
        connection,
        namespace: target.namespace,
        prober: components.prober,
        maxConcurrentProbes: probesPerWorker,
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
  const running = workers.map((worker) => worker.run());
  if (options.queues.includes(ROLLOUT_TASK_QUEUE)) {
    // After the worker runs: a closed run's last status is a query that a worker answers by replay.
    reportAbandonedRollouts(target, components, componentsConfig.retentionDays, logger).catch(
      (error: unknown) =>
        logger.error({ error: messageOf(error) }, 'could not check for rollouts that ended abnormally'),
    );
  }
  try {
    await Promise.all(running);
  } finally {
    await metricsServer?.close();
    await connection.close();
    await components.close();
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    writeErrorLines(error);
    process.exit(2);
  });
}
