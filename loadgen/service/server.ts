#!/usr/bin/env node
/**
 * The loadgen service's entry. Environment (read once, in startLoadgenService): CANARY_MONGO_URI,
 * CANARY_MONGO_DB (the profile store), CANARY_ONTOLOGY (ontology file; was LOADGEN_ONTOLOGY),
 * LOADGEN_HOST (127.0.0.1), LOADGEN_PORT (8082), LOADGEN_ALLOWED_TARGETS (hosts/CIDRs, default
 * loopback), LOADGEN_API_TOKEN (bearer token, at least 16 characters; required unless
 * LOADGEN_HOST is a loopback address), LOADGEN_ALLOWED_HOSTS (Host names answered besides
 * loopback names and LOADGEN_HOST), LOADGEN_MAX_CONCURRENCY / _RATE / _DURATION_S / _THREADS,
 * LOADGEN_MAX_RUNS.
 */
import {
  integer,
  LOG_LEVEL_VARIABLE,
  MONGO_VARIABLES,
  ONTOLOGY_VARIABLE,
  port,
  readConfig,
  reject,
  secret,
  text,
  variable,
  withLegacy,
} from '../../platform/config';
import { isLoopbackHost } from '../../platform/http/allowed-hosts';
import { createLogger } from '../../platform/logger';
import { openDatabase } from '../../platform/mongo-indexes';
import { serveUntilSignal } from '../../platform/process';
import { ValidationError } from '../../core/validation';
import { profileIndexes } from '../../profiles/store';
import { LOADGEN_VARIABLES, loadLimitsOf } from '../options';
import { defaultOntology, loadOntology } from '../profile-sessions';
import { buildLoadgenApp } from './app';

function hostNames(text: string, name: string): string[] {
  const names = text
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  for (const entry of names)
    if (!/^[A-Za-z0-9.:[\]-]{1,253}$/.test(entry))
      reject(name, `${entry} must be a host name or address (comma-separated list)`);
  return names;
}

const SERVICE_VARIABLES = {
  ...MONGO_VARIABLES,
  ontologyFile: withLegacy(ONTOLOGY_VARIABLE, 'LOADGEN_ONTOLOGY'),
  host: variable('LOADGEN_HOST', text, { default: '127.0.0.1' }),
  port: variable('LOADGEN_PORT', port, { default: 8082 }),
  token: variable('LOADGEN_API_TOKEN', secret(16)),
  allowedHosts: variable('LOADGEN_ALLOWED_HOSTS', hostNames, { default: [] as string[] }),
  maxRuns: variable('LOADGEN_MAX_RUNS', integer({ min: 1, max: 64 }), { default: 2 }),
  ...LOADGEN_VARIABLES,
  logLevel: LOG_LEVEL_VARIABLE,
};

export { isLoopbackHost };

export async function startLoadgenService(
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ url: string; close(): Promise<void> }> {
  const config = readConfig(env, SERVICE_VARIABLES);
  const logger = createLogger('loadgen-service', config.logLevel);
  // Without a token anyone who reaches the port can aim load at the allowed targets: only
  // loopback may go without one.
  if (config.token === undefined && !isLoopbackHost(config.host))
    throw new ValidationError([
      {
        field: 'LOADGEN_API_TOKEN',
        rule: `is required when LOADGEN_HOST (${config.host}) is not a loopback address; set a token of at least 16 characters or listen on 127.0.0.1`,
      },
    ]);
  const ontology = config.ontologyFile ? loadOntology(config.ontologyFile) : defaultOntology();
  const { client: mongo, db } = await openDatabase(
    { uri: config.mongoUri, database: config.mongoDb },
    profileIndexes(),
    logger,
  );
  try {
    const app = await buildLoadgenApp({
      db,
      ontology,
      allowlist: config.allowedTargets,
      limits: loadLimitsOf(config),
      maxActiveRuns: config.maxRuns,
      // The address it listens on is a name it answers to, unless that is every address.
      allowedHosts: [
        ...config.allowedHosts,
        ...(['0.0.0.0', '::'].includes(config.host) ? [] : [config.host]),
      ],
      logger,
      ...(config.token ? { token: config.token } : {}),
    });
    const url = await app.listen({ host: config.host, port: config.port });
    logger.info({ url, allowlist: config.allowedTargets.entries }, 'loadgen service listening');
    return {
      url,
      async close() {
        await app.close();
        await mongo.close();
      },
    };
  } catch (error) {
    await mongo.close();
    throw error;
  }
}

if (require.main === module) serveUntilSignal('loadgen-service', () => startLoadgenService());
