/**
 * The composition root: the real components behind the activities' ports, built from the
 * environment. The worker entry, the local stack and the end-to-end tests all use it, so what
 * runs in the demo is what runs in production.
 */
import { MongoClient, type Db } from 'mongodb';
import type { ActivityDeps } from '../activities/ports';
import { AlertDispatcher } from '../alerts/dispatcher';
import { createLogger } from '../platform/logger';
import { TargetAllowlist } from '../loadgen/allowlist';
import { limitsFromEnv } from '../loadgen/options';
import { LoadgenProber } from '../loadgen/prober';
import { RolloutAnalyzer } from '../signals/analyzer';
import { SampleCollector } from '../signals/collector';
import { defaultOntology, loadOntology } from '../profiles/ontology';
import { StoreProfileSource } from '../profiles/profile-source';
import { ProfileStore } from '../profiles/store';
import { RouterRegistry, routerTemplateVariables } from '../routing/routers';
import { RolloutStore } from '../client/rollout-store';
import { WorkerMetrics } from './worker-metrics';

export interface ComponentsConfig {
  mongoUri: string;
  mongoDb: string;
  ontologyFile?: string;
  env: NodeJS.ProcessEnv;
}

export function componentsConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ComponentsConfig {
  return {
    mongoUri: env.CANARY_MONGO_URI ?? 'mongodb://127.0.0.1:27017/',
    mongoDb: env.CANARY_MONGO_DB ?? 'canary',
    ontologyFile: env.CANARY_ONTOLOGY || undefined,
    env,
  };
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
  const mongo = await MongoClient.connect(config.mongoUri, { serverSelectionTimeoutMS: 10_000 });
  const db = mongo.db(config.mongoDb);
  const rollouts = new RolloutStore(db);
  await rollouts.ensureIndexes();
  const profiles = new ProfileStore(db);
  const routers = new RouterRegistry({ env: config.env });
  const prober = new LoadgenProber({
    db,
    ontology: config.ontologyFile ? loadOntology(config.ontologyFile) : defaultOntology(),
    allowlist: TargetAllowlist.parse(config.env.LOADGEN_ALLOWED_TARGETS, 'LOADGEN_ALLOWED_TARGETS'),
    limits: limitsFromEnv(config.env),
    logger: logger.child({ component: 'loadgen' }),
  });
  const metrics = new WorkerMetrics();
  const alerts = new AlertDispatcher({
    db,
    logger: logger.child({ component: 'alerts' }),
    env: config.env,
    namespace: config.env.TEMPORAL_NAMESPACE ?? 'default',
    onDelivery: metrics.observeDelivery,
  });
  await alerts.store.ensureIndexes();
  const deps: ActivityDeps = {
    profiles: new StoreProfileSource(profiles),
    prober,
    metrics: new SampleCollector({
      db,
      logger: logger.child({ component: 'metrics' }),
      routerVariables: routerTemplateVariables,
    }),
    analyzer: new RolloutAnalyzer(db),
    routers,
    alerts,
    ticks: rollouts,
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
