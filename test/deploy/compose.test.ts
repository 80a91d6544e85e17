/**
 * Docker cannot run here, so the production docker-compose.yml is checked for structure: every
 * service the design names is there, images are pinned, mounted files exist in the repository,
 * our processes get the environment they read, and the example rollout spec for compose is valid
 * for the real components.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { validateComponentConfig } from '../../client/validate-spec';
import { parseRolloutDocument } from '../../rollout/document';
import { projectRoot } from '../../devstack/tools';

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
});
