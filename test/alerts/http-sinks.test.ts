import { PermanentDeliveryError, RetryableDeliveryError } from '../../alerts/alert-sink';
import { validateAlertSinks, createAlertSink } from '../../alerts/sinks';
import {
  EVENT_HEADER,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  verifyWebhookSignature,
} from '../../alerts/webhook-sink';
import { createLogger } from '../../platform/logger';
import { rolloutLinks } from '../../rollout/links';
import type { AdapterSpec } from '../../rollout/spec';
import type { AlertEvent } from '../../rollout/types';
import { alertEvent } from './events';
import { HttpReceiver } from './receiver';

let receiver: HttpReceiver;
const SECRET = 'webhook-secret-for-tests';

beforeAll(async () => {
  receiver = await HttpReceiver.start();
});

afterAll(async () => {
  await receiver?.stop();
});

beforeEach(() => receiver.reset());

function sinkFor(spec: AdapterSpec) {
  const [validated] = validateAlertSinks([spec]);
  const env = { HOOK_SECRET: SECRET, SLACK_URL: `${receiver.url}/services/T000/B000/XXXX` };
  return createAlertSink(validated!, { logger: createLogger('test', 'silent'), env });
}

function notify(event: AlertEvent) {
  return { event, links: rolloutLinks(event.links, event.rolloutId), ends: [] };
}

describe('webhook sink against a real HTTP receiver', () => {
  const spec = {
    kind: 'webhook',
    url: '',
    secretEnv: 'HOOK_SECRET',
    timeout: '500ms',
    headers: { 'X-Team': 'shop' },
  };

  test('posts the alert as JSON, signed with HMAC-SHA256 over timestamp and body', async () => {
    const sink = sinkFor({ ...spec, url: `${receiver.url}/hooks/canary` });
    const event = alertEvent();
    await sink.send(notify(event), new AbortController().signal);
    expect(receiver.requests).toHaveLength(1);
    const request = receiver.requests[0]!;
    expect(request.path).toBe('/hooks/canary');
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers['x-team']).toBe('shop');
    expect(request.headers[EVENT_HEADER]).toBe(event.key);
    const headers = {
      signature: request.headers[SIGNATURE_HEADER] as string,
      timestamp: request.headers[TIMESTAMP_HEADER] as string,
    };
    expect(verifyWebhookSignature(SECRET, headers, request.body)).toBe(true);
    expect(verifyWebhookSignature('another-secret', headers, request.body)).toBe(false);
    expect(request.body).not.toContain(SECRET);
    expect(receiver.json(0)).toMatchObject({
      key: event.key,
      kind: 'anomaly',
      share: { before: 22, after: 17 },
    });
  });

  test('5xx, 429 (with Retry-After) and timeouts are retryable; 4xx refusals are not', async () => {
    const sink = sinkFor({ ...spec, url: `${receiver.url}/hook` });
    const signal = new AbortController().signal;
    receiver.answer(
      { status: 503, body: 'down for maintenance' },
      { status: 429, headers: { 'retry-after': '7' } },
      { status: 200, delayMs: 1500 },
      { status: 404, body: 'no such hook' },
    );
    await expect(sink.send(notify(alertEvent()), signal)).rejects.toThrow(
      new RetryableDeliveryError(`webhook ${receiver.url} answered 503: down for maintenance`),
    );
    const throttled = await sink.send(notify(alertEvent()), signal).catch((error: unknown) => error);
    expect(throttled).toBeInstanceOf(RetryableDeliveryError);
    expect((throttled as RetryableDeliveryError).retryAfterMs).toBe(7000);
    await expect(sink.send(notify(alertEvent()), signal)).rejects.toThrow(/no answer within 500 ms/);
    const refused = await sink.send(notify(alertEvent()), signal).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(PermanentDeliveryError);
    expect((refused as Error).message).toBe(
      `webhook ${receiver.url} refused the alert with 404: no such hook`,
    );
  });

  test('a closed port is retryable and the message names only the origin', async () => {
    const sink = sinkFor({ ...spec, url: 'http://127.0.0.1:9/hook?token=abc' });
    const error = await sink
      .send(notify(alertEvent()), new AbortController().signal)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryableDeliveryError);
    expect((error as Error).message).toBe('webhook http://127.0.0.1:9: ECONNREFUSED');
  });
});

describe('Slack-compatible sink against a real HTTP receiver', () => {
  test('posts text and blocks to the URL from the environment, with both links', async () => {
    const sink = sinkFor({ kind: 'slack', urlEnv: 'SLACK_URL' });
    const event = alertEvent({ rolloutId: 'rollout-shop-v2' });
    await sink.send(notify(event), new AbortController().signal);
    expect(receiver.requests[0]?.path).toBe('/services/T000/B000/XXXX');
    const message = receiver.json<{ text: string; blocks: { type: string; text?: { text: string } }[] }>(0);
    expect(message.text).toContain('shop v2 anomaly detected at tick 4: share 22 % → 17 %');
    const all = JSON.stringify(message.blocks);
    expect(all).toContain('checkout · latency_ms +38 % [+22 %, +55 %]');
    expect(all).toContain('<http://dashboard.test/rollouts/rollout-shop-v2|Dashboard>');
    expect(all).toContain(
      '<http://temporal.test/namespaces/default/workflows/rollout-shop-v2|Workflow in Temporal UI>',
    );
  });

  test('a missing URL variable is a refusal that names the field, not a crash', async () => {
    const [validated] = validateAlertSinks([{ kind: 'slack', urlEnv: 'NOT_SET_ANYWHERE' }]);
    const sink = createAlertSink(validated!, { logger: createLogger('test', 'silent'), env: {} });
    await expect(sink.send(notify(alertEvent()), new AbortController().signal)).rejects.toThrow(
      "alerts.sinks[0].urlEnv: names NOT_SET_ANYWHERE, which is not set in the worker's environment",
    );
    expect(receiver.requests).toHaveLength(0);
  });
});
