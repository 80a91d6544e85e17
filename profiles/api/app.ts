/**
 * The profiles API as a Fastify plugin: shared plugins first (errors, validation, metrics, docs,
 * the store), then the routes. Tests build it with buildApp() and use app.inject; server.ts
 * builds the same app and listens.
 */
import fp from 'fastify-plugin';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Db } from 'mongodb';
import type { ApiConfig } from './config';
import docsPlugin from './plugins/docs';
import errorsPlugin from './plugins/errors';
import metricsPlugin from './plugins/metrics';
import storePlugin from './plugins/store';
import { validatorCompiler } from './plugins/validation';
import generateRoutes from './routes/generate';
import healthRoutes from './routes/health';
import populationRoutes from './routes/population';
import profileRoutes from './routes/profiles';

export interface ProfilesAppOptions {
  db: Db;
  config: ApiConfig;
  collection?: string;
}

export async function profilesApi(app: FastifyInstance, options: ProfilesAppOptions): Promise<void> {
  app.setValidatorCompiler(validatorCompiler);
  await app.register(errorsPlugin);
  await app.register(metricsPlugin, { auth: options.config.auth });
  await app.register(docsPlugin);
  await app.register(storePlugin, {
    db: options.db,
    config: options.config,
    ...(options.collection ? { collection: options.collection } : {}),
  });
  await app.register(healthRoutes);
  await app.register(profileRoutes);
  await app.register(populationRoutes);
  await app.register(generateRoutes);
}

export async function buildApp(
  options: ProfilesAppOptions & { logger?: FastifyServerOptions['logger'] },
): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.config.limits.bodyLimitBytes,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 256 },
  });
  // fp: the decorations (profileStore, metrics) stay visible to whoever built the app.
  await app.register(fp(profilesApi, { name: 'profiles-api' }), options);
  await app.ready();
  return app;
}
