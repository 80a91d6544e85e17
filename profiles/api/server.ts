/**
 * Runs the profiles API: `node --import tsx profiles/api/server.ts --mongo-uri ... --port 8081`.
 * The bearer token comes from PROFILES_API_TOKEN (see config.ts for every setting).
 */
import { Command } from 'commander';
import { buildApp } from './app';
import { readServerConfig, type ServerFlags } from './config';
import { profileIndexes } from '../store';
import { openDatabase } from '../../platform/mongo-indexes';
import { serveUntilSignal } from '../../platform/process';
import { createLogger, httpLoggerOptions } from '../../platform/logger';

export async function startServer(argv: string[]): Promise<{ url: string; close(): Promise<void> }> {
  const flags = new Command('profiles-api')
    .option('--mongo-uri <uri>', 'MongoDB URI (env CANARY_MONGO_URI)')
    .option('--db <name>', 'database (env CANARY_MONGO_DB, default canary)')
    .option('--host <host>', 'listen address (env PROFILES_API_HOST, default 127.0.0.1)')
    .option('--port <port>', 'listen port, 0 for any free one (env PROFILES_API_PORT, default 8081)')
    .option('--ontology <file>', 'action ontology file (env CANARY_ONTOLOGY)')
    .option('--protect-reads', 'require the token for reads too')
    .option('--log-level <level>', 'pino level (env LOG_LEVEL)')
    .exitOverride()
    .parse(argv, { from: 'user' })
    .opts<ServerFlags>();
  const config = readServerConfig(flags);
  const { client, db } = await openDatabase(
    { uri: config.mongoUri, database: config.database },
    profileIndexes(),
    createLogger('profiles-api', config.logLevel),
  );
  const app = await buildApp({
    db,
    config: config.api,
    logger: httpLoggerOptions(config.logLevel),
  });
  const url = await app.listen({ host: config.host, port: config.port });
  app.log.info(
    {
      url,
      database: config.database,
      ontology: `${config.api.ontology.name}@${config.api.ontology.version}`,
      writes: config.api.auth.token ? 'token' : 'disabled',
    },
    'profiles API listening',
  );
  return {
    url,
    async close() {
      await app.close();
      await client.close();
    },
  };
}

if (require.main === module) serveUntilSignal('profiles-api', () => startServer(process.argv.slice(2)));
