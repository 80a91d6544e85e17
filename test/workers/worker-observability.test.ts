/**
 * A real rollout on a real Temporal dev server and FerretDB, with the real AlertDispatcher
 * (a signed webhook to a local receiver) and the metrics interceptor served by serveMetrics:
 * what an operator sees from a worker when a canary stumbles once and recovers.
 */
import { execFileSync } from 'node:child_process';
import { request } from 'undici';
import { AlertDispatcher } from '../../alerts/dispatcher';
import { ALERT_DELIVERIES_COLLECTION } from '../../alerts/delivery-store';
import { verifyWebhookSignature } from '../../alerts/webhook-sink';
import { createLogger } from '../../platform/logger';
import { serveMetrics, type MetricsServer } from '../../platform/metrics-server';
import { RolloutClient } from '../../client/rollout-client';
import { createRolloutWorker } from '../../workers/rollout-worker';
import { WorkerMetrics } from '../../workers/worker-metrics';
import { HttpReceiver } from '../alerts/receiver';
import { testDeps } from '../support/doubles';
import { startTestServers, workflowBundle, type TestServers } from '../support/environment';
import { testSpec } from '../support/specs';

const SECRET = 'rollout-webhook-secret';
let servers: TestServers;
let receiver: HttpReceiver;
let metricsServer: MetricsServer;
const metrics = new WorkerMetrics();

beforeAll(async () => {
  [servers, receiver] = await Promise.all([startTestServers('worker-observability'), HttpReceiver.start()]);
  metricsServer = await serveMetrics(0, { registry: metrics.registry, host: '127.0.0.1' });
});

afterAll(async () => {
  await metricsServer?.close();
  await receiver?.stop();
  await servers?.stop();
});

async function scrape(): Promise<string> {
  const response = await request(metricsServer.url);
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toContain('text/plain');
  return response.body.text();
}

/** The value of one sample in the exposition text, e.g. `canary_ticks_total{...}`; 0 if absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`)))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

test('an anomaly and its recovery are alerted once each, and the worker exports what happened', async () => {
  const taskQueue = 'observability';
  // The first delivery attempts fail: the notify activity fails once and Temporal retries it.
  receiver.answerPath('/hook', { status: 503 }, { status: 503 }, { status: 503 }, { status: 503 });
  const alerts = new AlertDispatcher({
    db: servers.db,
    logger: createLogger('alerts', 'silent'),
    env: { CANARY_HOOK_SECRET: SECRET },
    retry: { budgetMs: 200, initialDelayMs: 50, maxDelayMs: 100 },
    onDelivery: metrics.observeDelivery,
  });
  const worker = await createRolloutWorker({
    connection: servers.env.nativeConnection,
    taskQueue,
    deps: { ...testDeps(servers.db), alerts },
    workflowBundle: await workflowBundle(),
    metrics,
  });
  const spec = testSpec({
    policy: {
      probingTicks: 1,
      initialShare: 20,
      stepUp: 2,
      recoveryTicks: 1,
      cooldownTicks: 0,
      promoteAt: 24,
    },
    analysis: { script: { '3': 'anomalous' } },
    alerts: { sinks: [{ kind: 'webhook', url: `${receiver.url}/hook`, secretEnv: 'CANARY_HOOK_SECRET' }] },
    links: { dashboardUrl: 'http://dashboard.test', temporalUiUrl: 'http://temporal.test' },
  });
  const result = await worker.runUntil(async () =>
    (await new RolloutClient(servers.env.client).start(spec, { taskQueue })).result(),
  );
  expect(result.outcome).toBe('promoted');

  type Delivered = { kind: string; ends: { kind: string }[]; links: Record<string, string> };
  const delivered = new Map<string, Delivered>();
  for (const hit of receiver.requests) {
    const headers = {
      signature: hit.headers['x-canary-signature'] as string,
      timestamp: hit.headers['x-canary-timestamp'] as string,
    };
    expect(verifyWebhookSignature(SECRET, headers, hit.body)).toBe(true);
    delivered.set(hit.headers['x-canary-event'] as string, JSON.parse(hit.body) as Delivered);
  }
  const kinds = [...delivered.values()].map((body) => body.kind).sort();
  expect(kinds).toEqual(['anomaly', 'promoted', 'resolved']);
  const resolved = [...delivered.values()].find((body) => body.kind === 'resolved');
  expect(resolved?.ends.map((end) => end.kind)).toEqual(['anomaly']);
  expect(resolved?.links.dashboard).toBe(`http://dashboard.test/rollouts/${result.rolloutId}`);
  const records = await servers.db
    .collection(ALERT_DELIVERIES_COLLECTION)
    .find({ rolloutId: result.rolloutId, sinkKind: 'webhook' })
    .toArray();
  expect(records.map((record) => record.state as string)).toEqual(['delivered', 'delivered', 'delivered']);
  expect(records.find((record) => record.eventKind === 'anomaly')?.attempts).toBe(2);

  const text = await scrape();
  expect(sample(text, 'canary_ticks_total')).toBe(result.ticks);
  expect(sample(text, 'canary_ticks_total', { verdict: 'anomalous', action: 'reduce' })).toBe(1);
  expect(sample(text, 'canary_anomalies_total', { action: 'checkout', metric: 'latency_ms' })).toBe(1);
  expect(sample(text, 'canary_verdict_duration_seconds_count')).toBe(result.ticks);
  expect(sample(text, 'canary_probe_requests_total', { target: 'canary' })).toBeGreaterThan(0);
  expect(
    sample(text, 'canary_activity_failures_total', { activity: 'notify', error_type: 'AlertDeliveryError' }),
  ).toBe(1);
  expect(
    sample(text, 'canary_activity_duration_seconds_count', { activity: 'analyze', outcome: 'completed' }),
  ).toBe(result.ticks);
  expect(sample(text, 'canary_alert_deliveries_total', { sink_kind: 'webhook', outcome: 'delivered' })).toBe(
    3,
  );
  expect(sample(text, 'canary_alert_deliveries_total', { sink_kind: 'webhook', outcome: 'failed' })).toBe(1);
  expect(sample(text, 'canary_rollouts_finished_total', { outcome: 'promoted' })).toBe(1);

  // Prometheus' own linter on our families (prom-client's nodejs_* defaults predate its rules).
  const ours = text
    .split('\n')
    .filter((line) => /^(# (HELP|TYPE) )?canary_/.test(line))
    .join('\n');
  const lint = execFileSync('/usr/bin/promtool', ['check', 'metrics'], {
    input: `${ours}\n`,
    encoding: 'utf8',
  });
  expect(lint).toBe('');
});
