/**
 * Prometheus Alertmanager, API v2 (`POST /api/v2/alerts`). Alertmanager identifies an alert by
 * its label set, so an anomaly reported on several ticks stays one alert (it groups, silences and
 * deduplicates it); a condition ends by posting the same labels with `endsAt` set. Firing alerts
 * carry `endsAt = at + ttl` so one whose end was never sent (a lost worker) expires by itself.
 *
 * Alerts: CanaryAnomaly{rollout,service,version,action,metric}, CanaryRolloutPaused,
 * CanaryRoutingFailed, CanaryPromoted, CanaryRolledBack, CanaryAborted.
 */
import type { Anomaly } from '../rollout/verdict';
import type { AdapterSpec } from '../rollout/spec';
import type { AlertEvent } from '../rollout/types';
import { type FieldReader } from '../core/validation';
import type { AlertNotification, AlertSink, OpenCondition } from './alert-sink';
import { anomalyLine, conditionLine, formatShare, headline } from './alert-text';
import { postJson } from './http-post';
import {
  checkSinkKeys,
  readEnvName,
  readHttpUrl,
  readSinkName,
  readStringMap,
  readTimeoutMs,
  secretFromEnv,
} from './sink-options';

export interface AlertmanagerSinkConfig {
  kind: 'alertmanager';
  name?: string;
  /** Base URL, e.g. http://alertmanager:9093 (the sink appends /api/v2/alerts). */
  url: string;
  ttlMs: number;
  labels: Record<string, string>;
  bearerTokenEnv?: string;
  timeoutMs: number;
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]{0,63}$/;
const OWN_LABELS = ['alertname', 'rollout', 'service', 'version', 'severity', 'action', 'metric'];

export function readAlertmanagerSinkConfig(
  r: FieldReader,
  spec: AdapterSpec,
  field: string,
): AlertmanagerSinkConfig {
  checkSinkKeys(r, spec, ['kind', 'name', 'url', 'ttl', 'labels', 'bearerTokenEnv', 'timeout'], field);
  const name = readSinkName(r, spec.name, `${field}.name`);
  const url = readHttpUrl(r, spec.url, `${field}.url`);
  if (url?.endsWith('/api/v2/alerts'))
    r.fail(`${field}.url`, 'must be the base URL of Alertmanager (the sink appends /api/v2/alerts)');
  const ttlMs = r.duration(spec.ttl, `${field}.ttl`, { minMs: 60_000, maxMs: 7 * 24 * 3_600_000 }, 3_600_000);
  const labels = readStringMap(
    r,
    spec.labels,
    `${field}.labels`,
    LABEL_NAME,
    'must be a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)',
  );
  for (const label of Object.keys(labels)) {
    if (OWN_LABELS.includes(label))
      r.fail(`${field}.labels.${label}`, `is set by the sink (its labels: ${OWN_LABELS.join(', ')})`);
  }
  const bearerTokenEnv =
    spec.bearerTokenEnv === undefined
      ? undefined
      : readEnvName(r, spec.bearerTokenEnv, `${field}.bearerTokenEnv`);
  const timeoutMs = readTimeoutMs(r, spec.timeout, `${field}.timeout`);
  return {
    kind: 'alertmanager',
    ...(name ? { name } : {}),
    url: url as string,
    ttlMs: ttlMs as number,
    labels,
    ...(bearerTokenEnv ? { bearerTokenEnv } : {}),
    timeoutMs: timeoutMs as number,
  };
}

/** One element of the v2 API's PostableAlerts. */
export interface PostableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL?: string;
}

const ALERT_NAMES: Record<Exclude<AlertEvent['kind'], 'anomaly' | 'resolved'>, string> = {
  paused: 'CanaryRolloutPaused',
  routing_failed: 'CanaryRoutingFailed',
  drift: 'CanaryRoutingDrift',
  promoted: 'CanaryPromoted',
  rolled_back: 'CanaryRolledBack',
  aborted: 'CanaryAborted',
  abandoned: 'CanaryAbandoned',
};

const CONDITION_SEVERITY = { paused: 'warning', routing_failed: 'critical' } as const;

function anomalyLabels(anomaly: Anomaly): Record<string, string> {
  return {
    alertname: 'CanaryAnomaly',
    ...(anomaly.action === undefined ? {} : { action: anomaly.action }),
    metric: anomaly.metric,
    // Derived from the anomaly alone, so the alert that ends it carries the same labels.
    severity: anomaly.critical ? 'critical' : 'warning',
  };
}

function conditionLabels(condition: OpenCondition): Record<string, string> {
  if (condition.kind === 'anomaly') return anomalyLabels(condition.anomaly);
  return { alertname: ALERT_NAMES[condition.kind], severity: CONDITION_SEVERITY[condition.kind] };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The alerts one notification posts: what it reports (firing) and what it ends (resolved). */
export function alertmanagerAlerts(
  notification: AlertNotification,
  options: { ttlMs: number; labels: Record<string, string> },
): PostableAlert[] {
  const { event, links, ends, endedAt } = notification;
  const common = {
    ...options.labels,
    rollout: event.rolloutId,
    service: event.service,
    version: event.version,
  };
  const linkAnnotations: Record<string, string> = {
    ...(links.dashboard ? { dashboard_url: links.dashboard } : {}),
    ...(links.temporalUi ? { temporal_url: links.temporalUi } : {}),
  };
  const generatorURL = links.dashboard ?? links.temporalUi;
  const share = `canary share ${formatShare(event.shareBefore)} → ${formatShare(event.shareAfter)} at tick ${event.tick}`;
  const firingUntil = endedAt ?? event.at + options.ttlMs;
  const alerts: PostableAlert[] = [];

  const fire = (labels: Record<string, string>, summary: string, description: string) =>
    alerts.push({
      labels: { ...common, ...labels },
      annotations: { summary, description, ...linkAnnotations },
      startsAt: iso(event.at),
      endsAt: iso(Math.max(firingUntil, event.at + 1)),
      ...(generatorURL ? { generatorURL } : {}),
    });

  if (event.kind === 'anomaly') {
    for (const anomaly of event.anomalies)
      fire(
        anomalyLabels(anomaly),
        `${event.service} ${event.version}: ${anomaly.summary}`,
        `${anomalyLine(anomaly)}; ${share}`,
      );
  } else if (event.kind !== 'resolved') {
    const labels = { alertname: ALERT_NAMES[event.kind], severity: event.severity };
    if (event.kind === 'paused' || event.kind === 'routing_failed')
      labels.severity = CONDITION_SEVERITY[event.kind];
    fire(labels, headline(event), `${event.summary}; ${share}`);
  }
  for (const condition of ends) {
    alerts.push({
      labels: { ...common, ...conditionLabels(condition) },
      annotations: {
        summary: `${event.service} ${event.version}: ended (${conditionLine(condition)})`,
        description: `${event.summary}; ${share}`,
        ...linkAnnotations,
      },
      startsAt: iso(condition.since),
      endsAt: iso(Math.max(event.at, condition.since + 1)),
      ...(generatorURL ? { generatorURL } : {}),
    });
  }
  return alerts;
}

export class AlertmanagerSink implements AlertSink {
  readonly kind = 'alertmanager';

  constructor(
    readonly id: string,
    private readonly config: AlertmanagerSinkConfig,
    private readonly env: NodeJS.ProcessEnv,
    private readonly field: string,
  ) {}

  async send(notification: AlertNotification, signal: AbortSignal): Promise<void> {
    const alerts = alertmanagerAlerts(notification, this.config);
    if (alerts.length === 0) return;
    const token = this.config.bearerTokenEnv
      ? secretFromEnv(this.env, this.config.bearerTokenEnv, `${this.field}.bearerTokenEnv`)
      : undefined;
    await postJson({
      url: `${this.config.url}/api/v2/alerts`,
      body: JSON.stringify(alerts),
      headers: token ? { authorization: `Bearer ${token}` } : {},
      timeoutMs: this.config.timeoutMs,
      describe: `alertmanager ${new URL(this.config.url).origin}`,
      signal,
    });
  }
}
