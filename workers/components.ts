/**
 * The composition root: the real components behind the activities' ports, built from the
 * environment. The worker entry, the local stack and the end-to-end tests all use it, so what
 * runs in the demo is what runs in production.
 */
import type { Db } from 'mongodb';
import type { ActivityDeps } from '../activities/ports';
import { AlertDispatcher } from '../alerts/dispatcher';
import { alertDeliveryIndexes } from '../alerts/delivery-store';
import { MONGO_VARIABLES, ONTOLOGY_VARIABLE, RETENTION_VARIABLE, type ConfigOf } from '../platform/config';
import { createLogger } from '../platform/logger';
import { openDatabase, type CollectionIndexes } from '../platform/mongo-indexes';
import { LOADGEN_VARIABLES, loadLimitsOf } from '../loadgen/options';
import { LoadgenProber, probeIndexes } from '../loadgen/prober';
import { RolloutAnalyzer } from '../signals/analyzer';
import { ProbeExemplars } from '../signals/exemplars';
import { SampleCollector } from '../signals/collector';
import { sampleStoreIndexes } from '../signals/sample-store';
import { defaultOntology, loadOntology } from '../profiles/ontology';
import { StoreProfileSource } from '../profiles/profile-source';
import { profileIndexes, ProfileStore } from '../profiles/store';
import { RouterRegistry, routerTemplateVariables } from '../routing/routers';
import { ROLLOUT_STORE_INDEXES, RolloutStore } from '../client/rollout-store';
import { WORKER_POLICY_VARIABLES, workerPolicyOf } from '../client/worker-policy';
import { WorkerMetrics } from './worker-metrics';

/** The variables the components read (workers/main.ts adds its own and Temporal's). */
export const COMPONENTS_VARIABLES = {
  ...MONGO_VARIABLES,
  ontologyFile: ONTOLOGY_VARIABLE,
  retentionDays: RETENTION_VARIABLE,
  ...LOADGEN_VARIABLES,
  ...WORKER_POLICY_VARIABLES,
};

export type ComponentsConfig = ConfigOf<typeof COMPONENTS_VARIABLES> & {
  /** For alert links. */
  namespace: string;
  /** Where routers and alert sinks find the secrets that rollout specs name (tokenEnv, secretEnv). */
  env: NodeJS.ProcessEnv;
};

/** Every collection the worker's components write or read, with the indexes their owners declare. */
export function workerIndexes(retentionDays: number): CollectionIndexes[] {
  return [
    ...ROLLOUT_STORE_INDEXES,
    ...sampleStoreIndexes(retentionDays),
    ...probeIndexes(retentionDays),
    ...alertDeliveryIndexes(retentionDays),
    ...profileIndexes(),
  ];
}

export interface Components {
  deps: ActivityDeps;
  db: Db;
  prober: LoadgenProber;
  /** Prometheus metrics of this worker process; serve them with serveMetrics(). */
  metrics: WorkerMetrics;
  close(): Promise<void>;
}

export async function createComponents(
  config: ComponentsConfig,
  logger = createLogger('worker'),
): Promise<Components> {
  // A bad policy file stops the worker before it connects to anything.
  const workerPolicy = workerPolicyOf(config);
  const { client: mongo, db } = await openDatabase(
    { uri: config.mongoUri, database: config.mongoDb },
    workerIndexes(config.retentionDays),
    logger,
  );
  const rollouts = new RolloutStore(db);
  const profiles = new ProfileStore(db);
  const routers = new RouterRegistry({ env: config.env });
  const prober = new LoadgenProber({
    db,
    ontology: config.ontologyFile ? loadOntology(config.ontologyFile) : defaultOntology(),
    allowlist: config.allowedTargets,
    limits: loadLimitsOf(config),
    logger: logger.child({ component: 'loadgen' }),
  });
  const metrics = new WorkerMetrics();
  const alerts = new AlertDispatcher({
    db,
    logger: logger.child({ component: 'alerts' }),
    env: config.env,
    namespace: config.namespace,
    onDelivery: metrics.observeDelivery,
  });
  const deps: ActivityDeps = {
    profiles: new StoreProfileSource(profiles),
    prober,
    metrics: new SampleCollector({
      db,
      logger: logger.child({ component: 'metrics' }),
      routerVariables: routerTemplateVariables,
    }),
    analyzer: new RolloutAnalyzer(db),
    exemplars: new ProbeExemplars(db),
    routers,
    alerts,
    ticks: rollouts,
    workerPolicy,
  };
  return {
    deps,
    db,
    prober,
    metrics,
    async close() {
      await routers.close();
      await mongo.close();
    },
  };
}
