/**
 * The processes' environment as an operator meets it: a name of the previous release still works
 * and says what to set instead; a bad value stops the process before it listens, naming the
 * variable, with exit code 2.
 */
import path from 'node:path';
import { request } from 'undici';
import { loadExeca } from '../../platform/execa';
import { projectRoot } from '../../devstack/tools';
import { startTestMongo, type TestMongo } from '../profiles/support';

let mongo: TestMongo;

beforeAll(async () => {
  mongo = await startTestMongo('process-config');
});

afterAll(async () => {
  await mongo?.stop();
});

/** Only what node needs: nothing of the test runner's own environment leaks into the process. */
const baseEnv = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };

async function runUntilExit(entry: string, env: Record<string, string>) {
  const { execa } = await loadExeca();
  const result = await execa(process.execPath, ['--import', 'tsx', path.join(projectRoot, entry)], {
    cwd: projectRoot,
    env: { ...baseEnv, ...env },
    extendEnv: false,
    reject: false,
    timeout: 60_000,
  });
  return { exitCode: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
}

const jsonLines = (text: string) =>
  text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);

test('a legacy variable still works, with one warning that names the new one', async () => {
  const { execa } = await loadExeca();
  const service = execa(
    process.execPath,
    ['--import', 'tsx', path.join(projectRoot, 'loadgen/service/server.ts')],
    {
      cwd: projectRoot,
      env: {
        ...baseEnv,
        CANARY_MONGO_URI: mongo.ferret.uri,
        CANARY_MONGO_DB: mongo.db.databaseName,
        LOADGEN_PORT: '0',
        // The ontology file under the name the loadgen service used to read.
        LOADGEN_ONTOLOGY: path.join(projectRoot, 'profiles/ontology/default.yaml'),
      },
      extendEnv: false,
      reject: false,
    },
  );
  let stdout = '';
  const url = await new Promise<string>((resolve, reject) => {
    service.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const ready = /^loadgen-service ready (\S+)$/m.exec(stdout);
      if (ready) resolve(ready[1] as string);
    });
    void service.then((result) => reject(new Error(`exited ${result.exitCode}: ${String(result.stderr)}`)));
  });
  try {
    const health = await request(`${url}/healthz`);
    expect(health.statusCode).toBe(200);
    await health.body.dump();
  } finally {
    service.kill('SIGTERM');
    await service;
  }
  const warnings = jsonLines(stdout).filter((line) => line.level === 40);
  expect(warnings).toEqual([
    expect.objectContaining({
      variable: 'LOADGEN_ONTOLOGY',
      replacement: 'CANARY_ONTOLOGY',
      msg: 'LOADGEN_ONTOLOGY is deprecated and will stop working in the next release: set CANARY_ONTOLOGY instead',
    }),
  ]);
});

test.each([
  [
    'dashboard/server.ts',
    { DASHBOARD_PORT: 'eighty' },
    'error: DASHBOARD_PORT: must be an integer between 0 and 65535',
  ],
  // A legacy name's bad value is named as it was set.
  ['dashboard/server.ts', { PORT: '70000' }, 'error: PORT: must be an integer between 0 and 65535'],
  [
    'workers/main.ts',
    { CANARY_RETENTION_DAYS: '0' },
    'error: CANARY_RETENTION_DAYS: must be an integer between 1 and 3650',
  ],
  [
    'workers/main.ts',
    { WORKER_METRICS_PORT: '-1' },
    'error: WORKER_METRICS_PORT: must be an integer between 0 and 65535',
  ],
  [
    'workers/main.ts',
    { CANARY_WORKER_POLICY: '/nonexistent/worker-policy.yaml' },
    'error: CANARY_WORKER_POLICY: /nonexistent/worker-policy.yaml cannot be read (ENOENT)',
  ],
  [
    'workers/main.ts',
    { CANARY_ALLOWED_SECRET_NAMES: 'CANARY_PROXY_TOKEN,not a name' },
    'error: CANARY_ALLOWED_SECRET_NAMES[1]: must be an environment variable name',
  ],
  [
    'profiles/api/server.ts',
    { PROFILES_API_PORT: 'http' },
    'error: PROFILES_API_PORT: must be an integer between 0 and 65535',
  ],
  [
    'loadgen/service/server.ts',
    { CANARY_MONGO_URI: 'postgres://db/' },
    'error: CANARY_MONGO_URI: must be a mongodb:// or mongodb+srv:// URI',
  ],
])('%s with %j exits 2 before listening, naming the variable', async (entry, env, message) => {
  const result = await runUntilExit(entry, env);
  expect(result.exitCode).toBe(2);
  expect(result.stderr.split('\n').filter((line) => line.startsWith('error: '))).toEqual([message]);
  expect(result.stdout).not.toMatch(/ready|listening/);
});
