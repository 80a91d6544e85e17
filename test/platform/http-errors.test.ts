/**
 * The contract of our four HTTP services: the same bad input gets the same 4xx and the same body
 * `{ error, message, issues?, request_id? }` from the profiles API, the dashboard and the loadgen
 * service (built without a port, app.inject) and the built-in proxy's admin endpoint (over
 * loopback). Real Temporal and FerretDB behind them; no bad request reaches either.
 */
import type { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { buildDashboard } from '../../dashboard/app';
import { freePort } from '../../devstack/ports';
import { buildLoadgenApp } from '../../loadgen/service/app';
import { createLogger } from '../../platform/logger';
import { buildApp } from '../../profiles/api/app';
import { apiConfig } from '../../profiles/api/config';
import { startBuiltinProxy, type BuiltinProxy } from '../../routing/proxy/proxy';
import { startTestServers, type TestServers } from '../support/environment';

const TOKEN = 'http-contract-test-token-0123456789';

interface Answer {
  status: number;
  headers: Record<string, unknown>;
  body: Record<string, unknown>;
}

interface Call {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH';
  url: string;
  headers?: Record<string, string>;
  /** An object is sent as JSON; a string as it is (with content-type application/json). */
  payload?: object | string;
}

interface Service {
  name: string;
  send(call: Call): Promise<Answer>;
  /** A route that needs the token and takes a JSON body, and a body it accepts. */
  guarded: { method: Call['method']; url: string; valid: Record<string, unknown> };
  /** A field of that body and a value of the wrong type for it. */
  wrongType: { field: string; value: unknown; rule: string };
  /** How the service names a body field in an issue. */
  bodyField(name: string): string;
  /** How the service names a query parameter in an issue. */
  queryField(name: string): string;
}

function injector(app: () => FastifyInstance): Service['send'] {
  return async (call) => {
    const response = await app().inject({
      method: call.method,
      url: call.url,
      headers: {
        ...(call.payload !== undefined ? { 'content-type': 'application/json' } : {}),
        ...call.headers,
      },
      ...(call.payload !== undefined ? { payload: call.payload } : {}),
    });
    return { status: response.statusCode, headers: response.headers, body: response.json() };
  };
}

let servers: TestServers;
let profiles: FastifyInstance;
let dashboard: FastifyInstance;
let loadgen: FastifyInstance;
let proxy: BuiltinProxy;
const tokenless: FastifyInstance[] = [];

beforeAll(async () => {
  servers = await startTestServers('http-contract');
  const auth = { token: TOKEN, protectReads: false };
  profiles = await buildApp({ db: servers.db, config: apiConfig({ auth }) });
  const settings = { auth, refreshMs: 2000 };
  dashboard = await buildDashboard({ temporal: servers.env.client, db: servers.db, settings });
  loadgen = await buildLoadgenApp({ db: servers.db, token: TOKEN });
  proxy = await startBuiltinProxy(
    {
      listen: '127.0.0.1:0',
      adminListen: '127.0.0.1:0',
      adminToken: TOKEN,
      upstreams: {
        baseline: `http://127.0.0.1:${await freePort()}`,
        canary: `http://127.0.0.1:${await freePort()}`,
      },
      healthCheck: false,
    },
    createLogger('http-contract-test', 'silent'),
  );
  tokenless.push(
    await buildApp({ db: servers.db, config: apiConfig({ auth: { protectReads: false } }) }),
    await buildDashboard({
      temporal: servers.env.client,
      db: servers.db,
      settings: { ...settings, auth: { protectReads: false } },
    }),
  );
});

afterAll(async () => {
  await Promise.all([profiles, dashboard, loadgen, ...tokenless].map((app) => app?.close()));
  await proxy?.close();
  await servers?.stop();
});

const services: Service[] = [
  {
    name: 'profiles API',
    send: injector(() => profiles),
    guarded: { method: 'POST', url: '/profiles/generate', valid: { seed: 1, count: 1 } },
    wrongType: { field: 'seed', value: 'one', rule: 'must be an integer' },
    bodyField: (name) => `body.${name}`,
    queryField: (name) => name,
  },
  {
    name: 'dashboard',
    send: injector(() => dashboard),
    guarded: { method: 'PATCH', url: '/api/rollouts/rollout-shop-v1/policy', valid: { stepUp: 5 } },
    wrongType: { field: 'stepUp', value: 'five', rule: 'must be a number' },
    bodyField: (name) => `body.${name}`,
    queryField: (name) => `query.${name}`,
  },
  {
    name: 'loadgen service',
    send: injector(() => loadgen),
    guarded: {
      method: 'POST',
      url: '/runs',
      valid: { profile_id: 'nobody', duration: 1, concurrency: 1, target_url: 'http://127.0.0.1:9' },
    },
    wrongType: { field: 'concurrency', value: 'many', rule: 'must be an integer' },
    bodyField: (name) => name,
    queryField: (name) => `query.${name}`,
  },
  {
    name: 'proxy admin',
    send: async (call) => {
      const response = await request(`${proxy.adminUrl}${call.url}`, {
        method: call.method,
        headers: {
          ...(call.payload !== undefined ? { 'content-type': 'application/json' } : {}),
          ...call.headers,
        },
        body:
          call.payload === undefined
            ? null
            : typeof call.payload === 'string'
              ? call.payload
              : JSON.stringify(call.payload),
      });
      return {
        status: response.statusCode,
        headers: response.headers,
        body: (await response.body.json()) as Record<string, unknown>,
      };
    },
    guarded: { method: 'PUT', url: '/weight', valid: { share: 5 } },
    wrongType: { field: 'share', value: 'five', rule: 'must be a number' },
    bodyField: (name) => name,
    queryField: (name) => `query.${name}`,
  },
];

const withToken = { authorization: `Bearer ${TOKEN}` };

/** The one body: a code, a message, and for field errors the issues the message lists. */
function expectErrorBody(body: Record<string, unknown>, error: string): void {
  expect(Object.keys(body).every((key) => ['error', 'message', 'issues', 'request_id'].includes(key))).toBe(
    true,
  );
  expect(body.error).toBe(error);
  expect(typeof body.message).toBe('string');
  if (body.issues !== undefined) {
    const issues = body.issues as { field: string; rule: string }[];
    expect(issues.length).toBeGreaterThan(0);
    for (const issue of issues) expect(Object.keys(issue).sort()).toEqual(['field', 'rule']);
    expect(body.message).toBe(issues.map((issue) => `${issue.field}: ${issue.rule}`).join('; '));
  }
}

describe.each(services.map((service) => [service.name, service] as const))('%s', (_name, service) => {
  const { method, url, valid } = service.guarded;

  test('an unknown body field is a 400 naming it', async () => {
    const answer = await service.send({
      method,
      url,
      headers: withToken,
      payload: { ...valid, colour: 'red' },
    });
    expect(answer.status).toBe(400);
    expectErrorBody(answer.body, 'bad_request');
    expect(answer.body.issues).toEqual([
      { field: service.bodyField('colour'), rule: 'is not a known field' },
    ]);
  });

  test('a field of the wrong type is a 400 naming the field and the rule', async () => {
    const { field, value, rule } = service.wrongType;
    const answer = await service.send({
      method,
      url,
      headers: withToken,
      payload: { ...valid, [field]: value },
    });
    expect(answer.status).toBe(400);
    expectErrorBody(answer.body, 'bad_request');
    expect(answer.body.issues).toEqual([{ field: service.bodyField(field), rule }]);
  });

  test('a body that is not JSON is a 400 naming the body', async () => {
    const answer = await service.send({ method, url, headers: withToken, payload: '{"share":' });
    expect(answer.status).toBe(400);
    expectErrorBody(answer.body, 'bad_request');
    expect(answer.body.issues).toEqual([{ field: 'body', rule: 'must be valid, non-empty JSON' }]);
  });

  test('without the token, or with a wrong one, a 401 asks for a bearer token', async () => {
    const missing = await service.send({ method, url, payload: valid });
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer');
    expectErrorBody(missing.body, 'unauthorized');
    expect(missing.body.issues).toEqual([{ field: 'authorization', rule: 'must be "Bearer <token>"' }]);
    const wrong = await service.send({
      method,
      url,
      headers: { authorization: `Bearer ${TOKEN}x` },
      payload: valid,
    });
    expect(wrong.status).toBe(401);
    expectErrorBody(wrong.body, 'unauthorized');
    expect(wrong.body.issues).toEqual([{ field: 'authorization', rule: 'the token is not valid' }]);
  });

  test('a query parameter named __proto__, constructor or prototype is a 400 naming it', async () => {
    for (const name of ['__proto__', 'constructor', 'prototype']) {
      const answer = await service.send({
        method,
        url: `${url}?${name}=a`,
        headers: withToken,
        payload: valid,
      });
      expect(answer.status).toBe(400);
      expectErrorBody(answer.body, 'bad_request');
      expect(answer.body.issues).toEqual([
        {
          field: service.queryField(name),
          rule: 'is not a parameter: __proto__, constructor and prototype are reserved names',
        },
      ]);
    }
  });

  test('an unknown route is a 404 naming it', async () => {
    const answer = await service.send({ method: 'GET', url: '/no/such/route?x=1', headers: withToken });
    expect(answer.status).toBe(404);
    expectErrorBody(answer.body, 'not_found');
    expect(answer.body.message).toBe('no route GET /no/such/route');
  });
});

test('a server without a token refuses what needs one (403), in the same body', async () => {
  const [profilesWithout, dashboardWithout] = tokenless as [FastifyInstance, FastifyInstance];
  const [profilesService, dashboardService] = services as [Service, Service];
  for (const [app, { guarded }] of [
    [profilesWithout, profilesService],
    [dashboardWithout, dashboardService],
  ] as const) {
    const answer = await injector(() => app)({
      method: guarded.method,
      url: guarded.url,
      headers: withToken,
      payload: guarded.valid,
    });
    expect(answer.status).toBe(403);
    expectErrorBody(answer.body, 'forbidden');
  }
});

test('with protected reads, /metrics needs the token like any read (profiles API, dashboard)', async () => {
  const auth = { token: TOKEN, protectReads: true };
  const guarded = [
    await buildApp({ db: servers.db, config: apiConfig({ auth }) }),
    await buildDashboard({
      temporal: servers.env.client,
      db: servers.db,
      settings: { auth, refreshMs: 2000 },
    }),
  ];
  try {
    for (const app of guarded) {
      const missing = await app.inject({ url: '/metrics' });
      expect(missing.statusCode).toBe(401);
      expectErrorBody(missing.json(), 'unauthorized');
      const wrong = await app.inject({ url: '/metrics', headers: { authorization: 'Bearer nope' } });
      expect(wrong.statusCode).toBe(401);
      const right = await app.inject({ url: '/metrics', headers: withToken });
      expect(right.statusCode).toBe(200);
      expect(right.body).toContain('# HELP');
    }
    // Open reads keep /metrics open, for a Prometheus without credentials.
    expect((await profiles.inject({ url: '/metrics' })).statusCode).toBe(200);
    expect((await dashboard.inject({ url: '/metrics' })).statusCode).toBe(200);
  } finally {
    await Promise.all(guarded.map((app) => app.close()));
  }
});
