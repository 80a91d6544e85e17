/**
 * The alert sink factory: switches on `kind`, validates each kind's options with FieldReader and
 * throws on an unknown kind. `validateAlertSinks` is what the CLI and the API run before a
 * rollout starts, so a bad sink is refused at the edge instead of failing at the first alert.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../platform/logger';
import type { AdapterSpec } from '../rollout/spec';
import { FieldReader, ValidationError, type Json } from '../core/validation';
import type { AlertSink } from './alert-sink';
import {
  AlertmanagerSink,
  readAlertmanagerSinkConfig,
  type AlertmanagerSinkConfig,
} from './alertmanager-sink';
import { LogSink, readLogSinkConfig, type LogSinkConfig } from './log-sink';
import { readSlackSinkConfig, SlackSink, type SlackSinkConfig } from './slack-sink';
import { readWebhookSinkConfig, WebhookSink, type WebhookSinkConfig } from './webhook-sink';

export const ALERT_SINK_KINDS = ['log', 'webhook', 'slack', 'alertmanager'] as const;

export type AlertSinkConfig = LogSinkConfig | WebhookSinkConfig | SlackSinkConfig | AlertmanagerSinkConfig;

/** A validated sink with the spec path it came from and its deduplication identity. */
export interface ValidatedSink {
  config: AlertSinkConfig;
  field: string;
  id: string;
}

/** Id of the always-on log sink when the spec does not list one. */
export const DEFAULT_LOG_SINK_ID = 'log';

function canonical(value: Json): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonical(value[key] as Json)}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

/** `name` when given; otherwise derived from the options, so the same sink keeps its id across retries. */
function sinkId(spec: AdapterSpec, config: AlertSinkConfig): string {
  if (config.name) return config.name;
  return `${config.kind}-${createHash('sha256').update(canonical(spec)).digest('hex').slice(0, 12)}`;
}

function readSinkConfig(r: FieldReader, spec: AdapterSpec, field: string): AlertSinkConfig | undefined {
  switch (spec.kind) {
    case 'log':
      return readLogSinkConfig(r, spec, field);
    case 'webhook':
      return readWebhookSinkConfig(r, spec, field);
    case 'slack':
      return readSlackSinkConfig(r, spec, field);
    case 'alertmanager':
      return readAlertmanagerSinkConfig(r, spec, field);
    default:
      return r.fail(`${field}.kind`, `must be one of ${ALERT_SINK_KINDS.join(', ')}`);
  }
}

/** Validates every sink at once; throws one ValidationError naming each bad field. */
export function validateAlertSinks(sinks: readonly AdapterSpec[], prefix = 'alerts.sinks'): ValidatedSink[] {
  const r = new FieldReader();
  const validated: ValidatedSink[] = [];
  const seen = new Map<string, string>();
  sinks.forEach((spec, index) => {
    const field = `${prefix}[${index}]`;
    const before = r.issues.length;
    const config = r.object(spec, field) ? readSinkConfig(r, spec, field) : undefined;
    if (!config || r.issues.length > before) return;
    const id = sinkId(spec, config);
    const other = seen.get(id);
    if (other) {
      r.fail(
        config.name ? `${field}.name` : field,
        `must differ from ${other} (two sinks would share one delivery record)`,
      );
      return;
    }
    seen.set(id, field);
    validated.push({ config, field, id });
  });
  r.throwIfAny();
  return validated;
}

export interface SinkDeps {
  logger: Logger;
  /** Where secrets named by `secretEnv`, `urlEnv` and `bearerTokenEnv` are read when sending. */
  env: NodeJS.ProcessEnv;
}

export function createAlertSink(sink: ValidatedSink, deps: SinkDeps): AlertSink {
  const { config, id, field } = sink;
  switch (config.kind) {
    case 'log':
      return new LogSink(id, deps.logger);
    case 'webhook':
      return new WebhookSink(id, config, deps.env, field);
    case 'slack':
      return new SlackSink(id, config, deps.env, field);
    case 'alertmanager':
      return new AlertmanagerSink(id, config, deps.env, field);
    default:
      throw new ValidationError([
        { field: `${field}.kind`, rule: `must be one of ${ALERT_SINK_KINDS.join(', ')}` },
      ]);
  }
}

/** The sinks of a spec, with the structured log always among them. */
export function createAlertSinks(specs: readonly AdapterSpec[], deps: SinkDeps): AlertSink[] {
  const sinks = validateAlertSinks(specs).map((sink) => createAlertSink(sink, deps));
  if (!sinks.some((sink) => sink.kind === 'log'))
    sinks.unshift(new LogSink(DEFAULT_LOG_SINK_ID, deps.logger));
  return sinks;
}
