import fc from 'fast-check';
import { parseRolloutSpec, type RolloutSpec } from './spec';
import {
  checkSpecAgainstWorkerPolicy,
  emptyWorkerPolicy,
  parseWorkerPolicy,
  type WorkerPolicy,
} from './worker-policy';
import { issuesOf } from '../test/support/issues';

function spec(overrides: Record<string, unknown> = {}): RolloutSpec {
  return parseRolloutSpec({
    service: 'shop',
    version: '1.0.0',
    targets: { baseline: { url: 'http://10.0.0.1:8081' }, canary: { url: 'http://10.0.0.2:8082' } },
    router: { kind: 'builtin', adminUrl: 'http://proxy.internal:9000' },
    ...overrides,
  });
}

const production = (lists: Partial<WorkerPolicy> = {}): WorkerPolicy => ({
  ...emptyWorkerPolicy('production'),
  ...lists,
});

const refusals = (rolloutSpec: RolloutSpec, policy: WorkerPolicy) =>
  issuesOf(() => checkSpecAgainstWorkerPolicy(rolloutSpec, policy));

describe('worker policy', () => {
  test('a production worker with an empty policy refuses the router endpoint and its default token', () => {
    expect(refusals(spec(), production())).toEqual([
      "router.tokenEnv: CANARY_PROXY_TOKEN is not in the worker's allowed secret names",
      "router.adminUrl: http://proxy.internal:9000 is not in the worker's allowed router endpoints",
    ]);
  });

  test('what the policy lists passes: endpoints by host:port or URL prefix, sinks, Prometheus, secrets', () => {
    const policy = production({
      routerEndpoints: ['proxy.internal:9000'],
      alertHosts: ['https://hooks.example.com/canary', 'alertmanager'],
      prometheusHosts: ['http://prometheus:9090'],
      secretNames: ['CANARY_PROXY_TOKEN', 'HOOK_SECRET'],
    });
    const allowed = spec({
      alerts: {
        sinks: [
          { kind: 'webhook', url: 'https://hooks.example.com/canary/shop', secretEnv: 'HOOK_SECRET' },
          { kind: 'alertmanager', url: 'http://alertmanager:9093' },
        ],
      },
      analysis: {
        sources: [{ kind: 'prometheus', url: 'http://prometheus:9090', templates: 'haproxy' }],
      },
    });
    expect(refusals(allowed, policy)).toEqual([]);
    const elsewhere = spec({
      router: { kind: 'builtin', adminUrl: 'http://proxy.internal:9001', tokenEnv: 'AWS_SECRET_ACCESS_KEY' },
      alerts: {
        sinks: [
          { kind: 'webhook', url: 'https://hooks.example.com/canaryx', secretEnv: 'HOME' },
          { kind: 'webhook', url: 'https://hooks.example.com@evil.test/canary', secretEnv: 'HOOK_SECRET' },
          { kind: 'slack', urlEnv: 'DATABASE_URL' },
        ],
      },
      analysis: { sources: [{ kind: 'prometheus', url: 'https://prometheus:9090', templates: 'haproxy' }] },
    });
    expect(refusals(elsewhere, policy)).toEqual([
      "router.tokenEnv: AWS_SECRET_ACCESS_KEY is not in the worker's allowed secret names",
      "router.adminUrl: http://proxy.internal:9001 is not in the worker's allowed router endpoints",
      "alerts.sinks[0].secretEnv: HOME is not in the worker's allowed secret names",
      "alerts.sinks[0].url: https://hooks.example.com/canaryx is not in the worker's allowed alert sink hosts",
      "alerts.sinks[1].url: https://hooks.example.com@evil.test/canary is not in the worker's allowed alert sink hosts",
      "alerts.sinks[2].urlEnv: DATABASE_URL is not in the worker's allowed secret names",
      "analysis.sources[0].url: https://prometheus:9090 is not in the worker's allowed Prometheus hosts",
    ]);
  });

  test('NGINX runs only a listed binary, writes only under listed paths and signals only listed pid files', () => {
    const nginx = {
      kind: 'nginx',
      configFile: '/etc/nginx/nginx.conf',
      includeFile: '/etc/nginx/canary/shop.conf',
      pidFile: '/run/nginx.pid',
      upstream: 'shop',
      statusListen: '127.0.0.1:8099',
    };
    const policy = production({
      nginx: {
        binaries: ['/usr/sbin/nginx'],
        configPaths: ['/etc/nginx/nginx.conf', '/etc/nginx/canary/'],
        pidFiles: ['/run/nginx.pid'],
      },
    });
    expect(refusals(spec({ router: nginx }), policy)).toEqual([]);
    expect(
      refusals(
        spec({
          router: {
            ...nginx,
            binary: '/bin/sh',
            includeFile: '/etc/nginx/canary/../../cron.d/x',
            pidFile: '/var/run/sshd.pid',
          },
        }),
        policy,
      ),
    ).toEqual([
      "router.binary: /bin/sh is not in the worker's allowed NGINX binaries",
      "router.includeFile: /etc/nginx/canary/../../cron.d/x is not in the worker's allowed NGINX config paths",
      "router.pidFile: /var/run/sshd.pid is not in the worker's allowed NGINX pid files",
    ]);
  });

  test('HAProxy runtime API: a tcp endpoint by host:port, a unix socket by its exact path', () => {
    const haproxy = (runtimeApi: string) =>
      spec({
        router: { kind: 'haproxy', runtimeApi, backend: 'shop', servers: { baseline: 'b', canary: 'c' } },
      });
    const policy = production({ routerEndpoints: ['tcp://haproxy:9999', '/run/haproxy/admin.sock'] });
    expect(refusals(haproxy('tcp://haproxy:9999'), policy)).toEqual([]);
    expect(refusals(haproxy('/run/haproxy/admin.sock'), policy)).toEqual([]);
    expect(refusals(haproxy('/var/run/docker.sock'), policy)).toEqual([
      "router.runtimeApi: /var/run/docker.sock is not in the worker's allowed router endpoints",
    ]);
  });

  test('a development worker also allows loopback hosts and CANARY_* secrets, nothing else', () => {
    const development = emptyWorkerPolicy('development');
    expect(
      refusals(spec({ router: { kind: 'builtin', adminUrl: 'http://127.0.0.1:9000' } }), development),
    ).toEqual([]);
    expect(
      refusals(
        spec({ router: { kind: 'builtin', adminUrl: 'http://[::1]:9000', tokenEnv: 'CANARY_X' } }),
        development,
      ),
    ).toEqual([]);
    expect(
      refusals(
        spec({ router: { kind: 'builtin', adminUrl: 'http://10.0.0.5:9000', tokenEnv: 'GITHUB_TOKEN' } }),
        development,
      ),
    ).toEqual([
      "router.tokenEnv: GITHUB_TOKEN is not in the worker's allowed secret names (this development worker also allows names starting with CANARY_)",
      "router.adminUrl: http://10.0.0.5:9000 is not in the worker's allowed router endpoints (this development worker also allows loopback hosts)",
    ]);
  });

  test('a policy file is read strictly: unknown keys and bad entries are named; without profile it is production', () => {
    expect(
      issuesOf(() =>
        parseWorkerPolicy(
          { profile: 'lenient', routerEndpoints: ['http://a b'], secretNames: ['A-B'], nginx: { bins: [] } },
          'policy.yaml',
        ),
      ),
    ).toEqual([
      'policy.yaml.profile: must be one of development, production',
      'policy.yaml.nginx.bins: is not a known field (known: binaries, configPaths, pidFiles)',
      'policy.yaml.routerEndpoints[0]: must be host, host:port or a URL prefix such as https://host:port/path',
      'policy.yaml.secretNames[0]: must be an environment variable name',
    ]);
    expect(parseWorkerPolicy({ secretNames: ['X'] }, 'policy.yaml').profile).toBe('production');
  });

  test('property: a production policy never lets through a router host it does not list', () => {
    const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(label, fc.integer({ min: 1, max: 65535 })), { maxLength: 4 }),
        label,
        fc.integer({ min: 1, max: 65535 }),
        fc.constantFrom('', 'user@', 'allowed.test@'),
        (listed, host, port, userinfo) => {
          const policy = production({
            routerEndpoints: listed.map(([h, p]) => `${h}:${p}`),
            secretNames: ['CANARY_PROXY_TOKEN'],
          });
          const adminUrl = `http://${userinfo}${host}:${port}`;
          const allowed = listed.some(([h, p]) => h === host && p === port);
          const refused = refusals(spec({ router: { kind: 'builtin', adminUrl } }), policy);
          expect(refused.length === 0).toBe(allowed);
        },
      ),
    );
  });
});
