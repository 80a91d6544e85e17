import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient, type Db } from 'mongodb';
import { capturingLogger } from '../support/log-capture';
import { request } from 'undici';
import { AlertDeliveryError, AlertDispatcher, type DeliveryReport } from '../../alerts/dispatcher';
import { ALERT_DELIVERIES_COLLECTION } from '../../alerts/delivery-store';
import { AlertmanagerServer } from '../../devstack/alertmanager';
import { FerretDbServer } from '../../devstack/ferretdb';
import type { AdapterSpec } from '../../rollout/spec';
import { ValidationError } from '../../core/validation';
import { alertEvent, anomaly } from './events';
import { HttpReceiver } from './receiver';

const SECRET = 'hmac-secret-never-logged';
let dir: string;
let ferret: FerretDbServer;
let mongo: MongoClient;
let db: Db;
let hooks: HttpReceiver;
let amHook: HttpReceiver;
let alertmanager: AlertmanagerServer;
const logLines: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'canary-alerts-'));
  [hooks, amHook] = await Promise.all([HttpReceiver.start(), HttpReceiver.start()]);
  // Alertmanager notifies amHook, so the test sees what a person's receiver would get.
  const config = [
    'route:',
    '  receiver: hook',
    "  group_by: ['alertname', 'rollout', 'action', 'metric']",
    '  group_wait: 0s',
    '  group_interval: 1s',
    '  repeat_interval: 1h',
    'receivers:',
    '  - name: hook',
    '    webhook_configs:',
    `      - url: ${amHook.url}/alertmanager`,
    '        send_resolved: true',
    '',
  ].join('\n');
  [ferret, alertmanager] = await Promise.all([
    FerretDbServer.start({ dataDir: path.join(dir, 'ferretdb'), logFile: path.join(dir, 'ferretdb.log') }),
    AlertmanagerServer.start({
      dir: path.join(dir, 'alertmanager'),
      config,
      logFile: path.join(dir, 'am.log'),
    }),
  ]);
  mongo = await MongoClient.connect(ferret.uri, { serverSelectionTimeoutMS: 5000 });
  db = mongo.db('alerts_test');
});

afterAll(async () => {
  await mongo?.close();
  await Promise.all([ferret?.stop(), alertmanager?.stop(), hooks?.stop(), amHook?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  hooks.reset();
  logLines.length = 0;
});

function dispatcher(
  reports: DeliveryReport[] = [],
  retry = { budgetMs: 2000, initialDelayMs: 50, maxDelayMs: 200 },
) {
  const logger = capturingLogger(logLines);
  return new AlertDispatcher({
    db,
    logger,
    env: { HOOK_SECRET: SECRET, SLACK_URL: `${hooks.url}/slack` },
    retry,
    onDelivery: (report) => reports.push(report),
  });
}

const webhook: AdapterSpec = { kind: 'webhook', url: '', secretEnv: 'HOOK_SECRET', timeout: '1s' };
const sinks = (): AdapterSpec[] => [
  { ...webhook, url: `${hooks.url}/webhook` },
  { kind: 'slack', urlEnv: 'SLACK_URL', timeout: '1s' },
];
const paths = () => hooks.requests.map((r) => r.path).sort();

describe('AlertDispatcher against FerretDB and real HTTP receivers', () => {
  test('a retried notify delivers to each sink once, and the log has one line', async () => {
    const reports: DeliveryReport[] = [];
    const event = alertEvent();
    await dispatcher(reports).dispatch(event, sinks());
    await dispatcher(reports).dispatch(event, sinks());
    expect(paths()).toEqual(['/slack', '/webhook']);
    expect(reports.map((r) => `${r.sinkKind}:${r.outcome}`).sort()).toEqual([
      'log:delivered',
      'log:duplicate',
      'slack:delivered',
      'slack:duplicate',
      'webhook:delivered',
      'webhook:duplicate',
    ]);
    const alertLines = logLines.filter((line) => line.includes('"alert"'));
    expect(alertLines).toHaveLength(1);
    expect(JSON.parse(alertLines[0]!)).toMatchObject({
      level: 40,
      alert: { key: event.key, kind: 'anomaly', anomalies: [{ action: 'checkout', metric: 'latency_ms' }] },
    });
    const records = await db.collection(ALERT_DELIVERIES_COLLECTION).find({ key: event.key }).toArray();
    expect(records.map((r) => r.state as string)).toEqual(['delivered', 'delivered', 'delivered']);
    // Set by the claim and every later write: the TTL index expires deliveries by this Date.
    expect(records.map((r) => r.storedAt instanceof Date)).toEqual([true, true, true]);
  });

  test('two attempts at once send to each sink once: the loser finds the lease held and fails for a later retry', async () => {
    hooks.answer({ status: 200, delayMs: 400 }, { status: 200, delayMs: 400 });
    const event = alertEvent();
    const results = await Promise.allSettled([
      dispatcher().dispatch(event, sinks()),
      dispatcher().dispatch(event, sinks()),
    ]);
    // Each sink is claimed by one attempt; the other attempt fails (Temporal retries it later).
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected?.reason).toBeInstanceOf(AlertDeliveryError);
    expect(String(rejected?.reason)).toContain('another attempt is delivering it');
    expect(paths()).toEqual(['/slack', '/webhook']);
    await dispatcher().dispatch(event, sinks()); // the activity's retry: nothing left to send
    expect(hooks.requests).toHaveLength(2);
  });

  test('a failing sink is retried with backoff; past the budget only it is sent again by the next attempt', async () => {
    const reports: DeliveryReport[] = [];
    hooks.answer({ status: 503 }, { status: 502 });
    await dispatcher(reports).dispatch(alertEvent(), [{ ...webhook, url: `${hooks.url}/webhook` }]);
    expect(hooks.requests).toHaveLength(3);
    expect(reports.find((r) => r.sinkKind === 'webhook')).toMatchObject({ outcome: 'delivered', tries: 3 });
    const gaps = hooks.requests.slice(1).map((r, i) => r.at - hooks.requests[i]!.at);
    expect(gaps[0]).toBeGreaterThanOrEqual(25);
    expect(gaps[1]).toBeGreaterThanOrEqual(50);

    hooks.reset();
    hooks.answerPath('/webhook', ...Array.from({ length: 50 }, () => ({ status: 503 })));
    const event = alertEvent();
    const short = { budgetMs: 300, initialDelayMs: 50, maxDelayMs: 100 };
    const started = Date.now();
    await expect(dispatcher([], short).dispatch(event, sinks())).rejects.toThrow(AlertDeliveryError);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(hooks.requests.filter((r) => r.path === '/webhook').length).toBeGreaterThanOrEqual(3);
    expect(hooks.requests.filter((r) => r.path === '/slack')).toHaveLength(1);
    hooks.reset();
    await dispatcher().dispatch(event, sinks());
    expect(paths()).toEqual(['/webhook']); // Slack was delivered by the first attempt
    expect(logLines.join('')).not.toContain(SECRET);
  });

  test('a sink that refuses for good is recorded as rejected and not retried', async () => {
    const reports: DeliveryReport[] = [];
    hooks.answer({ status: 404, body: 'no such hook' });
    const event = alertEvent();
    await dispatcher(reports).dispatch(event, [
      { ...webhook, url: `${hooks.url}/webhook` },
      { kind: 'slack', urlEnv: 'UNSET_SLACK_URL' },
    ]);
    expect(hooks.requests).toHaveLength(1);
    expect(
      reports
        .filter((r) => r.outcome === 'rejected')
        .map((r) => r.sinkKind)
        .sort(),
    ).toEqual(['slack', 'webhook']);
    const refusal = logLines
      .map((line) => JSON.parse(line) as { msg: string; error?: string })
      .filter((l) => l.error);
    expect(refusal.map((l) => l.error).sort()).toEqual([
      "alerts.sinks[1].urlEnv: names UNSET_SLACK_URL, which is not set in the worker's environment",
      `webhook ${hooks.url} refused the alert with 404: no such hook`,
    ]);
    await dispatcher().dispatch(event, sinks().slice(0, 1));
    expect(hooks.requests).toHaveLength(1);
  });

  test('a delivery whose attempt died is sent again once its lease runs out', async () => {
    const event = alertEvent();
    const sink = [{ ...webhook, url: `${hooks.url}/webhook`, name: 'lease-test' }];
    const store = dispatcher().store;
    // An attempt that claimed the delivery and then died without a word.
    await store.claim(event, { id: 'lease-test', kind: 'webhook' }, Date.now() - 60_000, 1000);
    await dispatcher().dispatch(event, sink);
    expect(hooks.requests).toHaveLength(1);
    expect((await store.find(event.key, 'lease-test'))?.attempts).toBe(2);
  });

  test('a bad sink configuration fails the dispatch before anything is sent', async () => {
    await expect(dispatcher().dispatch(alertEvent(), [{ kind: 'email', to: 'x' }])).rejects.toThrow(
      ValidationError,
    );
    expect(hooks.requests).toHaveLength(0);
  });

  test('a recovery ends, in the webhook, the anomalies the sink was told about', async () => {
    const rolloutId = `rollout-shop-recovers-${process.pid}`;
    const d = dispatcher();
    await d.dispatch(alertEvent({ rolloutId, tick: 4 }), sinks().slice(0, 1));
    await d.dispatch(
      alertEvent({ rolloutId, kind: 'resolved', tick: 8, severity: 'info', summary: 'recovered' }),
      sinks().slice(0, 1),
    );
    await d.dispatch(
      alertEvent({ rolloutId, kind: 'promoted', tick: 20, severity: 'info', summary: 'promoted' }),
      sinks().slice(0, 1),
    );
    const bodies = hooks.requests.map(
      (r) => JSON.parse(r.body) as { kind: string; ends: { kind: string; action?: string }[] },
    );
    expect(bodies.map((b) => [b.kind, b.ends.map((e) => `${e.kind}:${e.action ?? ''}`)])).toEqual([
      ['anomaly', []],
      ['resolved', ['anomaly:checkout']],
      ['promoted', []],
    ]);
  });
});

interface GettableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  status: { state: string };
}

async function alertsIn(server: AlertmanagerServer, rolloutId: string): Promise<GettableAlert[]> {
  const response = await request(
    `${server.url}/api/v2/alerts?filter=${encodeURIComponent(`rollout="${rolloutId}"`)}`,
  );
  const alerts = (await response.body.json()) as GettableAlert[];
  return alerts.sort((a, b) => a.labels.alertname!.localeCompare(b.labels.alertname!));
}

interface AmNotification {
  status: string;
  alerts: { status: string; labels: Record<string, string> }[];
}

async function notificationsFor(rolloutId: string, count: number): Promise<AmNotification[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const mine = amHook.requests
      .map((r) => JSON.parse(r.body) as AmNotification)
      .filter((n) => n.alerts.some((a) => a.labels.rollout === rolloutId));
    if (mine.length >= count || Date.now() > deadline) return mine;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('Alertmanager sink against Debian prometheus-alertmanager', () => {
  test('an anomaly seen on two ticks and retried is one alert; the recovery resolves it; a rollback fires', async () => {
    const rolloutId = `rollout-shop-am-${process.pid}`;
    const am = [{ kind: 'alertmanager', url: alertmanager.url, labels: { team: 'shop' } }];
    const d = dispatcher();
    const now = Date.now();
    const first = alertEvent({ rolloutId, tick: 4, at: now - 5000 });
    await d.dispatch(first, am);
    await d.dispatch(first, am); // a retried activity
    await d.dispatch(alertEvent({ rolloutId, tick: 5, at: now - 4000, shareBefore: 17, shareAfter: 12 }), am);

    const firing = await alertsIn(alertmanager, rolloutId);
    expect(firing).toHaveLength(1);
    expect(firing[0]).toMatchObject({
      labels: {
        alertname: 'CanaryAnomaly',
        rollout: rolloutId,
        service: 'shop',
        version: 'v2',
        action: 'checkout',
        metric: 'latency_ms',
        severity: 'warning',
        team: 'shop',
      },
      annotations: {
        dashboard_url: `http://dashboard.test/rollouts/${rolloutId}`,
        temporal_url: `http://temporal.test/namespaces/default/workflows/${rolloutId}`,
      },
      status: { state: 'active' },
    });
    expect(firing[0]?.annotations.description).toContain('checkout · latency_ms +38 % [+22 %, +55 %]');
    // Alertmanager keeps the first start of an alert that is posted again.
    expect(Date.parse(firing[0]!.startsAt)).toBe(first.at);
    const [notified] = await notificationsFor(rolloutId, 1);
    expect(notified).toMatchObject({
      status: 'firing',
      alerts: [{ labels: { alertname: 'CanaryAnomaly' } }],
    });

    await d.dispatch(
      alertEvent({ rolloutId, kind: 'resolved', tick: 8, at: now - 1000, severity: 'info' }),
      am,
    );
    expect(await alertsIn(alertmanager, rolloutId)).toEqual([]);
    const afterRecovery = await notificationsFor(rolloutId, 2);
    expect(afterRecovery.map((n) => n.status)).toEqual(['firing', 'resolved']);

    await d.dispatch(
      alertEvent({ rolloutId, kind: 'rolled_back', tick: 12, at: now, severity: 'critical', anomalies: [] }),
      am,
    );
    const rolledBack = await alertsIn(alertmanager, rolloutId);
    expect(rolledBack.map((a) => [a.labels.alertname, a.labels.severity])).toEqual([
      ['CanaryRolledBack', 'critical'],
    ]);
    const all = await notificationsFor(rolloutId, 3);
    expect(all.filter((n) => n.alerts.some((a) => a.labels.alertname === 'CanaryAnomaly'))).toHaveLength(2);
  });

  test('a critical anomaly that reaches Alertmanager after the recovery is stored as already resolved', async () => {
    const rolloutId = `rollout-shop-late-${process.pid}`;
    const am = [{ kind: 'alertmanager', url: alertmanager.url }];
    const d = dispatcher();
    const now = Date.now();
    await d.dispatch(
      alertEvent({ rolloutId, kind: 'resolved', tick: 8, at: now - 1000, severity: 'info' }),
      am,
    );
    await d.dispatch(
      alertEvent({ rolloutId, tick: 4, at: now - 5000, anomalies: [anomaly({ critical: true })] }),
      am,
    );
    expect(await alertsIn(alertmanager, rolloutId)).toEqual([]);
  });
});
