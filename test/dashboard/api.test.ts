import { execFileSync } from 'node:child_process';
import { Client, Connection } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { buildDashboard } from '../../dashboard/app';
import { readServerConfig } from '../../dashboard/config';
import { probePoints } from '../../dashboard/read-model';
import { decodeHistogram } from '../../loadgen/stats';
import { INVESTIGATIONS_COLLECTION } from '../../client/rollout-store';
import { RolloutClient } from '../../client/rollout-client';
import { statusQuery } from '../../rollout/messages';
import { rolloutIdFor } from '../../rollout/spec';
import type { RolloutStatus } from '../../rollout/types';
import { ValidationError } from '../../core/validation';
import type { RolloutDetail } from '../../client/rollout-detail';
import { startTestServers, type TestServers } from '../support/environment';
import { testSpec } from '../support/specs';
import type { AnomalyExemplars } from '../../rollout/exemplars';
import { dashboardTestWorker, DEFAULT_SHAPES, syntheticStats, until } from './support';

const TOKEN = 'dashboard-api-test-token-0123456789';
const TASK_QUEUE = 'dashboard-api';
let servers: TestServers;
let worker: Worker;
let running: Promise<void>;
let app: FastifyInstance;
let tokenless: FastifyInstance;
let rolloutId: string;

const auth = { authorization: `Bearer ${TOKEN}` };

beforeAll(async () => {
  servers = await startTestServers('dashboard-api');
  worker = await dashboardTestWorker(servers, TASK_QUEUE);
  running = worker.run();
  const settings = {
    auth: { token: TOKEN, protectReads: false },
    temporalUiUrl: 'http://temporal-ui.test',
    refreshMs: 2000,
  };
  app = await buildDashboard({
    temporal: servers.env.client,
    db: servers.db,
    settings,
    rollouts: { cacheMs: 0 },
  });
  tokenless = await buildDashboard({
    temporal: servers.env.client,
    db: servers.db,
    settings: { ...settings, auth: { protectReads: false } },
  });
  // A long rollout (it ramps 1 % per 400 ms tick) with an anomaly at tick 3.
  const spec = testSpec({
    interval: '400ms',
    probe: { duration: '150ms', concurrency: 2 },
    policy: {
      probingTicks: 1,
      initialShare: 5,
      stepUp: 1,
      promoteAt: 100,
      recoveryTicks: 1,
      cooldownTicks: 0,
    },
    analysis: { script: { '3': 'anomalous' } },
  });
  rolloutId = rolloutIdFor(spec.service, spec.version);
  await new RolloutClient(servers.env.client).start(spec, { taskQueue: TASK_QUEUE });
  await until(
    () => servers.env.client.workflow.getHandle(rolloutId).query(statusQuery),
    (status: RolloutStatus) => status.tick >= 4,
  );
});

afterAll(async () => {
  await servers?.env.client.workflow
    .getHandle(rolloutId)
    .terminate('test over')
    .catch(() => undefined);
  worker?.shutdown();
  await running;
  await app?.close();
  await tokenless?.close();
  await servers?.stop();
});

async function status(): Promise<RolloutStatus> {
  return servers.env.client.workflow.getHandle(rolloutId).query(statusQuery);
}

describe('reading rollouts', () => {
  test('the list shows the running rollout with its phase, share and last verdict', async () => {
    const response = await app.inject({ url: '/api/rollouts?status=running' });
    expect(response.statusCode).toBe(200);
    const { rollouts } = response.json<{ rollouts: Record<string, unknown>[] }>();
    const row = rollouts.find((rollout) => rollout.rolloutId === rolloutId);
    expect(row).toMatchObject({
      service: 'shop',
      phase: 'progressing',
      execution: 'RUNNING',
      anomalyCount: 1,
      links: { temporalUi: `http://temporal-ui.test/namespaces/default/workflows/${rolloutId}` },
    });
    expect(typeof row?.share).toBe('number');
    expect((row?.lastVerdict as { status: string }).status).toBe('healthy');
  });

  test('one rollout: live status, the spec without sink options, and the profile mix from its history', async () => {
    const response = await app.inject({ url: `/api/rollouts/${rolloutId}` });
    expect(response.statusCode).toBe(200);
    const detail = response.json<RolloutDetail & { links: { temporalUi: string } }>();
    expect(detail.status?.phase).toBe('progressing');
    expect(detail.spec).toMatchObject({
      targets: { baseline: { url: 'http://127.0.0.1:18081' }, canary: { url: 'http://127.0.0.1:18082' } },
      router: 'test-recording',
      alertSinks: [],
    });
    expect(detail.profiles).toEqual({ count: 5, mix: { 'device:desktop': 0.6, 'device:mobile': 0.4 } });
    expect(detail.links.temporalUi).toBe(`http://temporal-ui.test/namespaces/default/workflows/${rolloutId}`);
  });

  test('the tick log, investigations and probe series come from MongoDB', async () => {
    const ticks = (await app.inject({ url: `/api/rollouts/${rolloutId}/ticks` })).json<{
      ticks: { tick: number }[];
    }>();
    expect(ticks.ticks.slice(0, 4).map((tick) => tick.tick)).toEqual([1, 2, 3, 4]);
    const after = (await app.inject({ url: `/api/rollouts/${rolloutId}/ticks?afterTick=2&limit=1` })).json<{
      ticks: { tick: number }[];
    }>();
    expect(after.ticks.map((tick) => tick.tick)).toEqual([3]);
    const investigations = (await app.inject({ url: `/api/rollouts/${rolloutId}/investigations` })).json<{
      investigations: { tick: number; anomalies: { action: string }[] }[];
    }>();
    expect(investigations.investigations).toMatchObject([{ tick: 3, anomalies: [{ action: 'checkout' }] }]);
    const rawInvestigations = (await app.inject({ url: `/api/rollouts/${rolloutId}/investigations` })).json<{
      investigations: { anomalies: { exemplars?: AnomalyExemplars }[] }[];
    }>();
    const exemplars = rawInvestigations.investigations[0]?.anomalies[0]?.exemplars;
    expect(exemplars?.slowest).toHaveLength(5);
    expect(exemplars?.failed.length).toBeGreaterThan(0);
    for (const request of [...(exemplars?.slowest ?? []), ...(exemplars?.failed ?? [])]) {
      expect(request).toMatchObject({ method: 'POST', path: '/checkout', target: 'canary' });
      expect(request.profileId).toMatch(/^user-[1-5]$/); // the rollout's sampled profiles
    }
    expect(exemplars?.reproduce).toMatch(
      /^canary loadgen --profiles user-\d(,user-\d)* --baseline http:\/\/127\.0\.0\.1:18081 --canary http:\/\/127\.0\.0\.1:18082 --duration \d+ms --concurrency \d --time-scale [\d.]+ --seed \d+$/,
    );
    const probes = (await app.inject({ url: `/api/rollouts/${rolloutId}/probes` })).json<{
      points: { tick: number; action: string; target: string; p90Ms: number; errorRate: number }[];
    }>();
    const first = probes.points.filter((point) => point.tick === 1);
    expect(first.map((point) => `${point.action}/${point.target}`).sort()).toEqual([
      'browse/baseline',
      'browse/canary',
      'checkout/baseline',
      'checkout/canary',
      'search/baseline',
      'search/canary',
    ]);
    const checkout = (target: string) =>
      first.find((point) => point.action === 'checkout' && point.target === target)!;
    expect(checkout('canary').p90Ms).toBeGreaterThan(checkout('baseline').p90Ms * 1.2);
  });

  test('investigations come in pages: limit defaults to 100, at most 1000, afterTick moves on', async () => {
    const long = 'rollout-shop-v9';
    await servers.db.collection(INVESTIGATIONS_COLLECTION).insertMany(
      Array.from({ length: 150 }, (_, index) => ({
        _id: `${long}#inv-${index + 1}` as never,
        rolloutId: long,
        tick: index + 1,
        openedAt: 0,
        shareBefore: 10,
        shareAfter: 5,
        action: 'rollback',
        anomalies: [],
        schemaVersion: 1,
      })),
    );
    const ticksOf = async (query: string) =>
      (await app.inject({ url: `/api/rollouts/${long}/investigations${query}` }))
        .json<{ investigations: { tick: number }[] }>()
        .investigations.map((entry) => entry.tick);
    expect(await ticksOf('')).toHaveLength(100);
    expect(await ticksOf('?limit=1000')).toHaveLength(150);
    expect(await ticksOf('?afterTick=140&limit=5')).toEqual([141, 142, 143, 144, 145]);
    for (const [query, rule] of [
      ['?limit=0', 'must be >= 1'],
      ['?limit=1001', 'must be <= 1000'],
      ['?limit=many', 'must be an integer'],
    ] as const) {
      const refused = await app.inject({ url: `/api/rollouts/${long}/investigations${query}` });
      expect(refused.statusCode).toBe(400);
      expect(refused.json<{ issues: { field: string; rule: string }[] }>().issues).toEqual([
        { field: 'query.limit', rule: expect.stringContaining(rule) as unknown },
      ]);
    }
  });

  test('probe percentiles are the HDR histogram values in milliseconds', () => {
    const stats = syntheticStats(DEFAULT_SHAPES, 7);
    const points = probePoints({ rolloutId: 'r', tick: 1, endedAt: 5, stats });
    stats.forEach((raw, index) => {
      const histogram = decodeHistogram(raw.latencyHistogram);
      expect(points[index]).toMatchObject({
        action: raw.action,
        target: raw.target,
        requests: raw.successes + raw.errors,
        errors: raw.errors,
        p50Ms: Math.round(histogram.getValueAtPercentile(50)) / 1000,
        p99Ms: Math.round(histogram.getValueAtPercentile(99)) / 1000,
      });
      histogram.destroy();
    });
    expect(
      probePoints({
        rolloutId: 'r',
        tick: 1,
        endedAt: 5,
        stats: [{ ...stats[0]!, successes: 0, errors: 0 }],
      })[0],
    ).toMatchObject({
      requests: 0,
      errorRate: null,
      p50Ms: null,
    });
  });

  test('an unknown rollout is a 404; a malformed id is a 400 naming the parameter', async () => {
    const missing = await app.inject({ url: '/api/rollouts/rollout-shop-nope' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: 'not_found', message: 'no rollout rollout-shop-nope' });
    for (const id of [
      'not-a-rollout',
      'rollout-Shop-v1',
      `rollout-shop-${'x'.repeat(300)}`,
      'rollout-shop-v1%20x',
    ]) {
      const response = await app.inject({ url: `/api/rollouts/${id}` });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({
        issues: [{ field: 'params.id', rule: 'must be a rollout id like rollout-<service>-<version>' }],
      });
    }
    const badQuery = await app.inject({ url: '/api/rollouts?status=sleeping&limit=0&x=1' });
    expect(badQuery.statusCode).toBe(400);
    expect(
      badQuery
        .json<{ issues: { field: string }[] }>()
        .issues.map((issue) => issue.field)
        .sort(),
    ).toEqual(['query.limit', 'query.status', 'query.x']);
  });
});

describe('controls', () => {
  test('need the bearer token: missing or wrong is 401, a server without one refuses with 403', async () => {
    const none = await app.inject({ method: 'POST', url: `/api/rollouts/${rolloutId}/pause`, payload: {} });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect(none.json()).toMatchObject({
      issues: [{ field: 'authorization', rule: 'must be "Bearer <token>"' }],
    });
    const wrong = await app.inject({
      method: 'POST',
      url: `/api/rollouts/${rolloutId}/pause`,
      headers: { authorization: `Bearer ${TOKEN}x` },
      payload: {},
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json()).toMatchObject({
      issues: [{ field: 'authorization', rule: 'the token is not valid' }],
    });
    const disabled = await tokenless.inject({
      method: 'POST',
      url: `/api/rollouts/${rolloutId}/pause`,
      headers: auth,
    });
    expect(disabled.statusCode).toBe(403);
    expect((await status()).phase).not.toBe('paused');
  });

  test('bad bodies are 4xx naming the field, and change nothing', async () => {
    const cases: [string, unknown, number, string][] = [
      ['rollback', {}, 400, 'body.reason: is required'],
      ['rollback', { reason: '   ' }, 400, 'body.reason: must be 1-1000 characters, not only spaces'],
      [
        'rollback',
        { reason: 'x'.repeat(1001) },
        400,
        'body.reason: must be 1-1000 characters, not only spaces',
      ],
      ['pause', { reason: 'ok', force: true }, 400, 'body.force: is not a known field'],
      [
        'pause',
        { by: '<script>' },
        400,
        'body.by: must be 1-100 of A-Z a-z 0-9 @ . _ : + -, starting with a letter or digit',
      ],
      ['resume', { reason: 'no reasons here' }, 400, 'body.reason: is not a known field'],
      ['promote', [], 400, 'body: must be an object'],
    ];
    for (const [control, payload, code, message] of cases) {
      const response = await app.inject({
        method: 'POST',
        url: `/api/rollouts/${rolloutId}/${control}`,
        headers: auth,
        payload: payload as object,
      });
      expect([control, response.statusCode, response.json<{ message: string }>().message]).toEqual([
        control,
        code,
        message,
      ]);
    }
    const notJson = await app.inject({
      method: 'POST',
      url: `/api/rollouts/${rolloutId}/pause`,
      headers: { ...auth, 'content-type': 'application/json' },
      payload: '{"reason":',
    });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json()).toMatchObject({
      issues: [{ field: 'body', rule: 'must be valid, non-empty JSON' }],
    });
    const text = await app.inject({
      method: 'POST',
      url: `/api/rollouts/${rolloutId}/pause`,
      headers: { ...auth, 'content-type': 'text/plain' },
      payload: 'pause please',
    });
    expect(text.statusCode).toBe(415);
    expect((await status()).phase).toBe('progressing');
  });

  test('pause and resume reach the workflow through its signals', async () => {
    const paused = await app.inject({
      method: 'POST',
      url: `/api/rollouts/${rolloutId}/pause`,
      headers: auth,
      payload: { reason: 'checking a dashboard', by: 'alice' },
    });
    expect(paused.statusCode).toBe(202);
    expect(paused.json()).toEqual({ accepted: true, control: 'pause', rolloutId });
    const held = await until(status, (s) => s.phase === 'paused');
    expect(held.pausedReason).toBe('checking a dashboard (dashboard:alice)');
    const listed = (await app.inject({ url: '/api/rollouts?status=running' })).json<{
      rollouts: { rolloutId: string; phase: string }[];
    }>();
    expect(listed.rollouts.find((rollout) => rollout.rolloutId === rolloutId)?.phase).toBe('paused');

    const metrics = (await app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/^canary_rollouts\{phase="paused"\} 1$/m);
    expect(metrics).toMatch(
      new RegExp(
        `^canary_rollout_canary_share_ratio\\{rollout="${rolloutId}",service="shop",version="[^"]+"\\} 0\\.\\d+$`,
        'm',
      ),
    );
    expect(metrics).toMatch(/^canary_api_controls_total\{control="pause",outcome="accepted"\} 1$/m);
    const ours = metrics
      .split('\n')
      .filter((line) => /^(# (HELP|TYPE) )?canary_/.test(line))
      .join('\n');
    expect(
      execFileSync('/usr/bin/promtool', ['check', 'metrics'], { input: `${ours}\n`, encoding: 'utf8' }),
    ).toBe('');

    const resumed = await app.inject({
      method: 'POST',
      url: `/api/rollouts/${rolloutId}/resume`,
      headers: auth,
    });
    expect(resumed.statusCode).toBe(202);
    await until(status, (s) => s.phase === 'progressing');
  });

  test('policy changes go through the workflow update; bad values are 400 naming the field', async () => {
    const bad = await app.inject({
      method: 'PATCH',
      url: `/api/rollouts/${rolloutId}/policy`,
      headers: auth,
      payload: { stepUp: 0 },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ issues: [{ field: 'body.stepUp' }] });
    const conflicting = await app.inject({
      method: 'PATCH',
      url: `/api/rollouts/${rolloutId}/policy`,
      headers: auth,
      payload: { initialShare: 60, promoteAt: 50 },
    });
    expect(conflicting.statusCode).toBe(400);
    expect(conflicting.json()).toMatchObject({
      issues: [{ field: 'body.initialShare', rule: 'must not exceed policy.promoteAt (50)' }],
    });
    const empty = await app.inject({
      method: 'PATCH',
      url: `/api/rollouts/${rolloutId}/policy`,
      headers: auth,
      payload: {},
    });
    expect(empty.statusCode).toBe(400);
    const changed = await app.inject({
      method: 'PATCH',
      url: `/api/rollouts/${rolloutId}/policy`,
      headers: auth,
      payload: { stepUp: 2 },
    });
    expect(changed.statusCode).toBe(200);
    expect(changed.json()).toMatchObject({ policy: { stepUp: 2 } });
    expect((await status()).policy.stepUp).toBe(2);
  });

  test('a control for an unknown rollout is 404, for an ended one 409', async () => {
    const unknown = await app.inject({
      method: 'POST',
      url: '/api/rollouts/rollout-shop-never/pause',
      headers: auth,
    });
    expect(unknown.statusCode).toBe(404);
    const spec = testSpec({ policy: { probingTicks: 0, initialShare: 5, promoteAt: 5 } });
    const handle = await new RolloutClient(servers.env.client).start(spec, { taskQueue: TASK_QUEUE });
    expect((await handle.result()).outcome).toBe('promoted');
    const ended = await app.inject({
      method: 'POST',
      url: `/api/rollouts/${handle.workflowId}/rollback`,
      headers: auth,
      payload: { reason: 'late' },
    });
    expect(ended.statusCode).toBe(409);
    expect(ended.json()).toMatchObject({
      error: 'conflict',
      message: `rollout ${handle.workflowId} has ended (completed): it takes no more controls`,
    });
    const all = (await app.inject({ url: '/api/rollouts?status=all' })).json<{
      rollouts: { rolloutId: string; phase: string; share: number }[];
    }>();
    expect(all.rollouts.find((rollout) => rollout.rolloutId === handle.workflowId)).toMatchObject({
      phase: 'promoted',
      share: 100,
    });
  });
});

describe('the page', () => {
  test('is served with a strict content security policy, and only listed assets are', async () => {
    for (const url of ['/', `/rollouts/${rolloutId}`]) {
      const page = await app.inject({ url });
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(page.headers['content-security-policy']).toContain("script-src 'self'");
      expect(page.body).toContain('<script type="module" src="/assets/main.js"></script>');
    }
    const uplot = await app.inject({ url: '/assets/uplot.js' });
    expect(uplot.statusCode).toBe(200);
    expect(uplot.body).toContain('uPlot');
    const again = await app.inject({
      url: '/assets/uplot.js',
      headers: { 'if-none-match': uplot.headers.etag as string },
    });
    expect(again.statusCode).toBe(304);
    for (const url of ['/assets/..%2F..%2Fpackage.json', '/assets/index.html', '/assets/app.ts'])
      expect((await app.inject({ url })).statusCode).toBe(404);
    const api = await app.inject({ url: '/api/config' });
    expect(api.headers['x-content-type-options']).toBe('nosniff');
    expect(api.headers['access-control-allow-origin']).toBeUndefined();
    expect(api.json()).toMatchObject({ controls: true, temporalUiUrl: 'http://temporal-ui.test' });
  });
});

describe('when Temporal is unreachable', () => {
  test('reads and controls answer 503 within the deadline, without internals', async () => {
    const connection = Connection.lazy({ address: '127.0.0.1:1' });
    const down = await buildDashboard({
      temporal: new Client({ connection }),
      db: servers.db,
      settings: { auth: { token: TOKEN, protectReads: false }, refreshMs: 2000 },
      rollouts: { queryTimeoutMs: 300, listTimeoutMs: 300 },
    });
    try {
      const started = Date.now();
      const list = await down.inject({ url: '/api/rollouts' });
      const detail = await down.inject({ url: `/api/rollouts/${rolloutId}` });
      const pause = await down.inject({
        method: 'POST',
        url: `/api/rollouts/${rolloutId}/pause`,
        headers: auth,
      });
      expect(Date.now() - started).toBeLessThan(10_000);
      for (const response of [list, detail, pause]) {
        expect(response.statusCode).toBe(503);
        expect(response.json()).toMatchObject({
          error: 'unavailable',
          message: 'Temporal or the database is unavailable; retry later',
        });
      }
    } finally {
      await down.close();
      await connection.close();
    }
  });
});

describe('server configuration', () => {
  test('bad environment values are refused, naming the variable', () => {
    let error: unknown;
    try {
      readServerConfig({
        DASHBOARD_PORT: 'eighty',
        DASHBOARD_API_TOKEN: 'short',
        DASHBOARD_TEMPORAL_UI_URL: 'temporal.local',
        CANARY_MONGO_URI: 'postgres://x',
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues).toEqual([
      { field: 'CANARY_MONGO_URI', rule: 'must be a mongodb:// or mongodb+srv:// URI' },
      { field: 'DASHBOARD_PORT', rule: 'must be an integer between 0 and 65535' },
      { field: 'DASHBOARD_API_TOKEN', rule: 'must be at least 16 characters' },
      { field: 'DASHBOARD_TEMPORAL_UI_URL', rule: 'must be an http:// or https:// URL' },
    ]);
    expect(
      readServerConfig({
        DASHBOARD_PORT: '9000',
        DASHBOARD_API_TOKEN: TOKEN,
        DASHBOARD_TEMPORAL_UI_URL: 'http://ui:8233/',
      }),
    ).toMatchObject({
      port: 9000,
      settings: { auth: { token: TOKEN, protectReads: false }, temporalUiUrl: 'http://ui:8233' },
    });
  });

  test('the names of the previous release still work, each with a warning naming its successor', () => {
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) });
    const config = readServerConfig(
      {
        PORT: '9000',
        HOST: '127.0.0.1',
        API_TOKEN: TOKEN,
        MONGO_URI: 'mongodb://db:27017/',
        MONGO_DB: 'legacy',
        TEMPORAL_UI_URL: 'http://ui:8233',
      },
      logger,
    );
    expect(config).toMatchObject({
      port: 9000,
      host: '127.0.0.1',
      mongoUri: 'mongodb://db:27017/',
      database: 'legacy',
      settings: { auth: { token: TOKEN }, temporalUiUrl: 'http://ui:8233' },
    });
    expect(warnings.map((line) => (JSON.parse(line) as { replacement: string }).replacement).sort()).toEqual([
      'CANARY_MONGO_DB',
      'CANARY_MONGO_URI',
      'DASHBOARD_API_TOKEN',
      'DASHBOARD_HOST',
      'DASHBOARD_PORT',
      'DASHBOARD_TEMPORAL_UI_URL',
    ]);
  });
});
