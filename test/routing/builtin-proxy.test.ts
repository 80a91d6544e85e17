/**
 * What the built-in proxy does beyond the router contract: header stickiness, streaming bodies,
 * metrics, the admin endpoint's rules, failures and its state file. Real servers on loopback.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { startBuiltinProxy, type BuiltinProxy, type BuiltinProxyInput } from '../../routing/proxy/proxy';
import { createRouter } from '../../routing/routers';
import { RouterUnavailableError } from '../../routing/traffic-router';
import { createLogger } from '../../platform/logger';
import { freePort } from '../../devstack/ports';
import { projectRoot } from '../../devstack/tools';

const TOKEN = randomBytes(24).toString('hex');
const logger = createLogger('builtin-proxy-test', 'silent');

/** Answers with its role; /echo digests the request body; /stream sends three chunks 50 ms apart. */
async function startUpstream(role: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.url === '/echo') {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
      });
      req.on('end', () => res.end(JSON.stringify({ role, bytes, sha256: hash.digest('hex') })));
      return;
    }
    if (req.url === '/headers') {
      res.setHeader('connection', 'keep-alive, x-upstream-private');
      res.setHeader('x-upstream-private', 'secret');
      res.setHeader('x-public', 'yes');
      res.end(JSON.stringify(req.headers));
      return;
    }
    if (req.url === '/stream') {
      let sent = 0;
      const timer = setInterval(() => {
        sent += 1;
        res.write(`chunk ${sent} at ${Date.now()}\n`);
        if (sent === 3) {
          clearInterval(timer);
          res.end();
        }
      }, 50);
      return;
    }
    res.end(role);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function waitFor(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const response = await request(url, { headers });
  return { status: response.statusCode, body: await response.body.text() };
}

describe('built-in proxy', () => {
  let dir: string;
  let baseline: Awaited<ReturnType<typeof startUpstream>>;
  let canary: Awaited<ReturnType<typeof startUpstream>>;
  let proxy: BuiltinProxy;
  const proxies: BuiltinProxy[] = [];

  const start = async (overrides: Partial<BuiltinProxyInput> = {}): Promise<BuiltinProxy> => {
    const started = await startBuiltinProxy(
      {
        listen: '127.0.0.1:0',
        adminListen: '127.0.0.1:0',
        adminToken: TOKEN,
        upstreams: { baseline: baseline.url, canary: canary.url },
        healthCheck: { interval: '100ms', timeout: '80ms' },
        ...overrides,
      },
      logger,
    );
    proxies.push(started);
    return started;
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'builtin-proxy-'));
    baseline = await startUpstream('baseline');
    canary = await startUpstream('canary');
    proxy = await start({ sticky: { by: 'header', name: 'X-User-Id' } });
  });

  afterAll(async () => {
    await Promise.all(proxies.map((started) => started.close()));
    await baseline?.close();
    await canary?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a user id header keeps each user on one side, and a rising share only moves users to the canary', async () => {
    await proxy.setShare(30);
    const users = Array.from({ length: 200 }, (_, i) => `user-${i}`);
    const sideAt = async () =>
      Promise.all(users.map(async (user) => (await get(proxy.url, { 'x-user-id': user })).body));
    const first = await sideAt();
    expect(await sideAt()).toEqual(first);
    await proxy.setShare(60);
    const later = await sideAt();
    users.forEach((_, i) => {
      if (first[i] === 'canary') expect(later[i]).toBe('canary');
    });
    const canaryUsers = (sides: string[]) => sides.filter((side) => side === 'canary').length;
    expect(canaryUsers(later)).toBeGreaterThan(canaryUsers(first));
    // 200 users hashed at 30 %: 60 expected, 5 sigma is +-32.
    expect(Math.abs(canaryUsers(first) - 60)).toBeLessThanOrEqual(33);
  });

  test('streams a large request body to the upstream intact', async () => {
    await proxy.setShare(0);
    const body = randomBytes(4 * 1024 * 1024);
    const response = await request(`${proxy.url}/echo`, { method: 'POST', body });
    expect(await response.body.json()).toEqual({
      role: 'baseline',
      bytes: body.length,
      sha256: createHash('sha256').update(body).digest('hex'),
    });
  });

  test('streams the response: the first chunk arrives before the upstream has sent the last', async () => {
    await proxy.setShare(100);
    const response = await request(`${proxy.url}/stream`);
    const arrivals: number[] = [];
    let text = '';
    for await (const chunk of response.body) {
      arrivals.push(Date.now());
      text += String(chunk);
    }
    const sentAt = [...text.matchAll(/chunk \d at (\d+)/g)].map((match) => Number(match[1]));
    expect(sentAt).toHaveLength(3);
    expect(arrivals[0]).toBeLessThan(sentAt[2] as number);
  });

  test('counts requests and latency per upstream for the analysis', async () => {
    const fresh = await start();
    await fresh.setShare(50);
    for (let i = 0; i < 40; i += 1) await get(fresh.url);
    const metrics = await (await request(`${fresh.adminUrl}/metrics`)).body.text();
    const value = (pattern: RegExp) => Number(pattern.exec(metrics)?.[1] ?? NaN);
    const served = {
      baseline: value(/^canary_proxy_requests_total\{upstream="baseline",status_class="2xx"\} (\d+)$/m),
      canary: value(/^canary_proxy_requests_total\{upstream="canary",status_class="2xx"\} (\d+)$/m),
    };
    expect(served.baseline + served.canary).toBe(40);
    expect(value(/^canary_proxy_request_duration_seconds_count\{upstream="canary"\} (\d+)$/m)).toBe(
      served.canary,
    );
    expect(value(/^canary_proxy_canary_share_percent (\d+)$/m)).toBe(50);
    expect(value(/^canary_proxy_upstream_healthy\{upstream="canary"\} (\d+)$/m)).toBe(1);
  });

  test('the admin endpoint wants the token and names a bad field in the body every service answers', async () => {
    const call = async (method: 'GET' | 'PUT', pathname: string, token?: string, body?: unknown) => {
      const response = await request(`${proxy.adminUrl}${pathname}`, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : null,
      });
      return { status: response.statusCode, body: (await response.body.json()) as Record<string, unknown> };
    };
    const badRequest = (...issues: [string, string][]) => ({
      status: 400,
      body: {
        error: 'bad_request',
        message: issues.map(([field, rule]) => `${field}: ${rule}`).join('; '),
        issues: issues.map(([field, rule]) => ({ field, rule })),
      },
    });
    expect(await call('GET', '/weight')).toEqual({
      status: 401,
      body: {
        error: 'unauthorized',
        message: 'authorization: must be "Bearer <token>"',
        issues: [{ field: 'authorization', rule: 'must be "Bearer <token>"' }],
      },
    });
    expect(await call('PUT', '/weight', 'x'.repeat(48), { share: 5 })).toMatchObject({
      status: 401,
      body: { error: 'unauthorized', issues: [{ field: 'authorization', rule: 'the token is not valid' }] },
    });
    expect(await call('PUT', '/weight', TOKEN, { share: 101 })).toEqual(
      badRequest(['share', 'must be <= 100']),
    );
    expect(
      await call('PUT', '/upstreams', TOKEN, { baseline: baseline.url, canary: 'http://x/path' }),
    ).toEqual(badRequest(['canary', 'must be an http:// or https:// origin (no path)']));
    // No coercion, no silently dropped fields (Fastify's default Ajv would do both).
    const before = proxy.state().share;
    for (const share of [null, false, '50']) {
      expect(await call('PUT', '/weight', TOKEN, { share })).toEqual(
        badRequest(['share', 'must be a number']),
      );
    }
    expect(await call('PUT', '/weight', TOKEN, { share: 5, shrae: 6 })).toEqual(
      badRequest(['shrae', 'is not a known field']),
    );
    expect(await call('PUT', '/weight', TOKEN, [5])).toEqual(badRequest(['body', 'must be an object']));
    expect(
      await call('PUT', '/upstreams', TOKEN, { baseline: baseline.url, canary: 7, extra: true }),
    ).toEqual(badRequest(['extra', 'is not a known field'], ['canary', 'must be a string']));
    expect(proxy.state().share).toBe(before);
    expect(await call('PUT', '/weight', TOKEN, { share: 12.5 })).toMatchObject({
      status: 200,
      body: { share: 12.5 },
    });
  });

  test('drops the headers a Connection header names, in both directions (RFC 9110 7.6.1)', async () => {
    const answer = await new Promise<{ headers: http.IncomingHttpHeaders; body: string }>(
      (resolve, reject) => {
        const call = http.request(`${proxy.url}/headers`, {
          headers: {
            connection: 'keep-alive, X-Client-Private',
            'x-client-private': 'secret',
            'x-kept': '1',
          },
        });
        call.on('response', (response) => {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (body += chunk));
          response.on('end', () => resolve({ headers: response.headers, body }));
        });
        call.on('error', reject);
        call.end();
      },
    );
    const seen = JSON.parse(answer.body) as Record<string, string>;
    expect(seen['x-kept']).toBe('1');
    expect(seen).not.toHaveProperty('x-client-private');
    expect(answer.headers['x-public']).toBe('yes');
    expect(answer.headers).not.toHaveProperty('x-upstream-private');
  });

  test('answers 502 when no upstream answers, and counts the refused connections', async () => {
    const port = await freePort();
    const broken = await start({
      upstreams: { baseline: `http://127.0.0.1:${port}`, canary: `http://127.0.0.1:${port}` },
      healthCheck: false,
    });
    expect(await get(broken.url)).toEqual({ status: 502, body: 'bad gateway\n' });
    const metrics = await (await request(`${broken.adminUrl}/metrics`)).body.text();
    expect(metrics).toMatch(
      /^canary_proxy_upstream_errors_total\{upstream="baseline",reason="connect"\} [12]$/m,
    );
    expect(metrics).toMatch(
      /^canary_proxy_requests_total\{upstream="(baseline|canary)",status_class="5xx"\} 1$/m,
    );
  });

  test('never falls back to a side at 0 %: a down baseline after a rollback gives 502, not the canary', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    // Connect-retry path (no health checks): the refused request is resent to the same side.
    const rolledBack = await start({ upstreams: { baseline: dead, canary: canary.url }, healthCheck: false });
    await rolledBack.setShare(0);
    expect(await get(rolledBack.url)).toEqual({ status: 502, body: 'bad gateway\n' });
    // Health-check path: the baseline is marked down, and the canary still gets nobody at 0 %.
    const checked = await start({ upstreams: { baseline: dead, canary: canary.url }, share: 0 });
    await waitFor(() => !checked.state().upstreams.baseline.healthy);
    for (let i = 0; i < 5; i += 1) expect((await get(checked.url)).status).toBe(502);
    // And after a promotion a down canary does not send users back to the old baseline.
    const promoted = await start({ upstreams: { baseline: baseline.url, canary: dead }, share: 100 });
    await waitFor(() => !promoted.state().upstreams.canary.healthy);
    expect((await get(promoted.url)).status).toBe(502);
    // With a share on both sides the fallback still works.
    await checked.setShare(50);
    for (let i = 0; i < 5; i += 1) expect(await get(checked.url)).toEqual({ status: 200, body: 'canary' });
  });

  test('one failed state-file write does not stop later ones', async () => {
    const stateFile = path.join(dir, 'blocked.json');
    const first = await start({ stateFile });
    await first.setShare(10);
    mkdirSync(`${stateFile}.tmp`); // the next write cannot create its temporary file
    await expect(first.setShare(20)).rejects.toThrow();
    rmSync(`${stateFile}.tmp`, { recursive: true });
    await first.setShare(0);
    expect(JSON.parse(readFileSync(stateFile, 'utf8'))).toMatchObject({ share: 0 });
    await first.close();
    const second = await start({ stateFile, share: 55 });
    expect(second.state().share).toBe(0);
  });

  test("the builtin router passes on the message of the proxy's error body", async () => {
    const stateFile = path.join(dir, 'unwritable.json');
    const blocked = await start({ stateFile });
    mkdirSync(`${stateFile}.tmp`); // the proxy cannot persist the share: its admin answers 500
    const router = createRouter(
      { kind: 'builtin', adminUrl: blocked.adminUrl, tokenEnv: 'PROXY_TOKEN' },
      { baseline: { url: baseline.url }, canary: { url: canary.url } },
      { PROXY_TOKEN: TOKEN },
    );
    try {
      const failure = router.setCanaryWeight(20);
      await expect(failure).rejects.toBeInstanceOf(RouterUnavailableError);
      await expect(failure).rejects.toThrow(/PUT \/weight answered 500: internal error$/);
    } finally {
      await router.close();
      rmSync(`${stateFile}.tmp`, { recursive: true });
    }
  });

  test('the state file brings back the admin-set share after a restart', async () => {
    const stateFile = path.join(dir, 'state.json');
    const first = await start({ stateFile });
    await first.setShare(37);
    await first.close();
    const second = await start({ stateFile, share: 0 });
    expect(second.state().share).toBe(37);
  });

  test('the command line refuses bad options with the field and the rule', async () => {
    const run = promisify(execFile);
    const failure = await run(
      process.execPath,
      [
        '--import',
        'tsx',
        'routing/proxy/main.ts',
        '--listen',
        'localhost',
        '--admin-listen',
        '127.0.0.1:0',
        '--admin-token-env',
        'PROXY_TEST_TOKEN',
        '--baseline',
        'http://127.0.0.1:1',
        '--canary',
        'http://127.0.0.1:2/x',
      ],
      { cwd: projectRoot, env: { ...process.env, PROXY_TEST_TOKEN: 'short' } },
    ).catch((error: unknown) => error as { code: number; stderr: string });
    expect(failure).toMatchObject({ code: 2 });
    expect((failure as { stderr: string }).stderr.split('\n').filter(Boolean)).toEqual([
      'error: listen: must be host:port, e.g. 127.0.0.1:8080',
      'error: adminToken: must be at least 16 characters',
      'error: upstreams.canary: must be an http:// or https:// origin (no path)',
    ]);
  });
});
