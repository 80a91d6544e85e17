import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import {
  createRouter,
  RouterRegistry,
  routerTemplateVariables,
  validateRouterSpec,
} from '../../routing/routers';
import { renderHaproxyBackend } from '../../routing/haproxy-router';
import { renderNginxInclude, readRenderedState } from '../../routing/nginx-router';
import { RouterUnavailableError, sameShare } from '../../routing/traffic-router';
import { shareOfWeights, weightsForShare } from '../../routing/weights';
import { ValidationError } from '../../core/validation';

const targets = { baseline: { url: 'http://127.0.0.1:18081' }, canary: { url: 'http://127.0.0.1:18082' } };
const nginx = {
  kind: 'nginx',
  configFile: '/etc/nginx/nginx.conf',
  includeFile: '/etc/nginx/canary.conf',
  pidFile: '/run/nginx.pid',
  upstream: 'shop',
  statusListen: '127.0.0.1:8099',
};

function issuesOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ValidationError) return error.issues.map((issue) => `${issue.field}: ${issue.rule}`);
    throw error;
  }
  throw new Error('expected a ValidationError');
}

describe('validateRouterSpec', () => {
  test('refuses an unknown kind, naming the known ones', () => {
    expect(issuesOf(() => validateRouterSpec({ kind: 'envoy' }))).toEqual([
      'router.kind: must be one of builtin, haproxy, nginx, gateway-api, istio, ingress-nginx',
    ]);
  });

  test('names every bad builtin option', () => {
    expect(
      issuesOf(() =>
        validateRouterSpec({
          kind: 'builtin',
          adminUrl: 'ftp://x',
          tokenEnv: '1BAD',
          timeout: 'soon',
          extra: 1,
        }),
      ),
    ).toEqual([
      'router.extra: is not a known field (known: kind, adminUrl, tokenEnv, timeout)',
      'router.adminUrl: must be an http:// URL (scheme, host and port only)',
      'router.tokenEnv: must be an environment variable name',
      'router.timeout: must be a duration such as 500ms, 30s, 2m or 1h (or milliseconds)',
    ]);
  });

  test('names every bad haproxy and nginx option', () => {
    expect(
      issuesOf(() => validateRouterSpec({ kind: 'haproxy', runtimeApi: 'admin.sock', backend: 'a b' })),
    ).toEqual([
      'router.runtimeApi: must be an absolute unix socket path or tcp://host:port',
      'router.backend: must be a HAProxy backend name',
    ]);
    expect(
      issuesOf(() =>
        validateRouterSpec({
          kind: 'nginx',
          configFile: 'nginx.conf',
          includeFile: '/etc/nginx/canary.conf',
          pidFile: '/run/nginx.pid',
          upstream: 'shop-v2',
          statusListen: '0.0.0.0:8099',
        }),
      ),
    ).toEqual([
      'router.configFile: must be an absolute path',
      'router.upstream: must be an NGINX upstream name: letters, digits and _',
      'router.statusListen: must be a loopback host:port, e.g. 127.0.0.1:8099',
    ]);
  });

  test("nginx refuses a sticky cookie name with '-', which NGINX would read as a shorter cookie", () => {
    expect(
      issuesOf(() => validateRouterSpec({ ...nginx, sticky: { by: 'cookie', name: 'canary-user' } })),
    ).toEqual([
      "router.sticky.name: must not contain '-' for kind nginx (an NGINX $cookie_ variable cannot name it); use letters, digits and _",
    ]);
    expect(validateRouterSpec({ ...nginx, sticky: { by: 'header', name: 'x-user-id' } })).toMatchObject({
      options: { sticky: { by: 'header', name: 'x-user-id' } },
    });
    expect(validateRouterSpec({ ...nginx, sticky: { by: 'cookie', name: 'canary_user' } })).toMatchObject({
      options: { sticky: { by: 'cookie', name: 'canary_user' } },
    });
  });

  test('accepts a complete spec and fills in defaults', () => {
    expect(validateRouterSpec({ kind: 'builtin', adminUrl: 'http://127.0.0.1:9901/' })).toEqual({
      kind: 'builtin',
      options: { adminUrl: 'http://127.0.0.1:9901', tokenEnv: 'CANARY_PROXY_TOKEN', timeoutMs: 2000 },
    });
    const haproxy = validateRouterSpec({
      kind: 'haproxy',
      runtimeApi: 'tcp://127.0.0.1:9999',
      backend: 'shop',
    });
    expect(haproxy).toMatchObject({
      kind: 'haproxy',
      options: {
        runtimeApi: { host: '127.0.0.1', port: 9999 },
        servers: { baseline: 'baseline', canary: 'canary' },
      },
    });
  });

  test('refuses targets a router cannot send to', () => {
    const spec = { kind: 'builtin', adminUrl: 'http://127.0.0.1:9901' };
    expect(
      issuesOf(() => validateRouterSpec(spec, { ...targets, canary: { url: 'http://127.0.0.1:18082/v2' } })),
    ).toEqual(['targets.canary.url: must be an origin (scheme://host:port, no path) to be routed']);
  });

  test('a builtin router needs its token in the worker environment', () => {
    const spec = { kind: 'builtin', adminUrl: 'http://127.0.0.1:9901', tokenEnv: 'NOT_SET_ANYWHERE' };
    expect(issuesOf(() => createRouter(spec, targets, {}))).toEqual([
      'router.tokenEnv: environment variable NOT_SET_ANYWHERE is not set on the worker',
    ]);
  });
});

describe('routerTemplateVariables', () => {
  test("haproxy gives its backend and each target's server, defaults filled in", () => {
    const spec = { kind: 'haproxy', runtimeApi: '/run/haproxy.sock', backend: 'shop' };
    expect(routerTemplateVariables({ ...spec, servers: { baseline: 'v1', canary: 'v2' } }, targets)).toEqual({
      baseline: { backend: 'shop', server: 'v1' },
      canary: { backend: 'shop', server: 'v2' },
    });
    expect(routerTemplateVariables(spec)).toEqual({
      baseline: { backend: 'shop', server: 'baseline' },
      canary: { backend: 'shop', server: 'canary' },
    });
  });

  test('the built-in proxy gives the upstream label of its own series', () => {
    expect(routerTemplateVariables({ kind: 'builtin', adminUrl: 'http://127.0.0.1:9901' }, targets)).toEqual({
      baseline: { upstream: 'baseline' },
      canary: { upstream: 'canary' },
    });
  });

  test('nginx and the Gateway API give none', () => {
    const gateway = {
      kind: 'gateway-api',
      apiServer: 'https://kubernetes.default.svc',
      namespace: 'shop',
      route: 'shop',
      backends: { baseline: { name: 'shop-v1', port: 80 }, canary: { name: 'shop-v2', port: 80 } },
    };
    for (const spec of [nginx, gateway])
      expect(routerTemplateVariables(spec, targets)).toEqual({ baseline: {}, canary: {} });
  });

  test('refuses a spec the factory would refuse, naming the field', () => {
    expect(issuesOf(() => routerTemplateVariables({ kind: 'haproxy', backend: 'shop' }))).toEqual([
      'router.runtimeApi: must be a non-empty string',
    ]);
  });
});

describe('RouterRegistry', () => {
  const spec = { kind: 'builtin', adminUrl: 'http://127.0.0.1:9901', tokenEnv: 'TOKEN' };
  const env = { TOKEN: 'x'.repeat(32) };

  test('keeps one router per rollout and replaces it when the spec changes', async () => {
    const registry = new RouterRegistry({ env });
    const first = registry.routerFor('rollout-a', spec, targets);
    expect(registry.routerFor('rollout-a', { ...spec }, targets)).toBe(first);
    expect(registry.routerFor('rollout-b', spec, targets)).not.toBe(first);
    const changed = registry.routerFor('rollout-a', { ...spec, timeout: '5s' }, targets);
    expect(changed).not.toBe(first);
    await registry.close();
  });

  test('closes the least recently used router beyond its limit', async () => {
    const registry = new RouterRegistry({ env, maxRouters: 2 });
    const a = registry.routerFor('a', spec, targets);
    registry.routerFor('b', spec, targets);
    registry.routerFor('a', spec, targets);
    registry.routerFor('c', spec, targets);
    expect(registry.routerFor('a', spec, targets)).toBe(a);
    expect(registry.routerFor('b', spec, targets)).not.toBe(a);
    await registry.close();
  });
});

describe('weightsForShare', () => {
  test('expresses any share of 0.01 precision within 0.005 points under NGINX limits', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000 }), (basisPoints) => {
        const share = basisPoints / 100;
        const weights = weightsForShare(share, 10_000);
        return sameShare(shareOfWeights(weights), share);
      }),
    );
  });

  test('expresses every multiple of 0.5 exactly with HAProxy weights of at most 256', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 200 }), (halves) => {
        const weights = weightsForShare(halves / 2, 256);
        return weights.baseline <= 256 && weights.canary <= 256 && shareOfWeights(weights) === halves / 2;
      }),
    );
  });

  test('either hits the share or refuses it, never another share silently', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000 }), (basisPoints) => {
        const share = basisPoints / 100;
        try {
          return sameShare(shareOfWeights(weightsForShare(share, 256)), share);
        } catch (error) {
          return error instanceof ValidationError && error.issues[0]?.field === 'share';
        }
      }),
    );
  });

  test('moves weights in steps of the share, so consistent hashing moves few users', () => {
    expect(weightsForShare(5, 256)).toEqual({ baseline: 95, canary: 5 });
    expect(weightsForShare(6, 256)).toEqual({ baseline: 94, canary: 6 });
    expect(weightsForShare(2.5, 256)).toEqual({ baseline: 195, canary: 5 });
  });
});

describe('rendered configs', () => {
  test('HAProxy: consistent hashing on the sticky header, the 0 % side disabled, checks on', () => {
    const text = renderHaproxyBackend(
      {
        backend: 'shop',
        servers: { baseline: 'v1', canary: 'v2' },
        sticky: { by: 'header', name: 'x-user-id' },
        healthCheck: { path: '/healthz', intervalMs: 1000 },
      },
      targets,
      0,
    );
    expect(text).toContain('balance hdr(x-user-id)\n    hash-type consistent');
    expect(text).toContain('option httpchk GET /healthz');
    expect(text).toContain('server v1 127.0.0.1:18081 weight 100 check inter 1000ms fall 2 rise 2\n');
    expect(text).toContain('server v2 127.0.0.1:18082 weight 0 check inter 1000ms fall 2 rise 2 disabled\n');
  });

  test('NGINX: weights, a down 0 % side, cookie stickiness and a state line the router reads back', () => {
    const options = {
      upstream: 'shop',
      statusListen: '127.0.0.1:8099',
      sticky: { by: 'cookie', name: 'canary_user' },
      keepalive: 16,
    } as const;
    const text = renderNginxInclude(options, targets, { generation: 7, share: 0 });
    expect(text).toContain('hash $canary_key_shop consistent;');
    expect(text).toContain('server 127.0.0.1:18081 weight=100 max_fails=1 fail_timeout=5s;');
    expect(text).toContain('server 127.0.0.1:18082 weight=1 max_fails=1 fail_timeout=5s down;');
    expect(text).toContain('listen 127.0.0.1:8099;');
    expect(readRenderedState(text)).toEqual({ generation: 7, share: 0 });
    expect(renderNginxInclude(options, targets, { generation: 8, share: 12.5 })).toContain(
      'server 127.0.0.1:18082 weight=25 max_fails',
    );
  });
});

describe('builtin router and an unexpected admin answer', () => {
  test('a 200 that is not the proxy state is a retryable RouterUnavailableError, not a TypeError', async () => {
    const bodies = [
      '{}',
      '{"share":"40","upstreams":{}}',
      'not json',
      '{"share":40,"upstreams":{"baseline":{}}}',
    ];
    let next = 0;
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(bodies[next++ % bodies.length]);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const router = createRouter(
      { kind: 'builtin', adminUrl: `http://127.0.0.1:${port}`, tokenEnv: 'T' },
      targets,
      {
        T: 'x'.repeat(32),
      },
    );
    try {
      for (let i = 0; i < bodies.length; i += 1) {
        const failure = router.getCanaryWeight();
        await expect(failure).rejects.toBeInstanceOf(RouterUnavailableError);
        await expect(failure).rejects.toThrow(/answered 200 with a body that is not the proxy's state/);
      }
    } finally {
      await router.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
