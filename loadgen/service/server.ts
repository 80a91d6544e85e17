#!/usr/bin/env node
/**
 * The loadgen service's entry. Environment: CANARY_MONGO_URI, CANARY_MONGO_DB (the profile
 * store), LOADGEN_HOST (127.0.0.1), LOADGEN_PORT (8082), LOADGEN_ALLOWED_TARGETS (hosts/CIDRs,
 * default loopback), LOADGEN_API_TOKEN (bearer token, at least 16 characters), LOADGEN_ONTOLOGY
 * (ontology file), LOADGEN_MAX_CONCURRENCY / _RATE / _DURATION_S / _THREADS, LOADGEN_MAX_RUNS.
 */
import { MongoClient } from 'mongodb';
import { createLogger } from '../../lib/logger';
import { FieldReader } from '../../workflows/validation';
import { TargetAllowlist } from '../allowlist';
import { limitsFromEnv } from '../options';
import { defaultOntology, loadOntology } from '../profile-sessions';
import { buildLoadgenApp } from './app';

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const logger = createLogger('loadgen-service');
  const r = new FieldReader();
  const port = r.number(Number(env.LOADGEN_PORT ?? '8082'), 'LOADGEN_PORT', {
    min: 0,
    max: 65535,
    integer: true,
  });
  const maxRuns = r.number(Number(env.LOADGEN_MAX_RUNS ?? '2'), 'LOADGEN_MAX_RUNS', {
    min: 1,
    max: 64,
    integer: true,
  });
  const token = env.LOADGEN_API_TOKEN;
  if (token !== undefined && token.length < 16) r.fail('LOADGEN_API_TOKEN', 'must be at least 16 characters');
  r.throwIfAny();
  const allowlist = TargetAllowlist.parse(env.LOADGEN_ALLOWED_TARGETS, 'LOADGEN_ALLOWED_TARGETS');
  const mongo = await MongoClient.connect(env.CANARY_MONGO_URI ?? 'mongodb://127.0.0.1:27017/', {
    serverSelectionTimeoutMS: 10_000,
  });
  const app = await buildLoadgenApp({
    db: mongo.db(env.CANARY_MONGO_DB ?? 'canary'),
    ontology: env.LOADGEN_ONTOLOGY ? loadOntology(env.LOADGEN_ONTOLOGY) : defaultOntology(),
    allowlist,
    limits: limitsFromEnv(env),
    maxActiveRuns: maxRuns!,
    logger,
    ...(token ? { token } : {}),
  });
  const address = await app.listen({ host: env.LOADGEN_HOST ?? '127.0.0.1', port: port! });
  logger.info({ address, allowlist: allowlist.entries }, 'loadgen service listening');
  const stop = async () => {
    await app.close();
    await mongo.close();
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  });
}
