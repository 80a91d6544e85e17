/**
 * The traffic generator as an HTTP service, a Fastify plugin: shared plugins first (errors, the
 * bearer token, the run registry), then the routes (routes/runs.ts, routes/health.ts). Tests
 * build it with buildLoadgenApp() and use app.inject; server.ts builds the same app and listens.
 * Targets must pass the allowlist configured on the server (never in the request), so the
 * service cannot be aimed at internal hosts; limits cap concurrency, rate and duration.
 */
import fp from 'fastify-plugin';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Db } from 'mongodb';
import { requireAllowedHost } from '../../platform/http/allowed-hosts';
import { requireBearer } from '../../platform/http/auth';
import { createValidatorCompiler } from '../../platform/http/validation';
import type { Logger } from '../../platform/logger';
import { TargetAllowlist } from '../allowlist';
import { DEFAULT_LIMITS, type LoadLimits } from '../options';
import { defaultOntology, type Ontology } from '../profile-sessions';
import errorsPlugin from './plugins/errors';
import { RunRegistry } from './run-registry';
import healthRoutes from './routes/health';
import runRoutes from './routes/runs';

export interface LoadgenServiceOptions {
  db: Db;
  ontology?: Ontology;
  allowlist?: TargetAllowlist;
  limits?: LoadLimits;
  /** Bearer token every request must carry; absent: no authentication (loopback deployments). */
  token?: string;
  /** `Host` names answered besides loopback names (DNS rebinding); default none. */
  allowedHosts?: readonly string[];
  maxActiveRuns?: number;
  /**
   * Criteria matching more profiles than this are refused (400 naming `criteria`). Defaults to
   * the rollout's cap (StoreProfileSource), so the same criteria behave the same here.
   */
  maxPopulation?: number;
  logger?: Logger;
}

/** What the routes share: the store the profiles come from, the checks a run must pass, the runs. */
export interface LoadgenContext {
  db: Db;
  ontology: Ontology;
  allowlist: TargetAllowlist;
  limits: LoadLimits;
  maxPopulation?: number;
  runs: RunRegistry;
}

declare module 'fastify' {
  interface FastifyInstance {
    loadgen: LoadgenContext;
  }
}

export async function loadgenService(app: FastifyInstance, options: LoadgenServiceOptions): Promise<void> {
  // Body fields are named bare (`criteria`, `target_url.canary`), as the run's own checks name them.
  app.setValidatorCompiler(createValidatorCompiler({ fieldPrefixes: { body: '' } }));
  await app.register(errorsPlugin);
  app.addHook('onRequest', requireAllowedHost(options.allowedHosts ?? [], 'LOADGEN_ALLOWED_HOSTS'));
  if (options.token !== undefined)
    app.addHook('onRequest', requireBearer(options.token, 'LOADGEN_API_TOKEN is not set'));
  const runs = new RunRegistry({
    maxActive: options.maxActiveRuns ?? 2,
    keepFinished: 100,
    maxSnapshots: 720,
    ...(options.logger ? { logger: options.logger } : {}),
  });
  app.decorate('loadgen', {
    db: options.db,
    ontology: options.ontology ?? defaultOntology(),
    allowlist: options.allowlist ?? new TargetAllowlist(),
    limits: options.limits ?? DEFAULT_LIMITS,
    ...(options.maxPopulation !== undefined ? { maxPopulation: options.maxPopulation } : {}),
    runs,
  });
  app.addHook('onClose', async () => runs.close());
  await app.register(healthRoutes);
  await app.register(runRoutes);
}

export async function buildLoadgenApp(options: LoadgenServiceOptions): Promise<FastifyInstance> {
  // The service's logger, so a 500 or a 503 leaves its cause (keyed by request id) in the log.
  const loggerInstance: FastifyBaseLogger | undefined = options.logger;
  const app: FastifyInstance = Fastify({
    ...(loggerInstance ? { loggerInstance } : { logger: false }),
    bodyLimit: 1024 * 1024,
  });
  await app.register(fp(loadgenService, { name: 'loadgen-service' }), options);
  await app.ready();
  return app;
}
