import { buildShopApp } from './app';
import { parseFaultFlags, parseFaults } from './faults';
import { ValidationError } from '../../core/validation';

describe('sample shop', () => {
  test('implements every action of the default ontology with the responses it expects', async () => {
    const app = buildShopApp({ role: 'baseline', version: '1.0.0' });
    const page = await app.inject({ method: 'GET', url: '/deals/winter' });
    expect(page.statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/search?q=boots' })).json()).toHaveProperty('results');
    expect((await app.inject({ method: 'GET', url: '/products/p-17' })).json()).toMatchObject({ id: 'p-17' });
    const login = await app.inject({ method: 'POST', url: '/login', payload: { username: 'ada' } });
    expect(login.json()).toHaveProperty('token');
    const cookie = String(login.headers['set-cookie']).split(';')[0] ?? '';
    const cart = await app.inject({
      method: 'POST',
      url: '/cart/items',
      headers: { cookie },
      payload: { product_id: 'p-17', quantity: 2 },
    });
    expect(cart.statusCode).toBe(201);
    expect(cart.json<{ items: unknown[] }>().items).toHaveLength(1);
    const order = await app.inject({
      method: 'POST',
      url: '/checkout',
      headers: { cookie },
      payload: { payment_method: 'card' },
    });
    expect(order.statusCode).toBe(201);
    expect(order.json()).toMatchObject({ items: 1 });
    expect((await app.inject({ method: 'GET', url: '/api/status' })).json()).toMatchObject({ status: 'ok' });
    const upload = await app.inject({
      method: 'POST',
      url: '/upload',
      headers: { 'content-type': 'application/octet-stream' },
      payload: Buffer.alloc(2048),
    });
    expect(upload.json()).toMatchObject({ bytes: 2048 });
    await app.close();
  });

  test('bad request bodies get a 400 naming the field', async () => {
    const app = buildShopApp({ role: 'baseline', version: '1.0.0' });
    const bad = await app.inject({
      method: 'POST',
      url: '/cart/items',
      payload: { product_id: 'x', quantity: 0 },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ error: string }>().error).toContain('quantity');
    const json = await app.inject({
      method: 'POST',
      url: '/checkout',
      headers: { 'content-type': 'application/json' },
      payload: '{',
    });
    expect(json.statusCode).toBe(400);
    await app.close();
  });

  test('injected latency and errors hit only the chosen action, and show in the metrics', async () => {
    const app = buildShopApp({
      role: 'canary',
      version: '1.1.0',
      faults: parseFaults({
        latency: [{ action: 'checkout', extraMs: 120 }],
        errors: [{ action: 'search', rate: 1 }],
      }),
    });
    const started = Date.now();
    expect((await app.inject({ method: 'POST', url: '/checkout', payload: {} })).statusCode).toBe(201);
    expect(Date.now() - started).toBeGreaterThanOrEqual(115);
    expect((await app.inject({ method: 'GET', url: '/search?q=x' })).statusCode).toBe(500);
    expect((await app.inject({ method: 'GET', url: '/products/1' })).statusCode).toBe(200);
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(
      /http_requests_total\{action="search",method="GET",status_code="500",role="canary",version="1.1.0"\} 1/,
    );
    expect(metrics).toMatch(
      /http_request_duration_seconds_bucket\{le="0.25",role="canary",version="1.1.0",action="checkout",method="POST",status_code="201"\} 1/,
    );
    expect(metrics).toMatch(
      /http_request_duration_seconds_bucket\{le="0.1",role="canary",version="1.1.0",action="checkout",method="POST",status_code="201"\} 0/,
    );
    await app.close();
  });

  test('faults change at run time through the token-protected admin endpoint', async () => {
    const app = buildShopApp({ role: 'canary', version: '1.1.0', adminToken: 's3cret' });
    const denied = await app.inject({ method: 'POST', url: '/admin/faults', payload: { errors: [] } });
    expect(denied.statusCode).toBe(401);
    const headers = { authorization: 'Bearer s3cret' };
    const bad = await app.inject({
      method: 'POST',
      url: '/admin/faults',
      headers,
      payload: { errors: [{ action: 'pay', rate: 2 }] },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ error: string }>().error).toBe(
      'faults.errors[0].action: must be one of page_view, search, view_product, add_to_cart, checkout, login, api_call, upload; faults.errors[0].rate: must be <= 1',
    );
    const ok = await app.inject({
      method: 'POST',
      url: '/admin/faults',
      headers,
      payload: { errors: [{ action: 'login', rate: 1 }] },
    });
    expect(ok.statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/login', payload: { username: 'a' } })).statusCode).toBe(
      500,
    );
    await app.close();
  });

  test('command-line shorthand for faults', () => {
    expect(
      parseFaultFlags({
        latency: ['checkout:200ms@0.5'],
        errors: ['login:0.1'],
        cpu: ['search:5ms'],
        leak: '1024',
      }),
    ).toEqual({
      latency: [{ action: 'checkout', extraMs: 200, fraction: 0.5 }],
      errors: [{ action: 'login', rate: 0.1 }],
      cpu: [{ action: 'search', ms: 5 }],
      leakBytesPerSecond: 1024,
      load: [],
    });
    expect(parseFaultFlags({ load: ['checkout:200ms@40rps'], activeFor: '30s' })).toMatchObject({
      load: [{ action: 'checkout', extraMs: 200, aboveRps: 40 }],
      activeForMs: 30_000,
    });
    expect(() => parseFaultFlags({ load: ['checkout:200ms@fast'] })).toThrow(
      "--load: must look like action:duration@<number>rps, got 'checkout:200ms@fast'",
    );
    expect(() => parseFaultFlags({ latency: ['checkout'] })).toThrow(ValidationError);
    expect(() => parseFaultFlags({ latency: ['checkout:fast'] })).toThrow(
      'faults.latency[0].extraMs: must be a finite number',
    );
  });

  test('a load fault slows an action only while the shop answers more than aboveRps uncounted requests per second', async () => {
    let clock = 1_000_000;
    const app = buildShopApp({
      role: 'canary',
      version: '1.1.0',
      now: () => clock,
      faults: parseFaults({
        load: [{ action: 'checkout', extraMs: 150, aboveRps: 3, uncountedHeader: 'X-Canary-Probe' }],
      }),
    });
    const timed = async (headers: Record<string, string> = {}, url = '/checkout') => {
      const started = performance.now();
      const response = await app.inject({
        method: url === '/checkout' ? 'POST' : 'GET',
        url,
        headers,
        payload: url === '/checkout' ? {} : undefined,
      });
      expect(response.statusCode).toBeLessThan(300);
      return performance.now() - started;
    };
    // Probes are slowed like everyone but do not count: any number of them leaves it fast.
    for (let i = 0; i < 10; i++)
      expect(await timed({ 'x-canary-probe': 'session=1;seq=1' })).toBeLessThan(100);
    // Three real requests within a second are at the threshold, not above it.
    for (let i = 0; i < 2; i++) expect(await timed({}, '/products/1')).toBeLessThan(100);
    expect(await timed()).toBeLessThan(100);
    // The fourth goes above it: checkout is slow, for probes too, other actions are not.
    expect(await timed()).toBeGreaterThanOrEqual(145);
    expect(await timed({ 'x-canary-probe': 'session=1;seq=2' })).toBeGreaterThanOrEqual(145);
    expect(await timed({}, '/products/2')).toBeLessThan(100);
    // A second later the load has gone, and so has the slowness.
    clock += 1001;
    expect(await timed()).toBeLessThan(100);
    await app.close();
  });

  test('a transient fault is on for activeForMs after start, and again after it is set through the admin endpoint', async () => {
    let clock = 0;
    const faults = { errors: [{ action: 'login', rate: 1 }], activeForMs: '2s' };
    const app = buildShopApp({
      role: 'canary',
      version: '1.1.0',
      now: () => clock,
      adminToken: 's3cret',
      faults: parseFaults(faults),
    });
    const login = async () =>
      (await app.inject({ method: 'POST', url: '/login', payload: { username: 'a' } })).statusCode;
    expect(await login()).toBe(500);
    clock = 1999;
    expect(await login()).toBe(500);
    clock = 2000;
    expect(await login()).toBe(200);
    // Setting the faults again is the trigger: on for another two seconds.
    const set = await app.inject({
      method: 'POST',
      url: '/admin/faults',
      headers: { authorization: 'Bearer s3cret' },
      payload: faults,
    });
    expect(set.json()).toMatchObject({ faults: { activeForMs: 2000 } });
    expect(await login()).toBe(500);
    clock = 4000;
    expect(await login()).toBe(200);
    await app.close();
  });

  test('load and transient faults are validated field by field', () => {
    expect(() =>
      parseFaults({
        load: [
          { action: 'checkout', extraMs: -1, aboveRps: 'many', uncountedHeader: 'bad header' },
          { action: 'pay' },
        ],
        activeForMs: 'soon',
      }),
    ).toThrow(
      [
        'faults.load[0].extraMs: must be >= 0',
        'faults.load[0].aboveRps: must be a finite number',
        'faults.load[0].uncountedHeader: must be an HTTP header name',
        'faults.load[1].action: must be one of page_view, search, view_product, add_to_cart, checkout, login, api_call, upload',
        'faults.load[1].extraMs: must be a finite number',
        'faults.load[1].aboveRps: must be a finite number',
        'faults.activeForMs: must be a duration such as 500ms, 30s, 2m or 1h (or milliseconds)',
      ].join('; '),
    );
  });
});
