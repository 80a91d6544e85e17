/**
 * What a profiles API instance is configured with, and reading it from flags and environment
 * for the server entry (flags win over environment; every bad value names its flag).
 */
import { defaultOntology, loadOntology, type Ontology } from '../ontology';
import { DEFAULT_PROFILE_LIMITS } from '../profile-schema';
import { FieldReader } from '../../core/validation';

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
  maxGenerate: number;
}

export const DEFAULT_LIMITS: ApiLimits = {
  bodyLimitBytes: 5 * 1024 * 1024,
  maxBatch: 1000,
  maxPatternsPerProfile: DEFAULT_PROFILE_LIMITS.maxPatternsPerProfile,
  maxPageSize: 1000,
  maxSampleSize: 10_000,
  maxSamplePopulation: 2_000_000,
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

/**
 * Environment: CANARY_MONGO_URI, CANARY_MONGO_DB, PROFILES_API_HOST, PROFILES_API_PORT,
 * PROFILES_API_TOKEN (the bearer token; never a flag, so it stays out of `ps`),
 * PROFILES_API_PROTECT_READS=true, PROFILES_API_ONTOLOGY, LOG_LEVEL.
 */
export function readServerConfig(flags: ServerFlags, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const r = new FieldReader();
  const mongoUri = flags.mongoUri ?? env.CANARY_MONGO_URI ?? 'mongodb://127.0.0.1:27017/';
  if (!/^mongodb(\+srv)?:\/\//.test(mongoUri)) r.fail('--mongo-uri', 'must be a mongodb:// URI');
  const database = r.string(
    flags.db ?? env.CANARY_MONGO_DB ?? 'canary',
    '--db',
    /^[A-Za-z0-9_-]{1,63}$/,
    'must be a database name (A-Z a-z 0-9 _ -)',
  );
  const host = r.string(flags.host ?? env.PROFILES_API_HOST ?? '127.0.0.1', '--host');
  const portText = flags.port ?? env.PROFILES_API_PORT ?? '8081';
  const port = r.number(Number(portText), '--port', { min: 0, max: 65535, integer: true });
  const token = env.PROFILES_API_TOKEN;
  if (token !== undefined && token.length < 16)
    r.fail('PROFILES_API_TOKEN', 'must be at least 16 characters');
  const protectReads = flags.protectReads ?? env.PROFILES_API_PROTECT_READS === 'true';
  let ontology: Ontology | undefined;
  const ontologyFile = flags.ontology ?? env.PROFILES_API_ONTOLOGY;
  r.throwIfAny();
  if (ontologyFile) ontology = loadOntology(ontologyFile);
  return {
    mongoUri,
    database: database!,
    host: host!,
    port: port!,
    logLevel: flags.logLevel ?? env.LOG_LEVEL ?? 'info',
    api: apiConfig({
      ...(ontology ? { ontology } : {}),
      auth: { ...(token ? { token } : {}), protectReads },
    }),
  };
}
