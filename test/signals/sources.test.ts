import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { NoValuesError, validateAnalysisOptions } from '../../signals';
import { PrometheusSource, queryValues, renderQuery } from '../../signals/prometheus-source';
import { ScrapeSource } from '../../signals/scrape-source';
import type { SourceRequest } from '../../signals/source';
import { renderTemplate, TEMPLATE_SETS, TemplateError } from '../../signals/templates';
import { renderHaproxyBackend } from '../../routing/haproxy-router';
import { routerTemplateVariables } from '../../routing/routers';
import { HaproxyServer } from '../../devstack/haproxy';
import { ManagedProcess } from '../../devstack/managed-process';
import { freePort } from '../../devstack/ports';
import { PrometheusServer } from '../../devstack/prometheus';
import { projectRoot } from '../../devstack/tools';
import { ValidationError } from '../../core/validation';

/** Real Debian prometheus scraping two real prom-client apps (baseline 1 % errors, canary 10 %). */
let dataDir: string;
let prometheus: PrometheusServer;
let haproxy: HaproxyServer;
let haproxyUrl = '';
const apps: ManagedProcess[] = [];
const ports = { baseline: 0, canary: 0 };
let windowStart = 0;

async function startApp(port: number, errorShare: number): Promise<ManagedProcess> {
  return ManagedProcess.start({
    name: `metrics-app-${port}`,
    command: process.execPath,
    args: [
      '--import',
      'tsx',
      path.join(projectRoot, 'test/support/metrics-app.ts'),
      String(port),
      String(errorShare),
    ],
    cwd: projectRoot,
    logFile: path.join(dataDir, `app-${port}.log`),
    isReady: async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).ok,
  });
}

async function drive(port: number, requests: number): Promise<void> {
  await driveUrl(`http://127.0.0.1:${port}`, requests);
}

async function driveUrl(origin: string, requests: number): Promise<void> {
  for (let i = 0; i < requests; i += 1) await (await fetch(`${origin}/work?n=20000`)).text();
}

function request(overrides: Partial<SourceRequest> = {}): SourceRequest {
  return {
    rolloutId: 'rollout-shop-v2',
    tick: 1,
    window: { from: windowStart, to: Date.now() },
    targets: {
      baseline: { url: `http://127.0.0.1:${ports.baseline}` },
      canary: { url: `http://127.0.0.1:${ports.canary}` },
    },
    variables: { baseline: {}, canary: {} },
    previous: null,
    ...overrides,
  };
}

/** The router of the HAProxy started below: backend `shop`, baseline server v1, canary v2. */
const haproxyRouter = {
  kind: 'haproxy',
  runtimeApi: '/run/haproxy/admin.sock',
  backend: 'shop',
  servers: { baseline: 'v1', canary: 'v2' },
};

function source(queries: ConstructorParameters<typeof PrometheusSource>[0]['queries']): PrometheusSource {
  return new PrometheusSource({
    url: prometheus.url,
    queries,
    labels: { baseline: 'baseline', canary: 'canary' },
    stepMs: 1000,
    timeoutMs: 5000,
  });
}

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'canary-metrics-'));
  ports.baseline = await freePort();
  ports.canary = await freePort();
  apps.push(...(await Promise.all([startApp(ports.baseline, 0.01), startApp(ports.canary, 0.1)])));
  // HAProxy as the router would set it up (two servers in backend `shop`, 50 %), plus its
  // built-in Prometheus exporter on a frontend of its own.
  const [trafficPort, exporterPort] = [await freePort(), await freePort()];
  haproxy = await HaproxyServer.start({
    dir: path.join(dataDir, 'haproxy'),
    listen: `127.0.0.1:${trafficPort}`,
    backends: [
      renderHaproxyBackend(
        {
          backend: 'shop',
          servers: { baseline: 'v1', canary: 'v2' },
          sticky: undefined,
          healthCheck: undefined,
        },
        {
          baseline: { url: `http://127.0.0.1:${ports.baseline}` },
          canary: { url: `http://127.0.0.1:${ports.canary}` },
        },
        50,
      ),
      'frontend exporter',
      `    bind 127.0.0.1:${exporterPort}`,
      '    http-request use-service prometheus-exporter if { path /metrics }',
      '',
    ].join('\n'),
    defaultBackend: 'shop',
    logFile: path.join(dataDir, 'haproxy.log'),
  });
  haproxyUrl = `http://127.0.0.1:${trafficPort}`;
  prometheus = await PrometheusServer.start({
    dataDir: path.join(dataDir, 'prometheus'),
    logFile: path.join(dataDir, 'prometheus.log'),
    scrapeIntervalMs: 1000,
    jobs: [
      { jobName: 'baseline', targets: [`127.0.0.1:${ports.baseline}`] },
      { jobName: 'canary', targets: [`127.0.0.1:${ports.canary}`] },
      { jobName: 'haproxy', targets: [`127.0.0.1:${exporterPort}`] },
    ],
  });
  await prometheus.waitForSeries('process_resident_memory_bytes{job="canary"}');
  windowStart = Date.now();
  await Promise.all([drive(ports.baseline, 200), drive(ports.canary, 200), driveUrl(haproxyUrl, 400)]);
  await new Promise((resolve) => setTimeout(resolve, 3500)); // two more scrapes after the traffic
}, 120_000);

afterAll(async () => {
  await prometheus?.stop();
  await haproxy?.stop();
  await Promise.all(apps.map((app) => app.stop()));
  rmSync(dataDir, { recursive: true, force: true });
});

describe('Prometheus source', () => {
  it('reads process gauges over the window with query_range, per target', async () => {
    const { samples } = await source(TEMPLATE_SETS.process ?? []).collect(request());
    for (const target of ['baseline', 'canary'] as const) {
      const memory = samples.find((s) => s.target === target && s.metric === 'memory_bytes');
      expect(memory?.histogram?.values.length).toBeGreaterThanOrEqual(3);
      expect(Math.min(...(memory?.histogram?.values ?? [0]))).toBeGreaterThan(10e6); // a Node process
      const cpu = samples.find((s) => s.target === target && s.metric === 'cpu_cores');
      expect(Math.max(...(cpu?.histogram?.values ?? [0]))).toBeGreaterThan(0);
    }
  });

  it('turns counters into events among trials over the window', async () => {
    const { samples } = await source([
      {
        metric: 'status_5xx',
        kind: 'counts',
        events: 'sum(increase(app_requests_total{job="{{target}}",code="500"}[{{window}}]))',
        trials: 'sum(increase(app_requests_total{job="{{target}}"}[{{window}}]))',
      },
    ]).collect(request({ window: { from: windowStart - 5000, to: Date.now() } }));
    const counts = Object.fromEntries(samples.map((s) => [s.target, s.counts]));
    expect(counts.canary?.trials).toBeGreaterThan(100);
    expect(counts.baseline?.trials).toBeGreaterThan(100);
    expect((counts.canary?.events ?? 0) / (counts.canary?.trials ?? 1)).toBeGreaterThan(0.05);
    expect((counts.baseline?.events ?? 0) / (counts.baseline?.trials ?? 1)).toBeLessThan(0.03);
  });

  it("reads the HAProxy router's per-server 5xx with the haproxy template set", async () => {
    const { samples, gaps } = await source(TEMPLATE_SETS.haproxy ?? []).collect(
      request({
        window: { from: windowStart - 5000, to: Date.now() },
        variables: routerTemplateVariables(haproxyRouter),
      }),
    );
    expect(gaps).toBeUndefined();
    const counts = Object.fromEntries(samples.map((s) => [s.target, s.counts]));
    // 400 requests split 50/50 by round robin; canary answers 10 % 500s, baseline 1 %.
    expect(counts.baseline?.trials).toBeGreaterThan(150);
    expect(counts.canary?.trials).toBeGreaterThan(150);
    expect((counts.canary?.events ?? 0) / (counts.canary?.trials ?? 1)).toBeGreaterThan(0.04);
    expect((counts.baseline?.events ?? 0) / (counts.baseline?.trials ?? 1)).toBeLessThan(0.04);
  });

  it("renders the haproxy set with the HAProxy router's names exactly as before", () => {
    const haproxyRequest = request({
      window: { from: 0, to: 45_000 },
      variables: routerTemplateVariables(haproxyRouter),
    });
    const rendered = (['baseline', 'canary'] as const).map((target) =>
      (TEMPLATE_SETS.haproxy ?? []).map((query) =>
        renderQuery(query, queryValues(haproxyRequest, target, target)),
      ),
    );
    expect(rendered).toEqual([
      [
        {
          kind: 'counts',
          events:
            'sum(increase(haproxy_server_http_responses_total{proxy="shop",server="v1",code="5xx"}[45s]))',
          trials: 'sum(increase(haproxy_server_http_responses_total{proxy="shop",server="v1"}[45s]))',
        },
      ],
      [
        {
          kind: 'counts',
          events:
            'sum(increase(haproxy_server_http_responses_total{proxy="shop",server="v2",code="5xx"}[45s]))',
          trials: 'sum(increase(haproxy_server_http_responses_total{proxy="shop",server="v2"}[45s]))',
        },
      ],
    ]);
  });

  it('fails a query whose variable the router does not give, naming the query and the variable', async () => {
    const builtin = routerTemplateVariables({ kind: 'builtin', adminUrl: 'http://127.0.0.1:9901' });
    const failure = source(TEMPLATE_SETS.haproxy ?? []).collect(request({ variables: builtin }));
    await expect(failure).rejects.not.toBeInstanceOf(NoValuesError);
    await expect(failure).rejects.toThrow(
      'canary status_5xx: query status_5xx events uses {{backend}}, which has no value for this rollout (it has: upstream, target, window, instance, rolloutId, tick)',
    );
  });

  it('raises NoValuesError for an empty result and for NaN', async () => {
    await expect(
      source([{ metric: 'x', kind: 'gauge', query: 'no_such_metric{job="{{target}}"}' }]).collect(request()),
    ).rejects.toBeInstanceOf(NoValuesError);
    await expect(
      source([{ metric: 'x', kind: 'counts', events: 'vector(0) / vector(0)', trials: 'vector(1)' }]).collect(
        request(),
      ),
    ).rejects.toBeInstanceOf(NoValuesError);
  });

  it('keeps every query and target that has data when others are empty or fail', async () => {
    const mixed = new PrometheusSource({
      url: prometheus.url,
      queries: [
        { metric: 'memory_bytes', kind: 'gauge', query: 'process_resident_memory_bytes{job="{{target}}"}' },
        { metric: 'nothing', kind: 'gauge', query: 'no_such_metric{job="{{target}}"}' },
        { metric: 'broken', kind: 'gauge', query: 'rate(oops[' },
      ],
      labels: { baseline: 'baseline', canary: 'not-scraped' },
      stepMs: 1000,
      timeoutMs: 5000,
    });
    const result = await mixed.collect(request());
    expect(result.samples.map((s) => `${s.target}:${s.metric}`)).toEqual(['baseline:memory_bytes']);
    expect(
      (result.gaps ?? []).map((gap) => `${gap.target}:${gap.metric}:${gap.failed ? 'failed' : 'empty'}`),
    ).toEqual([
      'baseline:nothing:empty',
      'baseline:broken:failed',
      'canary:memory_bytes:empty',
      'canary:nothing:empty',
      'canary:broken:failed',
    ]);
    expect(result.gaps?.[1]?.reason).toMatch(/bad_data.*rate\(oops\[/);
  });

  it('counts with no events series yet are 0 events among the trials', async () => {
    const { samples, gaps } = await source([
      {
        metric: 'status_418',
        kind: 'counts',
        events: 'sum(increase(app_requests_total{job="{{target}}",code="418"}[{{window}}]))',
        trials: 'sum(increase(app_requests_total{job="{{target}}"}[{{window}}]))',
      },
    ]).collect(request({ window: { from: windowStart - 5000, to: Date.now() } }));
    expect(gaps).toBeUndefined();
    for (const sample of samples) {
      expect(sample.counts?.events).toBe(0);
      expect(sample.counts?.trials).toBeGreaterThan(100);
    }
    expect(samples).toHaveLength(2);
  });

  it('refuses an instant query whose answer is not a vector, naming it', async () => {
    const failure = source([
      { metric: 'x', kind: 'counts', events: 'vector(0)', trials: 'scalar(vector(5))' },
    ]).collect(request());
    await expect(failure).rejects.toThrow(
      /prometheus answered a scalar result for scalar\(vector\(5\)\); expected an instant vector/,
    );
    await expect(failure).rejects.not.toBeInstanceOf(NoValuesError);
  });

  it('fails loudly, naming the query, on bad PromQL', async () => {
    const failure = source([{ metric: 'x', kind: 'gauge', query: 'rate(oops[' }]).collect(request());
    await expect(failure).rejects.toThrow(/bad_data.*rate\(oops\[/);
    await expect(failure).rejects.not.toBeInstanceOf(NoValuesError);
  });

  it('refuses a Prometheus URL carrying credentials, without echoing them', () => {
    const issuesFor = (url: string) => {
      try {
        validateAnalysisOptions({ sources: [{ kind: 'prometheus', url, templates: 'process' }] });
      } catch (error) {
        if (error instanceof ValidationError) return error.issues;
      }
      return [];
    };
    for (const url of ['http://admin:s3cret@127.0.0.1:9090', 'https://token@prom.example/prefix']) {
      const issues = issuesFor(url);
      expect(issues).toEqual([
        {
          field: 'analysis.sources[0].url',
          rule: 'must not contain user:password@ (credentials would leak into errors and logs)',
        },
      ]);
      expect(JSON.stringify(issues)).not.toContain('s3cret');
    }
    expect(issuesFor('http://127.0.0.1:9090/prom?x=a@b')).toEqual([]);
  });

  it('treats a missing template variable as an error, at validation and at rendering', () => {
    expect(() => renderTemplate('up{tenant="{{tenant}}"}', { target: 'canary' })).toThrow(TemplateError);
    expect(() =>
      validateAnalysisOptions({
        sources: [
          {
            kind: 'prometheus',
            url: prometheus.url,
            queries: [{ metric: 'x', query: 'up{tenant="{{tenant}}"}' }],
          },
        ],
      }),
    ).toThrow(
      new ValidationError([
        {
          field: 'analysis.sources[0].queries[0].query',
          rule: 'uses unknown template variable {{tenant}} (known: target, window, instance, rolloutId, tick, action, backend, server, upstream)',
        },
      ]),
    );
  });
});

describe('direct /metrics scrape', () => {
  it('reads memory at once and CPU from the second tick on', async () => {
    const scrape = new ScrapeSource({ path: '/metrics', timeoutMs: 5000 });
    const first = await scrape.collect(request());
    expect(first.samples.map((s) => `${s.target}:${s.metric}`).sort()).toEqual([
      'baseline:memory_bytes',
      'canary:memory_bytes',
    ]);
    await drive(ports.canary, 20);
    const second = await scrape.collect(request({ tick: 2, previous: first.carry ?? null }));
    const cpu = second.samples.find((s) => s.target === 'canary' && s.metric === 'cpu_cores');
    expect(cpu?.value).toBeGreaterThan(0);
    expect(cpu?.value).toBeLessThan(4);
  });

  it('gives CPU per request from the second tick on, so targets serving different traffic compare fairly', async () => {
    const scrape = new ScrapeSource({ path: '/metrics', timeoutMs: 5000 });
    const first = await scrape.collect(request());
    expect(first.samples.some((s) => s.metric === 'cpu_ms_per_request')).toBe(false);
    // The canary serves four times the requests of the baseline, each as heavy.
    await Promise.all([drive(ports.baseline, 10), drive(ports.canary, 40)]);
    const second = await scrape.collect(request({ tick: 2, previous: first.carry ?? null }));
    const perRequest = (target: string) =>
      second.samples.find((s) => s.target === target && s.metric === 'cpu_ms_per_request')?.value ?? NaN;
    const cores = (target: string) =>
      second.samples.find((s) => s.target === target && s.metric === 'cpu_cores')?.value ?? NaN;
    expect(cores('canary')).toBeGreaterThan(cores('baseline') * 1.5);
    expect(perRequest('canary')).toBeGreaterThan(0);
    expect(perRequest('canary') / perRequest('baseline')).toBeGreaterThan(0.4);
    expect(perRequest('canary') / perRequest('baseline')).toBeLessThan(2.5);
  });

  it('keeps the target it could read when the other cannot be reached', async () => {
    const scrape = new ScrapeSource({ path: '/metrics', timeoutMs: 5000 });
    const dead = `http://127.0.0.1:${await freePort()}`;
    const result = await scrape.collect(
      request({
        targets: { baseline: { url: `http://127.0.0.1:${ports.baseline}` }, canary: { url: dead } },
      }),
    );
    expect(result.samples.map((s) => `${s.target}:${s.metric}`)).toEqual(['baseline:memory_bytes']);
    expect(result.gaps?.map((gap) => `${gap.target}:${gap.metric}:${gap.failed}`)).toEqual([
      'canary:memory_bytes:true',
      'canary:cpu_cores:true',
    ]);
  });

  it('reports a target without /metrics as no data', async () => {
    const scrape = new ScrapeSource({ path: '/nothing-here', timeoutMs: 5000 });
    await expect(scrape.collect(request())).rejects.toBeInstanceOf(NoValuesError);
  });
});

describe('fetches a spec points at', () => {
  let redirector: Server;
  let redirectorUrl = '';
  const otherHost = () => prometheus.url.replace('127.0.0.1', 'localhost');

  beforeAll(async () => {
    // Stands where a spec's URL points: sends the worker elsewhere, or answers too much.
    redirector = createServer((req, res) => {
      const url = req.url ?? '/';
      if (url.startsWith('/elsewhere/')) {
        const target = new URL(url.slice('/elsewhere'.length), otherHost());
        target.username = 'admin';
        target.password = 's3cret';
        res.writeHead(302, { location: target.toString() }).end();
      } else if (url === '/moved/metrics') {
        res.writeHead(301, { location: '/here/metrics' }).end();
      } else if (url === '/here/metrics') {
        void fetch(`http://127.0.0.1:${ports.baseline}/metrics`)
          .then((answer) => answer.text())
          .then((text) => res.writeHead(200, { 'content-type': 'text/plain' }).end(text));
      } else if (url === '/huge/metrics') {
        // Chunked, no Content-Length: only counting the bytes read finds the excess.
        res.writeHead(200, { 'content-type': 'text/plain' });
        for (let i = 0; i < 64; i++) res.write(`# filler ${'x'.repeat(1024)}\n`);
        res.end();
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
    const address = redirector.address();
    redirectorUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => redirector?.close(resolve));
  });

  it('Prometheus: refuses a redirect to another host, naming the host without credentials or query', async () => {
    const redirected = new PrometheusSource({
      url: `${redirectorUrl}/elsewhere`,
      queries: TEMPLATE_SETS.process ?? [],
      labels: { baseline: 'baseline', canary: 'canary' },
      stepMs: 1000,
      timeoutMs: 5000,
    });
    const error = await redirected.collect(request()).then(
      () => new Error('collected through a redirect to another host'),
      (failure: unknown) => failure as Error,
    );
    const host = new URL(otherHost()).host;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toContain(`redirected to another host (http://${host}): refused`);
    expect(error.message).not.toContain('s3cret');
    expect(error.message).not.toContain('admin');
    expect(error.message).not.toContain('query=');
  });

  it('Prometheus: an answer over maxBodyBytes is a failed query', async () => {
    const small = new PrometheusSource({
      url: prometheus.url,
      queries: TEMPLATE_SETS.process ?? [],
      labels: { baseline: 'baseline', canary: 'canary' },
      stepMs: 1000,
      timeoutMs: 5000,
      maxBodyBytes: 64,
    });
    await expect(small.collect(request())).rejects.toThrow(
      `prometheus at ${new URL(prometheus.url).host} answered a body over the limit of 64 bytes (maxBodyBytes)`,
    );
  });

  it('scrape: follows a redirect on the same host, refuses one to another host', async () => {
    const scrape = new ScrapeSource({ path: '/metrics', timeoutMs: 5000 });
    const result = await scrape.collect(
      request({
        targets: {
          baseline: { url: `${redirectorUrl}/moved` },
          canary: { url: `${redirectorUrl}/elsewhere` },
        },
      }),
    );
    expect(result.samples.map((s) => `${s.target}:${s.metric}`)).toEqual(['baseline:memory_bytes']);
    const reason = result.gaps?.find((gap) => gap.target === 'canary')?.reason ?? '';
    expect(reason).toContain('scraping canary at 127.0.0.1');
    expect(reason).toContain(`redirected to another host (http://${new URL(otherHost()).host})`);
    expect(reason).not.toContain('s3cret');
    expect(result.gaps?.every((gap) => gap.target === 'canary' && gap.failed)).toBe(true);
  });

  it('scrape: a body over maxBodyBytes is a failed read, not held in memory', async () => {
    const scrape = new ScrapeSource({ path: '/metrics', timeoutMs: 5000, maxBodyBytes: 16 * 1024 });
    const result = await scrape.collect(
      request({
        targets: {
          baseline: { url: `http://127.0.0.1:${ports.baseline}` },
          canary: { url: `${redirectorUrl}/huge` },
        },
      }),
    );
    const gap = result.gaps?.find((each) => each.target === 'canary');
    expect(gap?.failed).toBe(true);
    expect(gap?.reason).toContain('answered a body over the limit of 16384 bytes (maxBodyBytes)');
  });

  it('maxBodyBytes is validated with the field named', () => {
    expect(() => validateAnalysisOptions({ sources: [{ kind: 'scrape', maxBodyBytes: 10 }] })).toThrow(
      'analysis.sources[0].maxBodyBytes: must be >= 1024',
    );
  });
});
