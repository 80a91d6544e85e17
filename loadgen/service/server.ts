#!/usr/bin/env node
/**
 * The loadgen service's entry. Environment: CANARY_MONGO_URI, CANARY_MONGO_DB (the profile
 * store), LOADGEN_HOST (127.0.0.1), LOADGEN_PORT (8082), LOADGEN_ALLOWED_TARGETS (hosts/CIDRs,
 * default loopback), LOADGEN_API_TOKEN (bearer token, at least 16 characters; required unless
 * LOADGEN_HOST is a loopback address), LOADGEN_ONTOLOGY
 * (ontology file), LOADGEN_MAX_CONCURRENCY / _RATE / _DURATION_S / _THREADS, LOADGEN_MAX_RUNS.
 */
import { MongoClient } from 'mongodb';
import { createLogger } from '../../platform/logger';
import { FieldReader } from '../../core/validation';
import { TargetAllowlist } from '../allowlist';
import { limitsFromEnv } from '../options';
import { defaultOntology, loadOntology } from '../profile-sessions';
import { buildLoadgenApp } from './app';
import { writeErrorLines } from '../../platform/process';

/** 127.0.0.0/8, ::1 (also bracketed or IPv4-mapped) and localhost: reachable from this host only. */
export function isLoopbackHost(host: string): boolean {
  const name = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  if (name === 'localhost' || name === '::1' || name === '0:0:0:0:0:0:0:1') return true;
  return /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

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
  const host = env.LOADGEN_HOST ?? '127.0.0.1';
  // Without a token anyone who reaches the port can aim load at the allowed targets: only
  // loopback may go without one.
  if (token === undefined && !isLoopbackHost(host))
    r.fail(
      'LOADGEN_API_TOKEN',
      `is required when LOADGEN_HOST (${host}) is not a loopback address; set a token of at least 16 characters or listen on 127.0.0.1`,
    );
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
  const address = await app.listen({ host, port: port! });
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
    writeErrorLines(error);
    process.exit(2);
  });
}
