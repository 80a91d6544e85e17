/**
 * What a profiles API instance is configured with, and reading it from flags and environment
 * for the server entry (flags win over environment; every bad value names its flag).
 */
import { defaultOntology, loadOntology, type Ontology } from '../ontology';
import { DEFAULT_PROFILE_LIMITS } from '../profile-schema';
import {
  boolean,
  integer,
  LOG_LEVEL_VARIABLE,
  MONGO_VARIABLES,
  ONTOLOGY_VARIABLE,
  port,
  readConfig,
  secret,
  text,
  variable,
  withLegacy,
} from '../../platform/config';

export interface ApiLimits {
  /** Largest request body, bytes. */
  bodyLimitBytes: number;
  /** Profiles per POST /profiles batch. */
  maxBatch: number;
  maxPatternsPerProfile: number;
  maxPageSize: number;
  maxSampleSize: number;
  /** Profiles a sample's criteria may match (the sampler holds their ids in memory). */
  maxSamplePopulation: number;
  /** Samples computed at once; more get 429 (each scans the population: ~30 s at 100 000 on FerretDB). */
  maxConcurrentSamples: number;
  maxGenerate: number;
}

export const DEFAULT_LIMITS: ApiLimits = {
  bodyLimitBytes: 5 * 1024 * 1024,
  maxBatch: 1000,
  maxPatternsPerProfile: DEFAULT_PROFILE_LIMITS.maxPatternsPerProfile,
  maxPageSize: 1000,
  maxSampleSize: 10_000,
  maxSamplePopulation: 2_000_000,
  maxConcurrentSamples: 4,
  maxGenerate: 200_000,
};

export interface AuthConfig {
  /** Bearer token for mutating endpoints; absent: mutations are refused (403), never open. */
  token?: string;
  /** Reads need the token too. */
  protectReads: boolean;
}

export interface ApiConfig {
  ontology: Ontology;
  auth: AuthConfig;
  limits: ApiLimits;
}

export function apiConfig(
  overrides: Partial<Omit<ApiConfig, 'limits'>> & { limits?: Partial<ApiLimits> } = {},
): ApiConfig {
  return {
    ontology: overrides.ontology ?? defaultOntology(),
    auth: overrides.auth ?? { protectReads: false },
    limits: { ...DEFAULT_LIMITS, ...overrides.limits },
  };
}

export interface ServerConfig {
  mongoUri: string;
  database: string;
  host: string;
  port: number;
  logLevel: string;
  api: ApiConfig;
}

export interface ServerFlags {
  mongoUri?: string;
  db?: string;
  host?: string;
  port?: string;
  ontology?: string;
  protectReads?: boolean;
  logLevel?: string;
}

const SERVER_VARIABLES = {
  mongoUri: MONGO_VARIABLES.mongoUri,
  mongoDb: MONGO_VARIABLES.mongoDb,
  host: variable('PROFILES_API_HOST', text, { default: '127.0.0.1' }),
  port: variable('PROFILES_API_PORT', port, { default: 8081 }),
  token: variable('PROFILES_API_TOKEN', secret(16)),
  protectReads: variable('PROFILES_API_PROTECT_READS', boolean, { default: false }),
  maxConcurrentSamples: variable('PROFILES_API_MAX_CONCURRENT_SAMPLES', integer({ min: 1, max: 256 }), {
    default: DEFAULT_LIMITS.maxConcurrentSamples,
  }),
  ontologyFile: withLegacy(ONTOLOGY_VARIABLE, 'PROFILES_API_ONTOLOGY'),
  logLevel: LOG_LEVEL_VARIABLE,
};

/**
 * Flags win over the environment, and a bad value names where it came from (`--port` or
 * PROFILES_API_PORT). Environment: CANARY_MONGO_URI, CANARY_MONGO_DB, PROFILES_API_HOST,
 * PROFILES_API_PORT, PROFILES_API_TOKEN (the bearer token; never a flag, so it stays out of `ps`),
 * PROFILES_API_PROTECT_READS=true, PROFILES_API_MAX_CONCURRENT_SAMPLES (4), CANARY_ONTOLOGY (was PROFILES_API_ONTOLOGY), LOG_LEVEL.
 */
export function readServerConfig(flags: ServerFlags, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const values = readConfig(env, SERVER_VARIABLES, {
    flags: {
      mongoUri: ['--mongo-uri', flags.mongoUri],
      mongoDb: ['--db', flags.db],
      host: ['--host', flags.host],
      port: ['--port', flags.port],
      protectReads: ['--protect-reads', flags.protectReads ? 'true' : undefined],
      ontologyFile: ['--ontology', flags.ontology],
      logLevel: ['--log-level', flags.logLevel],
    },
  });
  const ontology = values.ontologyFile ? loadOntology(values.ontologyFile) : undefined;
  return {
    mongoUri: values.mongoUri,
    database: values.mongoDb,
    host: values.host,
    port: values.port,
    logLevel: values.logLevel,
    api: apiConfig({
      ...(ontology ? { ontology } : {}),
      auth: { ...(values.token ? { token: values.token } : {}), protectReads: values.protectReads },
      limits: { maxConcurrentSamples: values.maxConcurrentSamples },
    }),
  };
}
