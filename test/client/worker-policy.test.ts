import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadWorkerPolicy } from '../../client/worker-policy';
import { issuesOf } from '../support/issues';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'worker-policy-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loading the worker policy from the environment', () => {
  test('without a file or variables the worker is a development worker with empty lists', () => {
    expect(loadWorkerPolicy({})).toEqual({
      profile: 'development',
      routerEndpoints: [],
      alertHosts: [],
      prometheusHosts: [],
      secretNames: [],
      nginx: { binaries: [], configPaths: [], pidFiles: [] },
    });
  });

  test('a YAML file is production unless it says otherwise; CANARY_ALLOWED_* lists add to it', () => {
    const file = path.join(dir, 'policy.yaml');
    writeFileSync(
      file,
      'routerEndpoints: [proxy.internal:9000]\nsecretNames: [CANARY_PROXY_TOKEN]\nnginx:\n  pidFiles: [/run/nginx.pid]\n',
    );
    const policy = loadWorkerPolicy({
      CANARY_WORKER_POLICY: file,
      CANARY_ALLOWED_SECRET_NAMES: 'HOOK_SECRET, CANARY_PROXY_TOKEN',
      CANARY_ALLOWED_ALERT_HOSTS: 'hooks.internal',
    });
    expect(policy.profile).toBe('production');
    expect(policy.routerEndpoints).toEqual(['proxy.internal:9000']);
    expect(policy.secretNames).toEqual(['CANARY_PROXY_TOKEN', 'HOOK_SECRET']);
    expect(policy.alertHosts).toEqual(['hooks.internal']);
    expect(policy.nginx.pidFiles).toEqual(['/run/nginx.pid']);
    expect(loadWorkerPolicy({ CANARY_WORKER_PROFILE: 'production' }).profile).toBe('production');
  });

  test('a missing file, a bad entry or a bad profile is an error naming the variable', () => {
    expect(
      issuesOf(() =>
        loadWorkerPolicy({
          CANARY_WORKER_POLICY: path.join(dir, 'missing.yaml'),
        }),
      ),
    ).toEqual([`CANARY_WORKER_POLICY: ${path.join(dir, 'missing.yaml')} cannot be read (ENOENT)`]);
    expect(
      issuesOf(() =>
        loadWorkerPolicy({ CANARY_ALLOWED_SECRET_NAMES: 'OK,not-a-name', CANARY_WORKER_PROFILE: 'strict' }),
      ),
    ).toEqual(['CANARY_WORKER_PROFILE: must be one of development, production']);
    expect(issuesOf(() => loadWorkerPolicy({ CANARY_ALLOWED_SECRET_NAMES: 'OK,not-a-name' }))).toEqual([
      'CANARY_ALLOWED_SECRET_NAMES[1]: must be an environment variable name',
    ]);
  });
});
