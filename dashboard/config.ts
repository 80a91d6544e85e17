/**
 * The dashboard server's settings from its environment, validated like any other input: a bad
 * value stops the server with `error: <VARIABLE>: <rule>` before it listens.
 */
import { temporalTargetFromEnv, type TemporalTarget } from '../platform/temporal-connection';
import { FieldReader } from '../core/validation';
import type { DashboardSettings } from './app';

export interface ServerConfig {
  temporal: TemporalTarget;
  mongoUri: string;
  database: string;
  host: string;
  port: number;
  settings: DashboardSettings;
  logLevel: string;
}

const URL_PATTERN = /^https?:\/\/[^\s/?#]+(\/[^\s]*)?$/;

export function readServerConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const r = new FieldReader();
  const mongoUri = r.string(
    env.MONGO_URI ?? env.CANARY_MONGO_URI ?? 'mongodb://127.0.0.1:27017/',
    'MONGO_URI',
    /^mongodb(\+srv)?:\/\//,
    'must be a mongodb:// or mongodb+srv:// URI',
  );
  const database = r.string(
    env.MONGO_DB ?? env.CANARY_MONGO_DB ?? 'canary',
    'MONGO_DB',
    /^[A-Za-z0-9_-]{1,63}$/,
    'must be a database name (A-Z a-z 0-9 _ -)',
  );
  const port = r.number(
    env.PORT === undefined ? undefined : Number(env.PORT),
    'PORT',
    { min: 0, max: 65535, integer: true },
    8080,
  );
  const host = env.HOST ?? '0.0.0.0';
  const token = env.API_TOKEN || undefined;
  if (token !== undefined && token.length < 16) r.fail('API_TOKEN', 'must be at least 16 characters');
  const temporalUiUrl =
    env.TEMPORAL_UI_URL === undefined || env.TEMPORAL_UI_URL === ''
      ? undefined
      : r.string(env.TEMPORAL_UI_URL, 'TEMPORAL_UI_URL', URL_PATTERN, 'must be an http:// or https:// URL');
  const protectReads = r.oneOf(
    env.DASHBOARD_PROTECT_READS,
    'DASHBOARD_PROTECT_READS',
    ['true', 'false'] as const,
    'false',
  );
  const refreshMs = r.number(
    env.DASHBOARD_REFRESH_MS === undefined ? undefined : Number(env.DASHBOARD_REFRESH_MS),
    'DASHBOARD_REFRESH_MS',
    { min: 500, max: 60_000, integer: true },
    2000,
  );
  if (protectReads === 'true' && token === undefined)
    r.fail('DASHBOARD_PROTECT_READS', 'needs API_TOKEN (no one could read the dashboard)');
  r.throwIfAny();
  return {
    temporal: temporalTargetFromEnv(),
    mongoUri: mongoUri!,
    database: database!,
    host,
    port: port!,
    settings: {
      auth: { token, protectReads: protectReads === 'true' },
      ...(temporalUiUrl ? { temporalUiUrl: temporalUiUrl.replace(/\/+$/, '') } : {}),
      refreshMs: refreshMs!,
    },
    logLevel: env.LOG_LEVEL ?? 'info',
  };
}
