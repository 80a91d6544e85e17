import fc from 'fast-check';
import { anomalyKey } from '../../rollout/verdict';
import { anomalyLine, formatEffect, formatPercent, plainText } from '../../alerts/alert-text';
import { alertmanagerAlerts } from '../../alerts/alertmanager-sink';
import { retryDelay, DEFAULT_RETRY } from '../../alerts/dispatcher';
import { conditionsFor, openConditionsBefore, type SentEvent } from '../../alerts/open-conditions';
import { createAlertSinks, validateAlertSinks } from '../../alerts/sinks';
import { escapeSlack, slackMessage } from '../../alerts/slack-sink';
import { signWebhookBody, verifyWebhookSignature, webhookPayload } from '../../alerts/webhook-sink';
import { validateComponentConfig } from '../../client/validate-spec';
import { createLogger } from '../../platform/logger';
import { rolloutLinks } from '../../rollout/links';
import type { AdapterSpec } from '../../rollout/spec';
import type { AlertEvent } from '../../rollout/types';
import { testSpec } from '../support/specs';
import { alertEvent, anomaly } from './events';
import { issuesOf } from '../support/issues';

const notification = (event: AlertEvent) => ({
  event,
  links: rolloutLinks(event.links, event.rolloutId),
  ends: [],
});

describe('alert text', () => {
  test('effects read as signed percentages with their interval', () => {
    expect(formatPercent(0.38)).toBe('+38 %');
    expect(formatPercent(-0.052)).toBe('-5.2 %');
    expect(formatPercent(0)).toBe('0 %');
    expect(formatEffect({ effect: 0.38, interval: [0.22, 0.55] })).toBe('+38 % [+22 %, +55 %]');
    expect(anomalyLine(anomaly())).toBe('checkout · latency_ms +38 % [+22 %, +55 %] (anytime p=0.003)');
  });

  test('an alert names the rollout, action, metric, effect, shares and both links', () => {
    const text = plainText(notification(alertEvent({ rolloutId: 'rollout-shop-v2' })));
    expect(text).toContain('shop v2 anomaly detected at tick 4: share 22 % → 17 %');
    expect(text).toContain('checkout · latency_ms +38 % [+22 %, +55 %]');
    expect(text).toContain('dashboard: http://dashboard.test/rollouts/rollout-shop-v2');
    expect(text).toContain('workflow: http://temporal.test/namespaces/default/workflows/rollout-shop-v2');
  });

  test('drift reads as the share the router served and the share applied again', () => {
    const event = alertEvent({
      kind: 'drift',
      severity: 'critical',
      shareBefore: 0,
      shareAfter: 10,
      summary: 'router haproxy serves 0 % to the canary, 10 % was applied; applying 10 % again',
    });
    expect(plainText(notification(event))).toContain(
      '[critical] shop v2 routing drifted at tick 4: share 0 % → 10 %',
    );
    const [fired] = alertmanagerAlerts(notification(event), { ttlMs: 60_000, labels: {} });
    expect(fired?.labels).toMatchObject({ alertname: 'CanaryRoutingDrift', severity: 'critical' });
  });

  test('Slack mrkdwn control characters in user input are escaped', () => {
    const event = alertEvent({
      anomalies: [anomaly({ action: '<!channel> & <script>' })],
      summary: 'a <b> & c',
    });
    const message = JSON.stringify(slackMessage(notification(event)));
    expect(message).not.toContain('<!channel>');
    expect(message).toContain('&lt;!channel&gt; &amp; &lt;script&gt;');
    expect(escapeSlack('<@U1>')).toBe('&lt;@U1&gt;');
  });

  test('the webhook payload carries the rollout, share, anomalies and links', () => {
    const payload = webhookPayload(notification(alertEvent({ rolloutId: 'rollout-shop-v2' })));
    expect(payload).toMatchObject({
      type: 'canary.alert',
      kind: 'anomaly',
      rollout: { id: 'rollout-shop-v2', service: 'shop', version: 'v2' },
      share: { before: 22, after: 17 },
      anomalies: [{ action: 'checkout', metric: 'latency_ms', effect: 0.38, interval: [0.22, 0.55] }],
      links: { dashboard: 'http://dashboard.test/rollouts/rollout-shop-v2' },
    });
  });
});

describe('webhook signatures', () => {
  test('a receiver verifies what the sink signed, and nothing else', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.string(), fc.string(), (secret, body, other) => {
        const timestamp = 1_700_000_000;
        const headers = { signature: signWebhookBody(secret, timestamp, body), timestamp: String(timestamp) };
        const now = timestamp * 1000;
        expect(verifyWebhookSignature(secret, headers, body, now)).toBe(true);
        if (other !== body) expect(verifyWebhookSignature(secret, headers, other, now)).toBe(false);
        expect(verifyWebhookSignature(`${secret}x`, headers, body, now)).toBe(false);
        expect(verifyWebhookSignature(secret, headers, body, now + 301_000)).toBe(false);
      }),
    );
  });
});

describe('sink factory', () => {
  test('an unknown kind is refused, naming the field and the known kinds', () => {
    expect(issuesOf(() => validateAlertSinks([{ kind: 'pagerduty' }]))).toEqual([
      'alerts.sinks[0].kind: must be one of log, webhook, slack, alertmanager',
    ]);
  });

  test('every bad option of every sink is reported at once', () => {
    const issues = issuesOf(() =>
      validateAlertSinks([
        { kind: 'webhook', url: 'ftp://x', secret: 'hunter2' },
        { kind: 'slack', url: 'https://hooks.slack.com/services/T/B/X' },
        {
          kind: 'alertmanager',
          url: 'http://am:9093/api/v2/alerts',
          labels: { severity: 'x', 'bad-name': 'y' },
        },
        { kind: 'log', level: 'debug' },
      ]),
    );
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^alerts\.sinks\[0\]\.secret: must not be given inline/),
        'alerts.sinks[0].url: must be an http:// or https:// URL',
        'alerts.sinks[0].secretEnv: must be a non-empty string',
        expect.stringMatching(/^alerts\.sinks\[1\]\.url: is a credential for Slack webhooks/),
        'alerts.sinks[1].urlEnv: must be a non-empty string',
        expect.stringMatching(/^alerts\.sinks\[2\]\.url: must be the base URL of Alertmanager/),
        expect.stringMatching(/^alerts\.sinks\[2\]\.labels\.severity: is set by the sink/),
        expect.stringMatching(/^alerts\.sinks\[2\]\.labels\.bad-name: must be a Prometheus label name/),
        'alerts.sinks[3].level: is not a known field (known: kind, name)',
      ]),
    );
  });

  test('two sinks that would share a delivery record are refused', () => {
    const sink = { kind: 'webhook', url: 'http://hooks.test/a', secretEnv: 'HOOK_SECRET' };
    expect(issuesOf(() => validateAlertSinks([sink, { ...sink }]))).toEqual([
      'alerts.sinks[1]: must differ from alerts.sinks[0] (two sinks would share one delivery record)',
    ]);
    expect(
      issuesOf(() =>
        validateAlertSinks([
          { kind: 'log', name: 'a' },
          { kind: 'log', name: 'a' },
        ]),
      ),
    ).toHaveLength(1);
  });

  test('sink ids are stable across calls and differ between configurations', () => {
    const specs: AdapterSpec[] = [
      { kind: 'webhook', url: 'http://hooks.test/a', secretEnv: 'HOOK_SECRET', timeout: '2s' },
      { timeout: '2s', secretEnv: 'HOOK_SECRET', url: 'http://hooks.test/a', kind: 'webhook' },
      { kind: 'webhook', url: 'http://hooks.test/b', secretEnv: 'HOOK_SECRET' },
    ];
    const ids = specs.map((spec) => validateAlertSinks([spec])[0]?.id);
    expect(ids[0]).toBe(ids[1]);
    expect(ids[0]).not.toBe(ids[2]);
    expect(validateAlertSinks([{ kind: 'slack', name: 'team-chat', urlEnv: 'SLACK_URL' }])[0]?.id).toBe(
      'team-chat',
    );
  });

  test('the structured log is always among the sinks', () => {
    const deps = { logger: createLogger('test', 'silent'), env: {} };
    expect(createAlertSinks([], deps).map((sink) => sink.kind)).toEqual(['log']);
    expect(
      createAlertSinks([{ kind: 'alertmanager', url: 'http://am.test:9093' }], deps).map((sink) => sink.kind),
    ).toEqual(['log', 'alertmanager']);
    expect(createAlertSinks([{ kind: 'log', name: 'audit' }], deps).map((sink) => sink.id)).toEqual([
      'audit',
    ]);
  });

  test('a rollout spec with a bad sink is refused before it starts', () => {
    const spec = testSpec({ alerts: { sinks: [{ kind: 'webhook', url: 'http://hooks.test' }] } });
    // The test router kind fails the router's own check too; the alert issue stands beside it.
    const issues = issuesOf(() => validateComponentConfig(spec));
    expect(issues.filter((issue) => issue.startsWith('alerts.'))).toEqual([
      'alerts.sinks[0].secretEnv: must be a non-empty string',
    ]);
  });
});

describe('Alertmanager alerts', () => {
  test('an anomaly fires one alert per anomaly; the recovery ends it with the same labels', () => {
    const fired = alertmanagerAlerts(notification(alertEvent({ rolloutId: 'rollout-shop-v2' })), {
      ttlMs: 3_600_000,
      labels: { team: 'shop' },
    });
    expect(fired).toHaveLength(1);
    expect(fired[0]?.labels).toEqual({
      alertname: 'CanaryAnomaly',
      rollout: 'rollout-shop-v2',
      service: 'shop',
      version: 'v2',
      action: 'checkout',
      metric: 'latency_ms',
      severity: 'warning',
      team: 'shop',
    });
    expect(fired[0]?.annotations.dashboard_url).toBe('http://dashboard.test/rollouts/rollout-shop-v2');
    expect(Date.parse(fired[0]!.endsAt) - Date.parse(fired[0]!.startsAt)).toBe(3_600_000);

    const resolved = alertEvent({
      rolloutId: 'rollout-shop-v2',
      kind: 'resolved',
      tick: 8,
      severity: 'info',
    });
    const ended = alertmanagerAlerts(
      { ...notification(resolved), ends: [{ kind: 'anomaly', anomaly: anomaly(), since: 1 }] },
      { ttlMs: 3_600_000, labels: { team: 'shop' } },
    );
    expect(ended).toHaveLength(1);
    expect(ended[0]?.labels).toEqual(fired[0]?.labels);
    expect(ended[0]?.endsAt).toBe(new Date(resolved.at).toISOString());
  });
});

describe('open conditions', () => {
  const sentEvent = fc.record({
    eventKind: fc.constantFrom<AlertEvent['kind']>(
      'anomaly',
      'resolved',
      'paused',
      'routing_failed',
      'promoted',
      'rolled_back',
    ),
    at: fc.integer({ min: 0, max: 1000 }),
    tick: fc.integer({ min: 0, max: 50 }),
    summary: fc.constant('s'),
    anomalies: fc.array(
      fc.record({
        action: fc.constantFrom('checkout', 'search'),
        metric: fc.constantFrom('latency_ms', 'error_rate'),
      }),
      { maxLength: 3 },
    ),
  });
  const asSent = (
    event: { anomalies: { action: string; metric: string }[] } & Omit<SentEvent, 'anomalies'>,
  ) => ({ ...event, anomalies: event.anomalies.map((a) => anomaly(a)) });

  test('a resolved event ends every open anomaly, the end of a rollout ends everything', () => {
    fc.assert(
      fc.property(fc.array(sentEvent, { maxLength: 20 }), (events) => {
        const history = events.map(asSent);
        const probe = { eventKind: 'resolved' as const, at: 2000, tick: 99, summary: '', anomalies: [] };
        const open = openConditionsBefore(history, probe);
        expect(conditionsFor(history, probe).ends).toEqual(open.filter((c) => c.kind === 'anomaly'));
        expect(conditionsFor(history, { ...probe, eventKind: 'rolled_back' }).ends).toEqual(open);
        const keys = open.map((c) => (c.kind === 'anomaly' ? anomalyKey(c.anomaly) : c.kind));
        expect(new Set(keys).size).toBe(keys.length);
        const after = [...history, probe];
        expect(
          openConditionsBefore(after, { ...probe, at: 3000 }).filter((c) => c.kind === 'anomaly'),
        ).toEqual([]);
      }),
    );
  });

  test('an anomaly that arrives after its recovery was sent is marked as already ended', () => {
    const late = asSent({
      eventKind: 'anomaly',
      at: 100,
      tick: 4,
      summary: '',
      anomalies: [{ action: 'checkout', metric: 'latency_ms' }],
    });
    const recovery = asSent({ eventKind: 'resolved', at: 400, tick: 8, summary: '', anomalies: [] });
    expect(conditionsFor([recovery], late)).toEqual({ ends: [], endedAt: 400 });
    expect(conditionsFor([], late)).toEqual({ ends: [] });
    expect(conditionsFor([late], recovery).ends).toEqual([
      { kind: 'anomaly', anomaly: late.anomalies[0], since: 100 },
    ]);
  });
});

describe('retry delays', () => {
  test('grow exponentially with jitter, are capped, and honour Retry-After', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 30_000 }),
        (tries, random, retryAfter) => {
          const ceiling = Math.min(DEFAULT_RETRY.maxDelayMs, DEFAULT_RETRY.initialDelayMs * 2 ** (tries - 1));
          const delay = retryDelay(DEFAULT_RETRY, tries, random);
          expect(delay).toBeGreaterThanOrEqual(ceiling / 2 - 1);
          expect(delay).toBeLessThanOrEqual(ceiling + 1);
          expect(retryDelay(DEFAULT_RETRY, tries, random, retryAfter)).toBeGreaterThanOrEqual(retryAfter);
        },
      ),
    );
  });
});
