/**
 * The dashboard server's settings, read from its environment in one place: a bad value stops
 * the server with `error: <VARIABLE>: <rule>` before it listens. The names it had before
 * (MONGO_URI, MONGO_DB, HOST, PORT, API_TOKEN, TEMPORAL_UI_URL) still work for one release.
 */
import {
  boolean,
  httpUrl,
  integer,
  LOG_LEVEL_VARIABLE,
  MONGO_VARIABLES,
  port,
  readConfig,
  RETENTION_VARIABLE,
  secret,
  text,
  variable,
  withLegacy,
} from '../platform/config';
import type { Logger } from '../platform/logger';
import { TEMPORAL_VARIABLES, temporalTarget, type TemporalTarget } from '../platform/temporal-connection';
import { ValidationError } from '../core/validation';
import type { DashboardSettings } from './app';

export interface ServerConfig {
  temporal: TemporalTarget;
  mongoUri: string;
  database: string;
  retentionDays: number;
  host: string;
  port: number;
  settings: DashboardSettings;
  logLevel: string;
}

const DASHBOARD_VARIABLES = {
  ...TEMPORAL_VARIABLES,
  mongoUri: withLegacy(MONGO_VARIABLES.mongoUri, 'MONGO_URI'),
  mongoDb: withLegacy(MONGO_VARIABLES.mongoDb, 'MONGO_DB'),
  retentionDays: RETENTION_VARIABLE,
  host: variable('DASHBOARD_HOST', text, { default: '0.0.0.0', legacy: ['HOST'] }),
  port: variable('DASHBOARD_PORT', port, { default: 8080, legacy: ['PORT'] }),
  token: variable('DASHBOARD_API_TOKEN', secret(16), { legacy: ['API_TOKEN'] }),
  temporalUiUrl: variable('DASHBOARD_TEMPORAL_UI_URL', httpUrl, { legacy: ['TEMPORAL_UI_URL'] }),
  protectReads: variable('DASHBOARD_PROTECT_READS', boolean, { default: false }),
  refreshMs: variable('DASHBOARD_REFRESH_MS', integer({ min: 500, max: 60_000 }), { default: 2000 }),
  logLevel: LOG_LEVEL_VARIABLE,
};

export function readServerConfig(env: NodeJS.ProcessEnv = process.env, logger?: Logger): ServerConfig {
  const values = readConfig(env, DASHBOARD_VARIABLES, { logger });
  if (values.protectReads && values.token === undefined)
    throw new ValidationError([
      {
        field: 'DASHBOARD_PROTECT_READS',
        rule: 'needs DASHBOARD_API_TOKEN (no one could read the dashboard)',
      },
    ]);
  return {
    temporal: temporalTarget(values),
    mongoUri: values.mongoUri,
    database: values.mongoDb,
    retentionDays: values.retentionDays,
    host: values.host,
    port: values.port,
    settings: {
      auth: { token: values.token, protectReads: values.protectReads },
      ...(values.temporalUiUrl ? { temporalUiUrl: values.temporalUiUrl.replace(/\/+$/, '') } : {}),
      refreshMs: values.refreshMs,
    },
    logLevel: values.logLevel,
  };
}
