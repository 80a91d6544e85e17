/**
 * Generic JSON webhook. Every request is signed with HMAC-SHA256 over `<timestamp>.<body>`
 * (secret from the worker's environment variable named by `secretEnv`), so a receiver can check
 * that the alert comes from us and is fresh; `X-Canary-Event` carries the idempotency key.
 *
 *   X-Canary-Timestamp: 1718000000
 *   X-Canary-Signature: sha256=<hex HMAC-SHA256(secret, "1718000000." + body)>
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AdapterSpec } from '../rollout/spec';
import { type FieldReader } from '../core/validation';
import type { AlertNotification, AlertSink, OpenCondition } from './alert-sink';
import { plainText } from './alert-text';
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

export const SIGNATURE_HEADER = 'x-canary-signature';
export const TIMESTAMP_HEADER = 'x-canary-timestamp';
export const EVENT_HEADER = 'x-canary-event';

export interface WebhookSinkConfig {
  kind: 'webhook';
  name?: string;
  url: string;
  secretEnv: string;
  timeoutMs: number;
  headers: Record<string, string>;
}

const HEADER_NAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;
const CREDENTIAL_HEADERS = /^(authorization|proxy-authorization|cookie|x-api-key|x-auth-token)$/i;

export function readWebhookSinkConfig(r: FieldReader, spec: AdapterSpec, field: string): WebhookSinkConfig {
  checkSinkKeys(r, spec, ['kind', 'name', 'url', 'secretEnv', 'timeout', 'headers'], field);
  const name = readSinkName(r, spec.name, `${field}.name`);
  const url = readHttpUrl(r, spec.url, `${field}.url`);
  const secretEnv = readEnvName(r, spec.secretEnv, `${field}.secretEnv`);
  const timeoutMs = readTimeoutMs(r, spec.timeout, `${field}.timeout`);
  const headers = readStringMap(
    r,
    spec.headers,
    `${field}.headers`,
    HEADER_NAME,
    'must be an HTTP header name (letters, digits, -)',
  );
  for (const header of Object.keys(headers)) {
    if (CREDENTIAL_HEADERS.test(header) || header.toLowerCase().startsWith('x-canary-'))
      r.fail(`${field}.headers.${header}`, 'is set by the sink or carries credentials: not allowed here');
  }
  return {
    kind: 'webhook',
    ...(name ? { name } : {}),
    url: url as string,
    secretEnv: secretEnv as string,
    timeoutMs: timeoutMs as number,
    headers,
  };
}

export function signWebhookBody(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** What a receiver runs: true when the signature matches and the timestamp is within `toleranceS`. */
export function verifyWebhookSignature(
  secret: string,
  headers: { signature?: string; timestamp?: string },
  body: string,
  now = Date.now(),
  toleranceS = 300,
): boolean {
  const timestamp = Number(headers.timestamp);
  if (!headers.signature || !Number.isInteger(timestamp)) return false;
  if (Math.abs(now / 1000 - timestamp) > toleranceS) return false;
  const expected = Buffer.from(signWebhookBody(secret, timestamp, body));
  const presented = Buffer.from(headers.signature);
  return expected.length === presented.length && timingSafeEqual(expected, presented);
}

function conditionJson(condition: OpenCondition) {
  return condition.kind === 'anomaly'
    ? {
        kind: condition.kind,
        action: condition.anomaly.action ?? null,
        metric: condition.anomaly.metric,
        summary: condition.anomaly.summary,
        since: new Date(condition.since).toISOString(),
      }
    : { kind: condition.kind, summary: condition.summary, since: new Date(condition.since).toISOString() };
}

/** The JSON document receivers get (version 1). */
export function webhookPayload(notification: AlertNotification) {
  const { event, links, ends, endedAt } = notification;
  return {
    type: 'canary.alert',
    version: 1,
    key: event.key,
    kind: event.kind,
    severity: event.severity,
    summary: event.summary,
    text: plainText(notification),
    rollout: { id: event.rolloutId, service: event.service, version: event.version },
    tick: event.tick,
    share: { before: event.shareBefore, after: event.shareAfter },
    anomalies: event.anomalies,
    ends: ends.map(conditionJson),
    links,
    at: new Date(event.at).toISOString(),
    ...(endedAt === undefined ? {} : { endedAt: new Date(endedAt).toISOString() }),
  };
}

export class WebhookSink implements AlertSink {
  readonly kind = 'webhook';

  constructor(
    readonly id: string,
    private readonly config: WebhookSinkConfig,
    private readonly env: NodeJS.ProcessEnv,
    private readonly field: string,
  ) {}

  async send(notification: AlertNotification, signal: AbortSignal): Promise<void> {
    const secret = secretFromEnv(this.env, this.config.secretEnv, `${this.field}.secretEnv`);
    const body = JSON.stringify(webhookPayload(notification));
    const timestamp = Math.floor(Date.now() / 1000);
    await postJson({
      url: this.config.url,
      body,
      headers: {
        ...this.config.headers,
        [TIMESTAMP_HEADER]: String(timestamp),
        [SIGNATURE_HEADER]: signWebhookBody(secret, timestamp, body),
        [EVENT_HEADER]: notification.event.key,
      },
      timeoutMs: this.config.timeoutMs,
      describe: `webhook ${new URL(this.config.url).origin}`,
      signal,
    });
  }
}
