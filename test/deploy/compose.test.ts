/**
 * Docker cannot run here, so the production docker-compose.yml is checked for structure: every
 * service the design names is there, images are pinned, mounted files exist in the repository,
 * our processes get the environment they read, and the example rollout spec for compose is valid
 * for the real components.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { validateComponentConfig } from '../../client/validate-spec';
import { loadWorkerPolicy } from '../../client/worker-policy';
import { parseRolloutDocument } from '../../rollout/document';
import { checkSpecAgainstWorkerPolicy } from '../../rollout/worker-policy';
import { projectRoot } from '../../devstack/tools';
import { issuesOf } from '../support/issues';

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  deploy?: { replicas?: number };
  depends_on?: unknown;
}

const compose = parse(readFileSync(path.join(projectRoot, 'docker-compose.yml'), 'utf8'), {
  merge: true,
}) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const services = compose.services;

describe('docker-compose.yml', () => {
  test('has every service of the production shape', () => {
    expect(Object.keys(services).sort()).toEqual(
      [
        'alertmanager',
        'api',
        'grafana',
        'haproxy',
        'loadgen-worker',
        'mongodb',
        'postgresql',
        'profiles-api',
        'prometheus',
        'router',
        'shop-baseline',
        'shop-canary',
        'temporal',
        'temporal-ui',
        'worker',
      ].sort(),
    );
  });

  test('pins every third-party image to a version', () => {
    for (const [name, service] of Object.entries(services)) {
      if (service.build) continue;
      expect({ name, image: service.image }).toEqual({
        name,
        image: expect.stringMatching(/^[\w./-]+:v?\d[\w.-]*$/) as unknown,
      });
    }
  });

  test('mounts only files and folders that exist in the repository, and declares its named volumes', () => {
    for (const service of Object.values(services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0] as string;
        if (source.startsWith('./'))
          expect({ volume, exists: existsSync(path.join(projectRoot, source)) }).toEqual({
            volume,
            exists: true,
          });
        else expect(Object.keys(compose.volumes)).toContain(source);
      }
    }
  });

  test('runs our processes from the built image with the settings they read', () => {
    for (const name of ['worker', 'loadgen-worker', 'api', 'profiles-api']) {
      const env = services[name]?.environment ?? {};
      expect({
        name,
        TEMPORAL_ADDRESS: env.TEMPORAL_ADDRESS,
        CANARY_MONGO_URI: env.CANARY_MONGO_URI,
      }).toEqual({
        name,
        TEMPORAL_ADDRESS: 'temporal:7233',
        CANARY_MONGO_URI: 'mongodb://mongodb:27017/',
      });
      const entry = services[name]?.command?.[1] as string;
      expect(existsSync(path.join(projectRoot, entry.replace(/^dist\//, '').replace(/\.js$/, '.ts')))).toBe(
        true,
      );
    }
    expect(services.worker?.command).toEqual(['node', 'dist/workers/main.js', '--queues', 'rollouts']);
    expect(services['loadgen-worker']?.command).toEqual([
      'node',
      'dist/workers/main.js',
      '--queues',
      'loadgen',
    ]);
    expect(services.worker?.environment?.LOADGEN_ALLOWED_TARGETS).toBe('shop-baseline,shop-canary');
    expect(services.api?.environment?.DASHBOARD_API_TOKEN).toMatch(/^\$\{API_TOKEN:\?/);
  });

  test("HAProxy's configuration has the backend, servers and runtime API the example rollout uses", () => {
    const config = readFileSync(path.join(projectRoot, 'deploy/haproxy/haproxy.cfg'), 'utf8');
    const spec = parseRolloutDocument(
      readFileSync(path.join(projectRoot, 'examples/rollouts/shop-compose.yaml'), 'utf8'),
    );
    validateComponentConfig(spec);
    expect(spec.router).toMatchObject({ kind: 'haproxy', runtimeApi: 'tcp://haproxy:9999', backend: 'shop' });
    expect(config).toMatch(/stats socket ipv4@0\.0\.0\.0:9999 level admin/);
    expect(config).toMatch(/^backend shop$/m);
    expect(config).toMatch(/^\s+server baseline shop-baseline:8081 /m);
    expect(config).toMatch(/^\s+server canary shop-canary:8082 /m);
    expect(spec.probe).toMatchObject({ taskQueue: 'loadgen', shards: 2 });
  });

  /** The file in the repository a container path of `service` is mounted from, if any. */
  function hostPathOf(service: Service, containerPath: string): string | undefined {
    for (const volume of service.volumes ?? []) {
      const [source, target] = volume.split(':') as [string, string];
      if (!source.startsWith('./')) continue;
      if (containerPath === target) return source;
      if (containerPath.startsWith(`${target}/`)) return `${source}${containerPath.slice(target.length)}`;
    }
    return undefined;
  }

  /** What deploy/temporal/generate-certs.sh writes, as the repository's certs folder will hold. */
  const generatedCerts = (() => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'compose-certs-'));
    try {
      execFileSync(path.join(projectRoot, 'deploy/temporal/generate-certs.sh'), [
        path.join(dir, 'certs'),
        path.join(dir, 'ca'),
      ]);
      return execFileSync('ls', [path.join(dir, 'certs')], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })();

  function expectGeneratedCert(service: Service, containerPath: string | undefined): void {
    const host = containerPath === undefined ? undefined : hostPathOf(service, containerPath);
    expect({ containerPath, host: host && path.dirname(host) }).toEqual({
      containerPath,
      host: './deploy/temporal/certs',
    });
    expect(generatedCerts).toContain(path.basename(host as string));
  }

  test('Temporal requires a client certificate from the generated CA (mutual TLS) and is published on loopback only', () => {
    const temporal = services.temporal as Service;
    const env = temporal.environment ?? {};
    expect(env.TEMPORAL_TLS_REQUIRE_CLIENT_AUTH).toBe('true');
    for (const name of [
      'TEMPORAL_TLS_SERVER_CERT',
      'TEMPORAL_TLS_SERVER_KEY',
      'TEMPORAL_TLS_SERVER_CA_CERT',
      'TEMPORAL_TLS_FRONTEND_CERT',
      'TEMPORAL_TLS_FRONTEND_KEY',
      'TEMPORAL_TLS_CLIENT1_CA_CERT',
      // Its own CLI: namespace setup and the healthcheck.
      'TEMPORAL_TLS_CERT',
      'TEMPORAL_TLS_KEY',
      'TEMPORAL_TLS_CA',
    ])
      expectGeneratedCert(temporal, env[name]);
    expect(env.TEMPORAL_TLS_CLIENT1_CA_CERT).toBe(env.TEMPORAL_TLS_SERVER_CA_CERT);
    expect(temporal.ports).toEqual(['127.0.0.1:7233:7233']);
  });

  test('every process that talks to Temporal presents the client certificate; the UI is on loopback only', () => {
    for (const name of ['worker', 'loadgen-worker', 'api', 'temporal-ui']) {
      const service = services[name] as Service;
      const env = service.environment ?? {};
      expect({ name, address: env.TEMPORAL_ADDRESS, serverName: env.TEMPORAL_TLS_SERVER_NAME }).toEqual({
        name,
        address: 'temporal:7233',
        serverName: 'temporal',
      });
      for (const variable of ['TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY', 'TEMPORAL_TLS_CA'])
        expectGeneratedCert(service, env[variable]);
      expect(path.basename(env.TEMPORAL_TLS_CERT as string)).toBe('client.pem');
    }
    // Services that do not talk to Temporal get no client key.
    for (const name of ['router', 'shop-baseline', 'shop-canary', 'profiles-api'])
      expect(services[name]?.environment?.TEMPORAL_TLS_KEY).toBeUndefined();
    expect(services['temporal-ui']?.ports).toEqual(['127.0.0.1:8233:8080']);
    for (const service of Object.values(services))
      for (const port of service.ports ?? [])
        if (/:(7233|8233)$/.test(port) || /^(7233|8233):/.test(port)) expect(port).toMatch(/^127\.0\.0\.1:/);
  });

  test("the rollout worker's policy is production, lets the example rollout through and refuses what it does not list", () => {
    const worker = services.worker as Service;
    const policyFile = hostPathOf(worker, worker.environment?.CANARY_WORKER_POLICY as string);
    expect(policyFile).toBe('./deploy/worker-policy.yaml');
    const policy = loadWorkerPolicy({ CANARY_WORKER_POLICY: path.join(projectRoot, policyFile as string) });
    expect(policy.profile).toBe('production');
    const spec = parseRolloutDocument(
      readFileSync(path.join(projectRoot, 'examples/rollouts/shop-compose.yaml'), 'utf8'),
    );
    expect(issuesOf(() => checkSpecAgainstWorkerPolicy(spec, policy))).toEqual([]);
    const elsewhere = {
      ...spec,
      router: { kind: 'builtin', adminUrl: 'http://router:9901', tokenEnv: 'CANARY_MONGO_URI' },
      alerts: { sinks: [{ kind: 'webhook', url: 'https://attacker.test/hook', secretEnv: 'ROUTER_TOKEN' }] },
    };
    expect(issuesOf(() => checkSpecAgainstWorkerPolicy(elsewhere, policy))).toEqual([
      "router.tokenEnv: CANARY_MONGO_URI is not in the worker's allowed secret names",
      "alerts.sinks[0].secretEnv: ROUTER_TOKEN is not in the worker's allowed secret names",
      "alerts.sinks[0].url: https://attacker.test/hook is not in the worker's allowed alert sink hosts",
    ]);
  });
});
