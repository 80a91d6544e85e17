/**
 * Fuzzes what a rollout spec's author controls, from valid documents mutated at random paths
 * (wrong types, empty and huge values, `__proto__` / `constructor` keys and values, unknown
 * fields, other component kinds): `canary rollout start`'s checks in-process (the function
 * the command runs before Temporal), a handful of real CLI processes, and the dashboard's
 * spec-input endpoint (PATCH /api/rollouts/:id/policy) over HTTP on a real Fastify server with
 * real Temporal behind it. Every answer is a success or a field error naming a field (4xx,
 * exit 2): never a 5xx, another error type or an unhandled rejection.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { stringify as toYaml } from 'yaml';
import { readStartSpec } from '../../cli/commands/rollout';
import { buildDashboard } from '../../dashboard/app';
import { ValidationError, type Json } from '../../core/validation';
import { runCli } from '../support/cli';
import { startTestServers, type TestServers } from '../support/environment';

const TOKEN = 'spec-fuzz-token-0123456789abcdef';

/** A document using most sections and component kinds, so mutations reach their validators. */
const BASE: Record<string, Json> = {
  apiVersion: 'canary.dev/v1',
  kind: 'Rollout',
  metadata: { service: 'shop', version: '1.1.0' },
  spec: {
    targets: { baseline: { url: 'http://127.0.0.1:8081' }, canary: { url: 'http://127.0.0.1:8082' } },
    router: {
      kind: 'haproxy',
      runtimeApi: 'tcp://127.0.0.1:9999',
      backend: 'shop',
      sticky: { by: 'cookie', name: 'canary_user' },
      healthCheck: { path: '/healthz' },
    },
    profiles: { criteria: { device_type: { in: ['mobile', 'desktop'] } }, sampleSize: 200, seed: 7 },
    interval: '1m',
    probe: { duration: '45s', concurrency: 100, shards: 2, taskQueue: 'loadgen' },
    analysis: {
      method: 'sequential',
      alpha: 0.05,
      metrics: [
        { name: 'latency_ms', kind: 'distribution', tolerance: 0.1, quantiles: [0.5, 0.9] },
        { name: 'error', kind: 'rate', tolerance: 0.05, minSamples: 100 },
      ],
      maxActions: 20,
      sources: [
        { kind: 'probe-results' },
        {
          kind: 'prometheus',
          url: 'http://127.0.0.1:9090',
          templates: 'process',
          labels: { baseline: 'b', canary: 'c' },
          step: '5s',
          queries: [{ metric: 'queue_depth', kind: 'gauge', query: 'queue_depth{instance="{{instance}}"}' }],
        },
      ],
    },
    policy: {
      probingTicks: 3,
      initialShare: 5,
      stepUp: 1,
      stepDown: 5,
      recoveryTicks: 3,
      cooldownTicks: 5,
      maxAnomalies: 3,
      anomalyWindowTicks: 10,
    },
    onAnomaly: 'reduce',
    alerts: {
      sinks: [
        { kind: 'alertmanager', url: 'http://127.0.0.1:9093' },
        { kind: 'webhook', url: 'http://127.0.0.1:9000/hook', secretEnv: 'CANARY_WEBHOOK_SECRET' },
      ],
    },
    links: { dashboardUrl: 'http://localhost:8080', temporalUiUrl: 'http://localhost:8233' },
  },
};

const TRICKY_WORDS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '',
  ' ',
  '-1',
  '0',
  'NaN',
  'Infinity',
  '1e309',
  '0x10',
  '1ms',
  '0s',
  '99999999h',
  'http://',
  'http://u:p@127.0.0.1:1',
  'file:///etc/passwd',
  'javascript:alert(1)',
  '{{target}}',
  '{{nope}}',
  '$where',
  'haproxy',
  'nginx',
  'builtin',
  'gateway-api',
  'istio',
  'ingress-nginx',
  'test-recording',
  'prometheus',
  'scrape',
  'probe-results',
  'webhook',
  'alertmanager',
  'slack',
  'log',
  'sequential',
  'bayesian',
  'betting',
  'counts',
  'gauge',
  'rate',
  'distribution',
  'reduce',
  'rollback',
  'pause',
  'a'.repeat(5000),
];

const leaf: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom(...TRICKY_WORDS),
  fc.string({ maxLength: 20 }),
  fc.integer(),
  fc.constantFrom(0, -1, 1, 100, 101, 1e308, -1e308, 2 ** 53 + 1, 0.5, -0.000001),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
);

const { value: anyValue } = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('value'), { maxLength: 4 }),
    fc
      .array(
        fc.tuple(
          fc.oneof(fc.constantFrom(...TRICKY_WORDS.slice(0, 8)), fc.string({ maxLength: 8 })),
          tie('value'),
        ),
        {
          maxLength: 4,
        },
      )
      .map((entries) => {
        // Own properties even for __proto__, as JSON.parse and YAML documents make them.
        const object: Record<string, Json> = {};
        for (const [key, value] of entries)
          Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
        return object;
      }),
  ),
}));

type Path = (string | number)[];

function pathsOf(value: Json, prefix: Path = []): Path[] {
  const paths: Path[] = [prefix];
  if (Array.isArray(value)) value.forEach((item, index) => paths.push(...pathsOf(item, [...prefix, index])));
  else if (value !== null && typeof value === 'object')
    for (const [key, item] of Object.entries(value)) paths.push(...pathsOf(item, [...prefix, key]));
  return paths;
}

const BASE_PATHS = pathsOf(BASE).filter((candidate) => candidate.length > 0);

type Mutation =
  | { op: 'set'; path: Path; value: Json }
  | { op: 'delete'; path: Path }
  | { op: 'add'; path: Path; key: string; value: Json };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), path: fc.constantFrom(...BASE_PATHS), value: anyValue }),
  fc.record({ op: fc.constant('delete' as const), path: fc.constantFrom(...BASE_PATHS) }),
  fc.record({
    op: fc.constant('add' as const),
    path: fc.constantFrom(...BASE_PATHS),
    key: fc.oneof(fc.constantFrom(...TRICKY_WORDS.slice(0, 8)), fc.string({ maxLength: 10 })),
    value: anyValue,
  }),
);

function mutate(base: Json, mutations: Mutation[]): Json {
  const document = structuredClone(base);
  for (const change of mutations) {
    let parent: Json = document;
    for (const step of change.path.slice(0, -1)) {
      const next: Json | undefined =
        parent !== null && typeof parent === 'object' ? (parent as Record<string, Json>)[step] : undefined;
      if (next === undefined || next === null || typeof next !== 'object') break;
      parent = next;
    }
    const last = change.path[change.path.length - 1] as string | number;
    if (parent === null || typeof parent !== 'object') continue;
    const container = parent as Record<string, Json>;
    if (change.op === 'delete') delete container[last];
    else if (change.op === 'set')
      Object.defineProperty(container, last, {
        value: change.value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    else {
      const target = container[last];
      if (target !== null && typeof target === 'object' && !Array.isArray(target))
        Object.defineProperty(target, change.key, {
          value: change.value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
    }
  }
  return document;
}

const documentText: fc.Arbitrary<{ text: string; format: string }> = fc
  .tuple(fc.array(mutation, { minLength: 1, maxLength: 3 }), fc.constantFrom('json', 'yaml'))
  .map(([mutations, format]) => {
    const document = mutate(BASE, mutations);
    return { text: format === 'json' ? JSON.stringify(document) : toYaml(document), format };
  });

/** The failure, if any, as a reason: a ValidationError whose issues each name a field is fine. */
function refusalProblem(error: unknown): string | undefined {
  if (!(error instanceof ValidationError)) return `threw ${String(error)}`;
  if (error.issues.length === 0) return 'a ValidationError without issues';
  const unnamed = error.issues.find((issue) => !/\S/.test(issue.field) || !/\S/.test(issue.rule));
  return unnamed ? `an issue without field or rule: ${JSON.stringify(unnamed)}` : undefined;
}

describe('rollout start: the CLI checks, in-process', () => {
  test('the base document is valid, so mutations start from a spec that would start', () => {
    expect(readStartSpec(JSON.stringify(BASE), 'base.json').service).toBe('shop');
    expect(readStartSpec(toYaml(BASE), 'base.yaml').service).toBe('shop');
  });

  test('every mutated document is accepted or refused with field errors, never anything else', () => {
    const started = Date.now();
    let refused = 0;
    fc.assert(
      fc.property(documentText, ({ text }) => {
        try {
          readStartSpec(text, 'fuzz.yaml');
        } catch (error) {
          refused++;
          const problem = refusalProblem(error);
          if (problem) throw new Error(`${problem}\n--- document ---\n${text.slice(0, 2000)}`);
        }
      }),
      { numRuns: 2500, seed: Number(process.env.FUZZ_SEED ?? 20261206) },
    );
    // Most mutations break the spec; all of them must have been judged within the budget.
    expect(refused).toBeGreaterThan(1000);
    expect(Date.now() - started).toBeLessThan(40_000);
  });

  test('found by the fuzzer: an empty or blank key is named [""], not left without a visible field', () => {
    for (const [text, field] of [
      ['{"":null}', '[""]'],
      ['{" ":null}', '[" "]'],
      [JSON.stringify({ ...BASE, spec: { ...(BASE.spec as object), '': 1 } }), 'spec[""]'],
    ] as const) {
      let issues: { field: string; rule: string }[] = [];
      try {
        readStartSpec(text, 'fuzz.yaml');
      } catch (error) {
        issues = [...(error as ValidationError).issues];
      }
      expect(issues).toContainEqual({
        field,
        rule: expect.stringContaining('is not a known field') as unknown,
      });
    }
  });

  test('random text is refused as a document, not thrown at', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.string({ unit: 'grapheme' })), (text) => {
        try {
          readStartSpec(text, 'fuzz.yaml');
        } catch (error) {
          const problem = refusalProblem(error);
          if (problem) throw new Error(`${problem}\n--- text ---\n${text.slice(0, 500)}`);
        }
      }),
      { numRuns: 500, seed: Number(process.env.FUZZ_SEED ?? 20261206) },
    );
  });
});

describe('rollout start: the real CLI', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'canary-spec-fuzz-'));
  const broken: [string, string, string][] = [
    ['not YAML', 'spec: [unclosed', 'fuzz-0.yaml: is not valid YAML'],
    [
      'an unknown router field',
      JSON.stringify({ ...BASE, spec: { ...(BASE.spec as object), router: { kind: 'haproxy', colour: 1 } } }),
      'spec.router.colour',
    ],
    [
      'a __proto__ key in the policy',
      JSON.stringify(BASE).replace('"probingTicks":3', '"__proto__":{"stepUp":200},"probingTicks":3'),
      'spec.policy.__proto__',
    ],
    [
      'a wrong type deep in the analysis',
      JSON.stringify(BASE).replace('"maxActions":20', '"maxActions":"many"'),
      'spec.analysis.maxActions',
    ],
  ];

  test.each(broken.map((entry, index) => [entry[0], index, entry[1], entry[2]] as const))(
    '%s: exit 2 naming the field',
    async (_name, index, text, field) => {
      const file = path.join(dir, `fuzz-${index}.yaml`);
      writeFileSync(file, text);
      // A closed port: the checks must refuse the spec before the CLI tries Temporal.
      const result = await runCli(['rollout', 'start', '-f', file, '--address', '127.0.0.1:1']);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain(field);
      expect(result.stderr).not.toContain('cannot reach Temporal');
      expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
    },
  );
});

describe('the dashboard over HTTP', () => {
  let servers: TestServers;
  let app: FastifyInstance;
  let url = '';
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    servers = await startTestServers('spec-fuzz');
    app = await buildDashboard({
      temporal: servers.env.client,
      db: servers.db,
      settings: { auth: { token: TOKEN, protectReads: false }, refreshMs: 2000 },
    });
    url = await app.listen({ host: '127.0.0.1', port: 0 });
  });

  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await app?.close();
    await servers?.stop();
  });

  const share = fc.double({ min: 0.5, max: 100, noNaN: true });
  const ticks = fc.integer({ min: 0, max: 20 });
  const plausiblePolicy = fc
    .record(
      { stepUp: share, stepDown: share, probingTicks: ticks, recoveryTicks: ticks, cooldownTicks: ticks },
      { requiredKeys: [] },
    )
    .filter((patch) => Object.keys(patch).length > 0) as fc.Arbitrary<Json>;
  const policyBody = fc.oneof(
    plausiblePolicy,
    anyValue,
    fc
      .array(
        fc.tuple(
          fc.constantFrom(
            ...Object.keys((BASE.spec as Record<string, Json>).policy as object),
            ...TRICKY_WORDS.slice(0, 5),
          ),
          anyValue,
        ),
        { maxLength: 4 },
      )
      .map((entries) => Object.fromEntries(entries) as Json),
  );
  const rolloutId = fc.oneof(
    fc.constant('rollout-shop-1.1.0'),
    fc.constantFrom('__proto__', 'constructor', 'rollout-shop-%00', 'rollout-a-b'.repeat(40)),
    fc.string({ maxLength: 12 }).map((text) => encodeURIComponent(text)),
  );

  test('policy changes are answered 2xx/4xx with the field named, never 5xx', async () => {
    const started = Date.now();
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(rolloutId, policyBody, async (id, body) => {
        const response = await fetch(`${url}/api/rollouts/${id}/policy`, {
          method: 'PATCH',
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        const answer = (await response.json()) as { error?: string; issues?: { field: string }[] };
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        const trace = `${response.status} ${JSON.stringify(answer).slice(0, 300)} for ${id} ${JSON.stringify(body).slice(0, 300)}`;
        if (response.status >= 500) throw new Error(`5xx: ${trace}`);
        if (response.status === 400 && !(answer.issues ?? []).every((issue) => /\S/.test(issue.field)))
          throw new Error(`a 400 without a field: ${trace}`);
        // The rollout does not exist: a valid change reaches Temporal and is a 404.
        if (![400, 404, 413].includes(response.status)) throw new Error(`unexpected ${trace}`);
      }),
      { numRuns: 1000, seed: Number(process.env.FUZZ_SEED ?? 20261206) },
    );
    expect(Date.now() - started).toBeLessThan(30_000);
    // Both kinds were exercised: refusals by field, and valid changes that reached Temporal.
    expect(statuses.get(400)).toBeGreaterThan(100);
    expect(statuses.get(404)).toBeGreaterThan(10);
    expect(unhandled).toEqual([]);
  });
});
