/**
 * The fault suite's rollout worker, in its own process so a test can SIGKILL it or start it
 * again with another environment. It runs the real components (routers, alert dispatcher and
 * sinks, tick store, all on the suite's real servers) except what turns traffic into a verdict:
 * the probe sleeps for its duration and verdicts follow the spec's `analysis.options.script`,
 * so a rollout takes seconds and a fault meets a known tick.
 * Environment: TEMPORAL_ADDRESS, CANARY_MONGO_URI, CANARY_MONGO_DB, TASK_QUEUE, WORKFLOW_BUNDLE,
 * plus the secrets the specs name (CANARY_PROXY_TOKEN, the webhook's secretEnv).
 */
import { readFileSync } from 'node:fs';
import { NativeConnection } from '@temporalio/worker';
import { createLogger } from '../../platform/logger';
import { installTemporalRuntime } from '../../platform/temporal-logging';
import { createComponents } from '../../workers/components';
import { readWorkerConfig } from '../../workers/main';
import { createRolloutWorker } from '../../workers/rollout-worker';
import { ScriptedAnalyzer, SleepingProber, testDeps } from '../support/doubles';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

async function main(): Promise<void> {
  const config = readWorkerConfig(process.env);
  const logger = createLogger('fault-worker', 'warn');
  installTemporalRuntime(logger);
  const components = await createComponents(config.components, logger);
  const doubles = testDeps(components.db);
  const connection = await NativeConnection.connect({ address: required('TEMPORAL_ADDRESS') });
  const worker = await createRolloutWorker({
    connection,
    taskQueue: required('TASK_QUEUE'),
    deps: {
      ...components.deps,
      profiles: doubles.profiles,
      metrics: doubles.metrics,
      prober: new SleepingProber(),
      analyzer: new ScriptedAnalyzer(components.db),
    },
    workflowBundle: { code: readFileSync(required('WORKFLOW_BUNDLE'), 'utf8') },
  });
  process.once('SIGTERM', () => worker.shutdown());
  const running = worker.run();
  console.log('worker running');
  await running;
  await connection.close();
  await components.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
