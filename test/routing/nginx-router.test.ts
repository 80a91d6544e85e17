/**
 * NGINX specifics beyond the contract: a config `nginx -t` rejects and a dead master both leave
 * the include file and the running weights exactly as they were. Real NGINX on loopback.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRouter } from '../../routing/routers';
import { RouterUnavailableError, type TrafficRouter } from '../../routing/traffic-router';
import type { RolloutSpec } from '../../rollout/spec';
import { sendRequests, startNginxHarness, TestUpstream, type RouterHarness } from './support';

describe('nginx router', () => {
  let dir: string;
  let baseline: TestUpstream;
  let canary: TestUpstream;
  let targets: RolloutSpec['targets'];
  let harness: RouterHarness;
  let router: TrafficRouter;
  const includeFile = () => harness.spec.includeFile as string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'nginx-router-'));
    baseline = await TestUpstream.start('baseline');
    canary = await TestUpstream.start('canary');
    targets = { baseline: { url: baseline.url }, canary: { url: canary.url } };
    harness = await startNginxHarness(dir, targets);
    router = createRouter(harness.spec, targets);
    await router.reconcile();
    await router.setCanaryWeight(20);
  });

  afterAll(async () => {
    await router?.close();
    await harness?.close();
    await baseline?.stop();
    await canary?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a config nginx -t rejects is reported and the previous one stays in place', async () => {
    const before = readFileSync(includeFile(), 'utf8');
    const unresolvable = createRouter(harness.spec, {
      ...targets,
      canary: { url: 'http://no-such-host.invalid:8080' },
    });
    const failure = unresolvable.reconcile();
    await expect(failure).rejects.toThrow(RouterUnavailableError);
    await expect(failure).rejects.toThrow(
      /nginx -t rejected the new upstream config.*no-such-host\.invalid/s,
    );
    expect(readFileSync(includeFile(), 'utf8')).toBe(before);
    await expect(router.getCanaryWeight()).resolves.toBe(20);
    await router.verify(20);
    await unresolvable.close();
  });

  test('a dead master: nothing is written and the error says so', async () => {
    const before = readFileSync(includeFile(), 'utf8');
    await harness.stopRouter();
    try {
      await expect(router.setCanaryWeight(40)).rejects.toThrow(RouterUnavailableError);
      expect(readFileSync(includeFile(), 'utf8')).toBe(before);
    } finally {
      await harness.restartRouter();
    }
    await expect(router.getCanaryWeight()).resolves.toBe(20);
    const tally = await sendRequests(harness.trafficUrl, 200);
    expect(tally.failed).toBe(0);
    expect(tally.canary).toBeGreaterThan(0);
  });
});
