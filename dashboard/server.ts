/**
 * Runs the dashboard (control API, web page, /metrics): `node --import tsx dashboard/server.ts`.
 * Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE (and TEMPORAL_TLS_* / TEMPORAL_API_KEY),
 * MONGO_URI, MONGO_DB, API_TOKEN (controls are refused without it), PORT (8080), HOST (0.0.0.0),
 * TEMPORAL_UI_URL, DASHBOARD_PROTECT_READS (false), DASHBOARD_REFRESH_MS (2000), LOG_LEVEL.
 */
import { MongoClient } from 'mongodb';
import { connectClient } from '../lib/temporal-connection';
import { ValidationError } from '../workflows/validation';
import { buildDashboard } from './app';
import { readServerConfig } from './config';

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
    logger: {
      level: config.logLevel,
      redact: { paths: ['req.headers.authorization'], censor: '[redacted]' },
    },
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

if (require.main === module) {
  startDashboard().then(
    (server) => {
      const stop = () => void server.close().then(() => process.exit(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      // The line a supervisor (the local stack) waits for.
      process.stdout.write(`dashboard ready ${server.url}\n`);
    },
    (error: unknown) => {
      if (error instanceof ValidationError)
        for (const issue of error.issues) process.stderr.write(`error: ${issue.field}: ${issue.rule}\n`);
      else process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(2);
    },
  );
}
