/**
 * Runs the dashboard (control API, web page, /metrics): `node --import tsx dashboard/server.ts`.
 * Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE (and TEMPORAL_TLS_* / TEMPORAL_API_KEY),
 * CANARY_MONGO_URI, CANARY_MONGO_DB, CANARY_RETENTION_DAYS, DASHBOARD_API_TOKEN (controls are
 * refused without it), DASHBOARD_PORT (8080), DASHBOARD_HOST (0.0.0.0), DASHBOARD_TEMPORAL_UI_URL,
 * DASHBOARD_PROTECT_READS (false), DASHBOARD_REFRESH_MS (2000), LOG_LEVEL (see config.ts).
 */
import { ROLLOUT_STORE_INDEXES } from '../client/rollout-store';
import { probeIndexes } from '../loadgen/prober';
import { connectClient } from '../platform/temporal-connection';
import { openDatabase, type CollectionIndexes } from '../platform/mongo-indexes';
import { buildDashboard } from './app';
import { readServerConfig } from './config';
import { serveUntilSignal } from '../platform/process';
import { createLogger, httpLoggerOptions } from '../platform/logger';

/** What the dashboard reads: the tick log and the probe windows, declared by their owners. */
export function dashboardIndexes(retentionDays: number): CollectionIndexes[] {
  return [...ROLLOUT_STORE_INDEXES, ...probeIndexes(retentionDays)];
}

export async function startDashboard(
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ url: string; close(): Promise<void> }> {
  const config = readServerConfig(env);
  const logger = createLogger('dashboard', config.logLevel);
  const { client: mongo, db } = await openDatabase(
    { uri: config.mongoUri, database: config.database },
    dashboardIndexes(config.retentionDays),
    logger,
  );
  const temporal = await connectClient(config.temporal).catch(async (error: unknown) => {
    await mongo.close();
    throw error;
  });
  const app = await buildDashboard({
    temporal,
    db,
    settings: config.settings,
    logger: httpLoggerOptions(config.logLevel),
  });
  const url = await app.listen({ host: config.host, port: config.port });
  app.log.info(
    {
      url,
      temporal: config.temporal.address,
      database: config.database,
      controls: config.settings.auth.token ? 'token' : 'disabled (no DASHBOARD_API_TOKEN)',
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
