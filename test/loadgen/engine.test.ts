import { EngineThread, runLoad, type LoadSnapshot } from '../../loadgen/run-load';
import { resolveLoadOptions } from '../../loadgen/options';
import { defaultOntology, sessionsFromProfiles } from '../../loadgen/profile-sessions';
import { decodeHistogram, type ActionStats } from '../../loadgen/stats';
import { TargetAllowlist } from '../../loadgen/allowlist';
import { ValidationError } from '../../core/validation';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { freePort } from '../../devstack/ports';
import { profile, ShopServer, type SeenRequest } from './support/shop-server';

const ontology = defaultOntology();
let baseline: ShopServer;
let canary: ShopServer;

beforeAll(async () => {
  [baseline, canary] = await Promise.all([ShopServer.start(), ShopServer.start()]);
});
afterAll(async () => {
  await Promise.all([baseline.close(), canary.close()]);
});
beforeEach(() => {
  baseline.reset();
  canary.reset();
});

const BROWSE = profile('browser', [
  { t: 0, action: 'page_view' },
  { t: 10, action: 'search', data: { query: 'red shoes' } },
  { t: 20, action: 'view_product', data: { product_id: 'p-7' } },
]);
const BUY = profile('buyer', [
  { t: 0, action: 'login', data: { username: 'ann' } },
  { t: 10, action: 'add_to_cart', data: { product_id: 'p-9', quantity: 2 } },
  { t: 20, action: 'checkout' },
]);

const actionOf = (request: SeenRequest): string => {
  const path = request.path.split('?')[0] ?? '';
  if (path === '/search') return 'search';
  if (path.startsWith('/products/')) return 'view_product';
  if (path === '/cart/items') return 'add_to_cart';
  if (path === '/checkout') return 'checkout';
  if (path === '/login') return 'login';
  if (path.startsWith('/api/')) return 'api_call';
  return 'page_view';
};

const count = (stats: ActionStats[], target: string, action: string) =>
  stats
    .filter((entry) => entry.target === target && entry.action === action)
    .reduce((sum, entry) => sum + entry.successes + entry.errors, 0);

function bySession(requests: SeenRequest[]): Map<number, SeenRequest[]> {
  const sessions = new Map<number, SeenRequest[]>();
  for (const request of requests) {
    const list = sessions.get(request.session as number) ?? [];
    list.push(request);
    sessions.set(request.session as number, list);
  }
  for (const list of sessions.values()) list.sort((a, b) => (a.seq as number) - (b.seq as number));
  return sessions;
}

describe('closed model', () => {
  test('replays every profile in order, and counts and action mix match the profiles', async () => {
    const result = await runLoad({
      sessions: sessionsFromProfiles([BROWSE, BUY], ontology),
      targets: [{ name: 'target', url: baseline.url }],
      durationMs: 1500,
      concurrency: 4,
      timeScale: 0,
      threads: 2,
    });
    expect(result.status).toBe('completed');
    const sessions = bySession(baseline.requests);
    let browsing = 0;
    let buying = 0;
    for (const requests of sessions.values()) {
      const actions = requests.map(actionOf);
      expect(requests.map((request) => request.seq)).toEqual(actions.map((_, index) => index));
      const expected =
        actions[0] === 'page_view'
          ? ['page_view', 'search', 'view_product']
          : ['login', 'add_to_cart', 'checkout'];
      expect(actions).toEqual(expected.slice(0, actions.length));
      if (actions.length === 3) {
        if (actions[0] === 'page_view') browsing++;
        else buying++;
      }
    }
    // The seeded order alternates profiles across virtual users: the mix stays 50/50.
    expect(browsing + buying).toBeGreaterThan(50);
    expect(Math.abs(browsing - buying)).toBeLessThanOrEqual(4);
    // Every request the server saw was recorded, except the few cut at the end.
    for (const action of ['page_view', 'search', 'view_product', 'login', 'add_to_cart', 'checkout']) {
      const seen = baseline.requests.filter((request) => actionOf(request) === action).length;
      const recorded = count(result.stats, 'target', action);
      expect(seen - recorded).toBeGreaterThanOrEqual(0);
      expect(seen - recorded).toBeLessThanOrEqual(result.unfinished);
    }
    // Cookies: checkout succeeds only with the session cookie that login set.
    const checkout = result.stats.find((entry) => entry.action === 'checkout');
    expect(checkout?.errors).toBe(0);
    expect(checkout?.successes).toBeGreaterThan(0);
    // Per-session headers: the profiles' device type as the user agent.
    expect(new Set(baseline.requests.map((request) => request.userAgent))).toEqual(
      new Set(['Mozilla/5.0 (X11; Linux x86_64) canary-loadgen/1 desktop']),
    );
    const bodies = baseline.requests.filter((request) => actionOf(request) === 'add_to_cart');
    expect(JSON.parse(bodies[0]?.body ?? '{}')).toEqual({ product_id: 'p-9', quantity: 2 });
  });

  test('honours recorded think times within tolerance', async () => {
    const thinker = profile('thinker', [
      { t: 0, action: 'page_view' },
      { t: 300, action: 'search', data: { query: 'x' } },
      { t: 500, action: 'view_product', data: { product_id: 'p' } },
    ]);
    await runLoad({
      sessions: sessionsFromProfiles([thinker], ontology),
      targets: [{ name: 'target', url: baseline.url }],
      durationMs: 1400,
      concurrency: 2,
      timeScale: 1,
      threads: 1,
    });
    const gaps: number[][] = [[], []];
    for (const requests of bySession(baseline.requests).values()) {
      for (let i = 1; i < requests.length; i++) {
        const gap = (requests[i] as SeenRequest).at - (requests[i - 1] as SeenRequest).at;
        gaps[i - 1]?.push(gap);
      }
    }
    expect(gaps[0]?.length).toBeGreaterThanOrEqual(2);
    expect(gaps[1]?.length).toBeGreaterThanOrEqual(2);
    // Think time is waited after the answer: never shorter, and not much longer on a busy box.
    for (const gap of gaps[0] ?? []) expect(gap).toBeGreaterThanOrEqual(299);
    for (const gap of gaps[0] ?? []) expect(gap).toBeLessThan(300 + 120);
    for (const gap of gaps[1] ?? []) expect(gap).toBeGreaterThanOrEqual(199);
    for (const gap of gaps[1] ?? []) expect(gap).toBeLessThan(200 + 120);
  });
});

describe('open model', () => {
  test('keeps its arrival rate while the server stalls, and the stall shows in the latency', async () => {
    const single = profile('single', [
      { t: 0, action: 'page_view' },
      { t: 50, action: 'search', data: { query: 'q' } },
    ]);
    const snapshots: LoadSnapshot[] = [];
    baseline.stallAfterFirst = { afterMs: 700, forMs: 600 };
    const result = await runLoad(
      {
        sessions: sessionsFromProfiles([single], ontology),
        targets: [{ name: 'target', url: baseline.url }],
        durationMs: 2000,
        concurrency: 200,
        model: 'open',
        rate: 100,
        threads: 1,
        drainMs: 1000,
      },
      (snapshot) => snapshots.push(snapshot),
    );
    const begin = baseline.requests[0]?.at ?? 0;
    const arrivalsIn = (from: number, to: number) =>
      baseline.requests.filter(
        (request) =>
          actionOf(request) === 'page_view' && request.at >= begin + from && request.at < begin + to,
      ).length;
    // 100 sessions/s: 50 per half second, before, during and after the stall.
    for (const [from, to] of [
      [200, 700],
      [750, 1250],
      [1400, 1900],
    ] as const) {
      expect(arrivalsIn(from, to)).toBeGreaterThanOrEqual(42);
      expect(arrivalsIn(from, to)).toBeLessThanOrEqual(58);
    }
    expect(result.sessions.started).toBeGreaterThanOrEqual(195);
    expect(result.sessions.dropped).toBe(0);
    const latency = (action: string) =>
      decodeHistogram(result.stats.find((entry) => entry.action === action)?.latencyHistogram ?? '');
    // A quarter of the sessions met the stall: p90 sits in it, p25 does not.
    expect(latency('page_view').getValueAtPercentile(90)).toBeGreaterThan(150_000);
    expect(latency('page_view').getValueAtPercentile(25)).toBeLessThan(50_000);
    // Searches held back by a stalled page view were sent late but answered at once; they count
    // from when they were due, so the stall shows in their latency too (no coordinated omission).
    expect(latency('search').getValueAtPercentile(90)).toBeGreaterThan(150_000);
    expect(snapshots.at(-1)?.final).toBe(true);
  });

  test('counts sessions that find every slot busy as dropped', async () => {
    const single = profile('single', [{ t: 0, action: 'page_view' }]);
    baseline.stallAfterFirst = { afterMs: 0, forMs: 900 };
    const result = await runLoad({
      sessions: sessionsFromProfiles([single], ontology),
      targets: [{ name: 'target', url: baseline.url }],
      durationMs: 1000,
      concurrency: 5,
      model: 'open',
      rate: 50,
      threads: 1,
    });
    expect(result.sessions.started).toBeGreaterThanOrEqual(5);
    expect(result.sessions.dropped).toBeGreaterThan(20);
    expect(result.sessions.started + result.sessions.dropped).toBeGreaterThanOrEqual(48);
  });
});

describe('paired probing', () => {
  test('sends the same requests to baseline and canary at the same moments', async () => {
    const result = await runLoad({
      sessions: sessionsFromProfiles([BROWSE, BUY], ontology),
      targets: [
        { name: 'baseline', url: baseline.url },
        { name: 'canary', url: canary.url },
      ],
      durationMs: 1200,
      concurrency: 3,
      timeScale: 1,
      seed: 42,
      threads: 1,
    });
    const key = (request: SeenRequest) =>
      `${request.session}/${request.seq} ${request.method} ${request.path} ${request.body}`;
    const onBaseline = new Map(baseline.requests.map((request) => [key(request), request]));
    const onCanary = new Map(canary.requests.map((request) => [key(request), request]));
    expect(onBaseline.size).toBeGreaterThan(30);
    const common = [...onBaseline.keys()].filter((k) => onCanary.has(k));
    // Only requests cut at the very end may reach one target and not the other.
    expect(onBaseline.size - common.length).toBeLessThanOrEqual(3);
    expect(onCanary.size - common.length).toBeLessThanOrEqual(3);
    const skews = common
      .map((k) => Math.abs((onBaseline.get(k) as SeenRequest).at - (onCanary.get(k) as SeenRequest).at))
      .sort((a, b) => a - b);
    expect(skews[Math.floor(skews.length / 2)]).toBeLessThan(5);
    expect(count(result.stats, 'baseline', 'search')).toBe(count(result.stats, 'canary', 'search'));
  });
});

describe('cancellation and failures', () => {
  test('stops within a second of the signal', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 600);
    const begin = Date.now();
    const result = await runLoad(
      {
        sessions: sessionsFromProfiles([BROWSE], ontology),
        targets: [{ name: 'target', url: baseline.url }],
        durationMs: 30_000,
        concurrency: 4,
        timeScale: 0,
      },
      undefined,
      { signal: controller.signal },
    );
    expect(result.status).toBe('cancelled');
    expect(Date.now() - begin - 600).toBeLessThan(1000);
    const seen = baseline.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(baseline.requests.length).toBe(seen);
  });

  test('a cancellation during the drain cuts the requests in flight within a second', async () => {
    // Every response is held for 5 s: when the 600 ms duration ends, requests are in flight and
    // the run drains (up to drainMs = 8 s). The cancellation comes 400 ms into that drain.
    baseline.stallAfterFirst = { afterMs: 0, forMs: 5000 };
    const controller = new AbortController();
    let abortedAt = 0;
    const watch = setInterval(() => {
      if (baseline.requests.length === 0) return;
      clearInterval(watch);
      setTimeout(() => {
        abortedAt = Date.now();
        controller.abort();
      }, 1000);
    }, 5);
    try {
      const result = await runLoad(
        {
          sessions: sessionsFromProfiles([BROWSE], ontology),
          targets: [{ name: 'target', url: baseline.url }],
          durationMs: 600,
          drainMs: 8000,
          concurrency: 3,
          timeScale: 0,
          threads: 1,
        },
        undefined,
        { signal: controller.signal },
      );
      expect(abortedAt).toBeGreaterThan(0);
      expect(Date.now() - abortedAt).toBeLessThan(1000);
      expect(result.status).toBe('cancelled');
      expect(result.unfinished).toBe(3);
    } finally {
      clearInterval(watch);
    }
  });

  test('a thread that exits on its own fails the run; a delta after its wait is kept, not lost', async () => {
    const plan = await resolveLoadOptions({
      sessions: sessionsFromProfiles([BROWSE], ontology),
      targets: [{ name: 'target', url: baseline.url }],
      durationMs: 60_000,
      concurrency: 2,
      timeScale: 0,
      threads: 1,
    });
    const thread = new EngineThread(plan, 0);
    const failures: Error[] = [];
    thread.onFail((error) => failures.push(error));
    try {
      expect(await thread.wait('ready', 60_000)).toEqual({ type: 'ready' });
      thread.post({ type: 'start', startAt: Date.now() });
      await new Promise((resolve) => setTimeout(resolve, 300));
      // The wait gives up before the thread can answer (a settled `until` ends it in a microtask;
      // a 0 ms timer could lose the race to the thread's message): the answer lands in the late buffer.
      thread.post({ type: 'collect', seq: 1 });
      expect(await thread.wait('delta:1', 60_000, Promise.resolve())).toBeUndefined();
      for (let i = 0; i < 100 && baseline.requests.length > 0; i++) {
        const late = thread.takeLate();
        if (late.length === 0) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          continue;
        }
        expect(late).toHaveLength(1);
        const requests = late[0]?.stats.reduce((sum, entry) => sum + entry.successes + entry.errors, 0);
        expect(requests).toBeGreaterThan(0);
        expect(late[0]?.counters.sessionsStarted).toBeGreaterThan(0);
        break;
      }
      expect(thread.takeLate()).toEqual([]);
      expect(baseline.requests.length).toBeGreaterThan(0);
      // Ended from outside without an error event and without its final delta: a failure.
      await thread.worker.terminate();
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(failures.map((error) => error.message)).toEqual([
        expect.stringMatching(/engine thread 0 exited unexpectedly/),
      ]);
    } finally {
      await thread.terminate();
    }
  });

  test('a down, slow or misbehaving target gives recorded errors, never a crash or a hang', async () => {
    const calls = [
      ['broken', 'status'],
      ['slow', 'status'],
      ['big', 'status'],
      ['redirect', 'status'],
      ['away', 'status'],
    ].map(([endpoint]) =>
      profile(`api-${endpoint}`, [{ t: 0, action: 'api_call', data: { endpoint: endpoint as string } }]),
    );
    const nojson = profile('nojson', [{ t: 0, action: 'view_product', data: { product_id: 'nojson' } }]);
    const orphanCheckout = profile('orphan', [{ t: 0, action: 'checkout' }]);
    const begin = Date.now();
    const result = await runLoad({
      sessions: sessionsFromProfiles([...calls, nojson, orphanCheckout], ontology),
      targets: [{ name: 'target', url: baseline.url }],
      durationMs: 1200,
      concurrency: 7,
      timeScale: 0,
      timeoutMs: 300,
      maxBodyBytes: 10_000,
      threads: 1,
    });
    expect(Date.now() - begin).toBeLessThan(5000);
    const kinds: Record<string, number> = {};
    for (const entry of result.stats)
      for (const [kind, n] of Object.entries(entry.errorKinds)) kinds[kind] = (kinds[kind] ?? 0) + n;
    expect(kinds.unexpected_status).toBeGreaterThan(0); // 500 and 401
    expect(kinds.timeout).toBeGreaterThan(0);
    expect(kinds.body_too_large).toBeGreaterThan(0);
    expect(kinds.check_failed).toBeGreaterThan(0);
    expect(kinds.not_allowed).toBeGreaterThan(0); // redirect to 10.255.255.1
    const apiCalls = result.stats.find((entry) => entry.action === 'api_call');
    expect(apiCalls?.statusCounts['500']).toBeGreaterThan(0);
    expect(apiCalls?.successes).toBeGreaterThan(0); // the followed redirect
    expect(baseline.requests.some((request) => request.path === '/api/status')).toBe(true);
    expect(baseline.requests.some((request) => request.path === '/')).toBe(false);

    const closedPort = await freePort();
    const down = await runLoad({
      sessions: sessionsFromProfiles([BROWSE], ontology),
      targets: [{ name: 'target', url: `http://127.0.0.1:${closedPort}` }],
      durationMs: 500,
      concurrency: 2,
      timeScale: 0,
      threads: 1,
    });
    expect(down.status).toBe('completed');
    expect(
      down.stats.every(
        (entry) => entry.successes === 0 && entry.errorKinds.connection_refused === entry.errors,
      ),
    ).toBe(true);

    const dns = await runLoad(
      {
        sessions: sessionsFromProfiles([BROWSE], ontology),
        targets: [{ name: 'target', url: 'http://no-such-host.invalid' }],
        durationMs: 300,
        drainMs: 0,
        concurrency: 1,
        timeScale: 0,
        threads: 1,
      },
      undefined,
      { allowlist: new TargetAllowlist(['no-such-host.invalid']) },
    );
    expect(dns.stats[0]?.errorKinds.dns).toBeGreaterThan(0);
  });

  test('https: an untrusted certificate is a tls error; the CA option makes it pass', async () => {
    const cert = readFileSync(path.join(__dirname, 'fixtures', 'localhost-cert.pem'), 'utf8');
    const key = readFileSync(path.join(__dirname, 'fixtures', 'localhost-key.pem'), 'utf8');
    const server = https.createServer({ cert, key }, (_request, response) => response.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `https://localhost:${(server.address() as AddressInfo).port}`;
    const play = (tls: { ca?: string }) =>
      runLoad({
        sessions: sessionsFromProfiles([profile('tls', [{ t: 0, action: 'page_view' }])], ontology),
        targets: [{ name: 'target', url }],
        durationMs: 400,
        concurrency: 1,
        timeScale: 0,
        threads: 1,
        tls,
      });
    try {
      const untrusted = await play({});
      expect(untrusted.stats[0]?.successes).toBe(0);
      expect(untrusted.stats[0]?.errorKinds.tls).toBe(untrusted.stats[0]?.errors);
      const trusted = await play({ ca: cert });
      expect(trusted.stats[0]?.errors).toBe(0);
      expect(trusted.stats[0]?.successes).toBeGreaterThan(10);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('refuses targets outside the allowlist, bad URLs, caps and unknown actions, naming the field', async () => {
    const sessions = sessionsFromProfiles([BROWSE], ontology);
    const issues = async (options: Parameters<typeof runLoad>[0]) => {
      try {
        await runLoad(options);
      } catch (error) {
        if (error instanceof ValidationError)
          return error.issues.map((issue) => `${issue.field}: ${issue.rule}`);
        throw error;
      }
      throw new Error('expected a ValidationError');
    };
    expect(
      await issues({
        sessions,
        targets: [{ name: 'target', url: 'http://10.1.2.3' }],
        durationMs: 1000,
        concurrency: 1,
      }),
    ).toEqual([expect.stringMatching(/^targets: host 10\.1\.2\.3 is not in the target allowlist/)]);
    expect(
      await issues({
        sessions,
        targets: [{ name: 'target', url: 'ftp://127.0.0.1/' }],
        durationMs: 1000,
        concurrency: 1_000_000,
        model: 'open',
      }),
    ).toEqual([
      'concurrency: must be <= 1000',
      'rate: is required with the open model',
      'targets: must use http or https (got ftp)',
    ]);
    expect(() => sessionsFromProfiles([profile('odd', [{ t: 0, action: 'teleport' }])], ontology)).toThrow(
      /profiles\[odd\]\.behavioral_patterns\[0\]\.action: must be an action of ontology shop@1\.0\.0/,
    );
    expect(() =>
      sessionsFromProfiles([profile('odd', [{ t: 0, action: 'view_product' }])], ontology),
    ).toThrow(/profiles\[odd\]\.behavioral_patterns\[0\]\.data\.product_id: is required/);
  });
});
