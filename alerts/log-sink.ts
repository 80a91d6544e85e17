/**
 * The structured log sink: one JSON line per alert through pino. Always on (the dispatcher adds
 * it when the spec does not list it), so every alert leaves a trace even when no sink is set up.
 */
import type { Logger } from '../platform/logger';
import type { AdapterSpec } from '../rollout/spec';
import { type FieldReader } from '../core/validation';
import type { AlertNotification, AlertSink } from './alert-sink';
import { conditionKey, headline } from './alert-text';
import { checkSinkKeys, readSinkName } from './sink-options';

export interface LogSinkConfig {
  kind: 'log';
  name?: string;
}

export function readLogSinkConfig(r: FieldReader, spec: AdapterSpec, field: string): LogSinkConfig {
  checkSinkKeys(r, spec, ['kind', 'name'], field);
  const name = readSinkName(r, spec.name, `${field}.name`);
  return { kind: 'log', ...(name ? { name } : {}) };
}

const LEVELS = { info: 'info', warning: 'warn', critical: 'error' } as const;

export class LogSink implements AlertSink {
  readonly kind = 'log';

  constructor(
    readonly id: string,
    private readonly logger: Logger,
  ) {}

  async send(notification: AlertNotification): Promise<void> {
    const { event, links, ends } = notification;
    this.logger[LEVELS[event.severity]](
      {
        alert: {
          key: event.key,
          kind: event.kind,
          severity: event.severity,
          rolloutId: event.rolloutId,
          service: event.service,
          version: event.version,
          tick: event.tick,
          shareBefore: event.shareBefore,
          shareAfter: event.shareAfter,
          anomalies: event.anomalies.map((anomaly) => ({
            action: anomaly.action ?? null,
            metric: anomaly.metric,
            effect: anomaly.effect,
            interval: anomaly.interval,
            statistic: anomaly.statistic,
            critical: anomaly.critical,
          })),
          ends: ends.map(conditionKey),
          links,
          at: new Date(event.at).toISOString(),
        },
      },
      `${headline(event)}: ${event.summary}`,
    );
  }
}
