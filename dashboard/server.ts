/**
 * Runs the dashboard (control API, web page, /metrics): `node --import tsx dashboard/server.ts`.
 * Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE (and TEMPORAL_TLS_* / TEMPORAL_API_KEY),
 * MONGO_URI, MONGO_DB, API_TOKEN (controls are refused without it), PORT (8080), HOST (0.0.0.0),
 * TEMPORAL_UI_URL, DASHBOARD_PROTECT_READS (false), DASHBOARD_REFRESH_MS (2000), LOG_LEVEL.
 */
import { MongoClient } from 'mongodb';
import { connectClient } from '../platform/temporal-connection';
import { buildDashboard } from './app';
import { readServerConfig } from './config';
import { serveUntilSignal } from '../platform/process';
import { httpLoggerOptions } from '../platform/logger';

export async function startDashboard(
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ url: string; close(): Promise<void> }> {
  const config = readServerConfig(env);
  const mongo = await MongoClient.connect(config.mongoUri, { serverSelectionTimeoutMS: 10_000 });
  const temporal = await connectClient(config.temporal).catch(async (error: unknown) => {
    await mongo.close();
    throw error;
  });
  const app = await buildDashboard({
    temporal,
    db: mongo.db(config.database),
    settings: config.settings,
    logger: httpLoggerOptions(config.logLevel),
  });
  const url = await app.listen({ host: config.host, port: config.port });
  app.log.info(
    {
      url,
      temporal: config.temporal.address,
      database: config.database,
      controls: config.settings.auth.token ? 'token' : 'disabled (no API_TOKEN)',
    },
    'dashboard listening',
  );
  return {
    url,
    async close() {
      await app.close();
      await temporal.connection.close();
      await mongo.close();
    },
  };
}

if (require.main === module) serveUntilSignal('dashboard', () => startDashboard());
