import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { runCli } from '../support/cli';
import { appliedWeights, scriptVerdicts } from '../support/doubles';
import { startTestServers, type TestServers } from '../support/environment';
import { testWorker } from '../support/worker';

let servers: TestServers;
let counter = 0;

beforeAll(async () => {
  servers = await startTestServers('cli');
});

afterAll(async () => {
  await servers?.stop();
});

function specFile(
  spec: Record<string, unknown>,
  metadata: Record<string, unknown> = {},
): { file: string; id: string } {
  counter += 1;
  const version = `cli-${Date.now().toString(36)}-${counter}`;
  const file = path.join(servers.dataDir, `${version}.yaml`);
  writeFileSync(
    file,
    stringify({
      apiVersion: 'canary.dev/v1',
      kind: 'Rollout',
      metadata: { service: 'shop', version, ...metadata },
      spec: {
        targets: { baseline: { url: 'http://127.0.0.1:18081' }, canary: { url: 'http://127.0.0.1:18082' } },
        // A valid builtin router spec passes the CLI's validation; the test worker routes through
        // its recording double whatever the kind.
        router: { kind: 'builtin', adminUrl: 'http://127.0.0.1:18090' },
        interval: '300ms',
        probe: { duration: '100ms' },
        ...spec,
      },
    }),
  );
  return { file, id: `rollout-shop-${version}` };
}

const env = () => ({ TEMPORAL_ADDRESS: servers.temporal.address });

describe('canary rollout', () => {
  test('a bad spec gives field-level errors, exit 2, and starts nothing', async () => {
    const { file, id } = specFile({ policy: { stepUp: 0, promoteAt: 500 }, interval: 'soon', targets: {} });
    const run = await runCli(['rollout', 'start', '-f', file], { env: env() });
    expect(run.exitCode).toBe(2);
    expect(run.stderr.split('\n').filter(Boolean)).toEqual([
      'error: spec.targets.baseline: must be an object',
      'error: spec.targets.canary: must be an object',
      'error: spec.interval: must be a duration such as 500ms, 30s, 2m or 1h (or milliseconds)',
      'error: spec.policy.stepUp: must be > 0',
      'error: spec.policy.promoteAt: must be <= 100',
    ]);
    const status = await runCli(['rollout', 'status', id], { env: env() });
    expect(status.exitCode).toBe(2);
    expect(status.stderr).toContain('no rollout with that id');
  });

  test("the components' own checks run before anything starts: router and analysis options", async () => {
    const { file } = specFile({
      router: { kind: 'traefik' },
      analysis: { method: 'sequential', metrics: 'latency' },
    });
    const run = await runCli(['rollout', 'start', '-f', file], { env: env() });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain(
      'error: spec.router.kind: must be one of builtin, haproxy, nginx, gateway-api, istio, ingress-nginx',
    );
    expect(run.stderr).toMatch(/error: spec\.analysis\.metrics: /);
  });

  test('alert sinks are checked before anything starts: kind, options, no inline secrets', async () => {
    const { file, id } = specFile({
      alerts: {
        sinks: [
          { kind: 'pagerduty' },
          { kind: 'webhook', url: 'http://hooks.test/canary', secret: 'hunter2' },
          { kind: 'alertmanager', url: 'http://alertmanager:9093' },
        ],
      },
    });
    const run = await runCli(['rollout', 'start', '-f', file], { env: env() });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain(
      'error: spec.alerts.sinks[0].kind: must be one of log, webhook, slack, alertmanager',
    );
    expect(run.stderr).toContain('error: spec.alerts.sinks[1].secret: must not be given inline');
    expect(run.stderr).toContain('error: spec.alerts.sinks[1].secretEnv: must be a non-empty string');
    expect(run.stderr).not.toContain('hunter2');
    expect(run.stderr).not.toContain('sinks[2]');
    expect((await runCli(['rollout', 'status', id], { env: env() })).exitCode).toBe(2);
  });

  test('YAML syntax errors and a wrong kind are reported, exit 2', async () => {
    const broken = path.join(servers.dataDir, 'broken.yaml');
    writeFileSync(broken, 'apiVersion: canary.dev/v1\nkind: Rollout\nspec: [unclosed\n');
    const run = await runCli(['rollout', 'start', '-f', broken], { env: env() });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(/^error: .*broken\.yaml: is not valid YAML/);
    const missing = await runCli(['rollout', 'start', '-f', path.join(servers.dataDir, 'nope.yaml')], {
      env: env(),
    });
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain('cannot be read (ENOENT)');
  });

  test('start --wait exits 0 when the canary is promoted, and a second start is refused', async () => {
    const worker = await testWorker(servers, 'rollouts');
    const { file, id } = specFile({ policy: { probingTicks: 1, promoteAt: 8 } });
    await worker.runUntil(async () => {
      const run = await runCli(['rollout', 'start', '-f', file, '--wait'], { env: env() });
      expect(run.stderr).toBe('');
      expect(run.exitCode).toBe(0);
      expect(run.stdout).toContain(`started ${id}`);
      expect(run.stdout).toMatch(new RegExp(`${id}: promoted after \\d+ ticks`));
      const again = await runCli(['rollout', 'start', '-f', file], { env: env() });
      expect(again.exitCode).toBe(2);
      expect(again.stderr).toContain('was already started');
    });
  });

  test('start --wait exits 1 when the canary is rolled back; --json prints machine output', async () => {
    const worker = await testWorker(servers, 'rollouts');
    const { file, id } = specFile({ policy: { probingTicks: 1 } });
    await scriptVerdicts(servers.db, id, { '2': 'critical' });
    await worker.runUntil(async () => {
      const run = await runCli(['rollout', 'start', '-f', file, '--wait', '--json'], { env: env() });
      expect(run.exitCode).toBe(1);
      const lines = run.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { type: string; outcome?: string });
      expect(lines[0]).toEqual({ type: 'started', rolloutId: id });
      expect(lines.at(-1)).toMatchObject({ type: 'result', outcome: 'rolled_back' });
    });
    expect((await appliedWeights(servers.db, id)).at(-1)).toBe(0);
  });

  test('pause, status, set-policy, resume and rollback steer a running rollout', async () => {
    const worker = await testWorker(servers, 'rollouts');
    const { file, id } = specFile({ policy: { probingTicks: 1 } });
    await worker.runUntil(async () => {
      expect((await runCli(['rollout', 'start', '-f', file], { env: env() })).exitCode).toBe(0);
      expect((await runCli(['rollout', 'pause', id, '--reason', 'lunch'], { env: env() })).exitCode).toBe(0);
      const status = await runCli(['rollout', 'status', id, '--json'], { env: env() });
      expect(JSON.parse(status.stdout)).toMatchObject({
        phase: 'paused',
        pausedReason: expect.stringContaining('lunch (cli:') as unknown,
      });
      const bad = await runCli(['rollout', 'set-policy', id, '--set', 'stepUp=-1'], { env: env() });
      expect(bad.exitCode).toBe(2);
      expect(bad.stderr).toBe('error: policy.stepUp: must be > 0');
      const good = await runCli(['rollout', 'set-policy', id, '--set', 'stepUp=3'], { env: env() });
      expect(JSON.parse(good.stdout)).toMatchObject({ stepUp: 3 });
      expect((await runCli(['rollout', 'resume', id], { env: env() })).exitCode).toBe(0);
      const noReason = await runCli(['rollout', 'rollback', id], { env: env() });
      expect(noReason.exitCode).toBe(2);
      expect(noReason.stderr).toContain("required option '--reason <text>' not specified");
      expect(
        (await runCli(['rollout', 'rollback', id, '--reason', 'saw errors'], { env: env() })).exitCode,
      ).toBe(0);
      const watch = await runCli(['rollout', 'watch', id], { env: env() });
      expect(watch.exitCode).toBe(1);
      expect(watch.stdout).toContain('rolled back by a person: saw errors');
      const list = await runCli(['rollout', 'list', '--json'], { env: env() });
      expect(JSON.parse(list.stdout)).toEqual(
        expect.arrayContaining([expect.objectContaining({ rolloutId: id, state: 'COMPLETED' })]),
      );
    });
  });

  test('an unreachable Temporal is a clear error, exit 2', async () => {
    const run = await runCli(['rollout', 'status', 'rollout-shop-1'], {
      env: { TEMPORAL_ADDRESS: '127.0.0.1:1' },
    });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('cannot reach Temporal at 127.0.0.1:1');
  });
});
