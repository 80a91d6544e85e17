/**
 * The composition root: the real components behind the activities' ports, built from the
 * environment. The worker entry, the local stack and the end-to-end tests all use it, so what
 * runs in the demo is what runs in production.
 */
import { MongoClient, type Db } from 'mongodb';
import type { ActivityDeps } from '../activities/ports';
import { AlertDispatcher } from '../alerts/dispatcher';
import { alertDeliveryIndexes } from '../alerts/delivery-store';
import { readConfig, RETENTION_VARIABLE } from '../platform/config';
import { ensureIndexes, type CollectionIndexes } from '../platform/mongo-indexes';
import { createLogger } from '../platform/logger';
import { TargetAllowlist } from '../loadgen/allowlist';
import { limitsFromEnv } from '../loadgen/options';
import { LoadgenProber, probeIndexes } from '../loadgen/prober';
import { RolloutAnalyzer } from '../signals/analyzer';
import { SampleCollector } from '../signals/collector';
import { sampleStoreIndexes } from '../signals/sample-store';
import { defaultOntology, loadOntology } from '../profiles/ontology';
import { StoreProfileSource } from '../profiles/profile-source';
import { profileIndexes, ProfileStore } from '../profiles/store';
import { RouterRegistry } from '../routing/routers';
import { ROLLOUT_STORE_INDEXES, RolloutStore } from '../client/rollout-store';
import { WorkerMetrics } from './worker-metrics';

export interface ComponentsConfig {
  mongoUri: string;
  mongoDb: string;
  ontologyFile?: string;
  retentionDays: number;
  env: NodeJS.ProcessEnv;
}

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

export function componentsConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ComponentsConfig {
  return {
    mongoUri: env.CANARY_MONGO_URI ?? 'mongodb://127.0.0.1:27017/',
    mongoDb: env.CANARY_MONGO_DB ?? 'canary',
    ontologyFile: env.CANARY_ONTOLOGY || undefined,
    retentionDays: readConfig(env, { retentionDays: RETENTION_VARIABLE }).retentionDays,
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
  await ensureIndexes(db, workerIndexes(config.retentionDays), logger).catch(async (error: unknown) => {
    await mongo.close();
    throw error;
  });
  const rollouts = new RolloutStore(db);
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
  const deps: ActivityDeps = {
    profiles: new StoreProfileSource(profiles),
    prober,
    metrics: new SampleCollector({ db, logger: logger.child({ component: 'metrics' }) }),
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
