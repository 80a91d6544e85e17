/**
 * The dashboard as a Fastify plugin: shared plugins first (errors, validation, metrics, the page),
 * then the API routes. Tests build it with buildDashboard() and use app.inject; server.ts builds
 * the same app and listens. The Temporal client and the database belong to the caller.
 */
import fp from 'fastify-plugin';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Client } from '@temporalio/client';
import type { Db } from 'mongodb';
import type { AuthConfig } from './plugins/auth';
import errorsPlugin from './plugins/errors';
import metricsPlugin from './plugins/metrics';
import pagePlugin from './plugins/page';
import { validatorCompiler } from './plugins/validation';
import { RolloutReadModel } from './read-model';
import { RolloutClient, type RolloutClientOptions } from '../client/rollout-client';
import controlRoutes from './routes/controls';
import rolloutRoutes from './routes/rollouts';

export interface DashboardSettings {
  auth: AuthConfig;
  /** Base URL of the Temporal Web UI, for links to each rollout's workflow. */
  temporalUiUrl?: string;
  /** How often the page refreshes (ms). */
  refreshMs: number;
}

export interface DashboardOptions {
  temporal: Client;
  db: Db;
  settings: DashboardSettings;
  /** Timeouts, concurrency and caching of the rollout reads (tests shorten them). */
  rollouts?: Omit<RolloutClientOptions, 'lastVerdictOf'>;
}

declare module 'fastify' {
  interface FastifyInstance {
    dashboard: { rollouts: RolloutClient; readModel: RolloutReadModel; settings: DashboardSettings };
  }
}

/** Strict CSP: scripts and styles from this origin only, no inline code, no framing. */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
};

export async function dashboardApp(app: FastifyInstance, options: DashboardOptions): Promise<void> {
  app.setValidatorCompiler(validatorCompiler);
  // Bodies are JSON only: text/plain is a 415 naming content-type, not a confusing 400.
  app.removeContentTypeParser('text/plain');
  const readModel = new RolloutReadModel(options.db);
  const rollouts = new RolloutClient(options.temporal, {
    // Many viewers and scrapes, one query a second per rollout.
    cacheMs: 1000,
    ...options.rollouts,
    lastVerdictOf: (rolloutId) => readModel.lastVerdict(rolloutId),
  });
  app.decorate('dashboard', { rollouts, readModel, settings: options.settings });
  app.addHook('onSend', async (_request, reply, payload) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) void reply.header(name, value);
    if (!reply.hasHeader('cache-control')) void reply.header('cache-control', 'no-store');
    return payload;
  });
  await app.register(errorsPlugin);
  await app.register(metricsPlugin, { rollouts, auth: options.settings.auth });
  await app.register(pagePlugin);
  app.get('/healthz', async () => ({ ok: true }));
  await app.register(rolloutRoutes);
  await app.register(controlRoutes);
}

export async function buildDashboard(
  options: DashboardOptions & { logger?: FastifyServerOptions['logger'] },
): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: 64 * 1024,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1024 },
  });
  await app.register(fp(dashboardApp, { name: 'dashboard' }), options);
  await app.ready();
  return app;
}
