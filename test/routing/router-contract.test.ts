/**
 * One contract, every router: each runs as a real process (the built-in proxy, Debian's HAProxy,
 * Debian's NGINX) in front of two real upstream servers on loopback, driven through the same
 * RouterRegistry and setCanaryWeight activity the worker uses.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRolloutActivities } from '../../activities';
import { RouterRegistry, routerTemplateVariables } from '../../routing/routers';
import { RouterUnavailableError, type TrafficRouter } from '../../routing/traffic-router';
import { ROUTER_TEMPLATE_VARIABLES, type RolloutSpec } from '../../rollout/spec';
import {
  binomialTolerance,
  eventually,
  sendRequests,
  startBuiltinHarness,
  startHaproxyHarness,
  routingOnlyDeps,
  underLoad,
  startNginxHarness,
  STICKY_COOKIE,
  TestUpstream,
  StickyUser,
  type HarnessFactory,
  type RouterHarness,
} from './support';

const SPLIT_REQUESTS = 3000;

describe.each<[string, HarnessFactory]>([
  ['builtin', startBuiltinHarness],
  ['haproxy', startHaproxyHarness],
  ['nginx', startNginxHarness],
])('%s router contract', (kind, startHarness) => {
  let dir: string;
  let baseline: TestUpstream;
  let canary: TestUpstream;
  let targets: RolloutSpec['targets'];
  let harness: RouterHarness;
  let registry: RouterRegistry;
  let router: TrafficRouter;
  let activities: ReturnType<typeof createRolloutActivities>;
  const rolloutId = `rollout-shop-${kind}`;

  const setShare = (share: number) =>
    activities.setCanaryWeight({ rolloutId, router: harness.spec, targets, share });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), `router-${kind}-`));
    baseline = await TestUpstream.start('baseline');
    canary = await TestUpstream.start('canary');
    targets = { baseline: { url: baseline.url }, canary: { url: canary.url } };
    harness = await startHarness(dir, targets);
    registry = new RouterRegistry({ env: harness.env });
    router = registry.routerFor(rolloutId, harness.spec, targets);
    activities = createRolloutActivities(routingOnlyDeps(registry));
  });

  afterAll(async () => {
    await registry?.close();
    await harness?.close();
    await baseline?.stop();
    await canary?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('reconcile points the router at the rollout targets, and a second reconcile changes nothing', async () => {
    await router.reconcile();
    await router.reconcile();
    await setShare(100);
    const tally = await sendRequests(harness.trafficUrl, 200);
    expect(tally).toMatchObject({ canary: 200, baseline: 0, failed: 0 });
  });

  test.each([0, 5, 50, 100])('sets %d %% and reads it back', async (share) => {
    await expect(setShare(share)).resolves.toEqual({ share });
    await expect(router.getCanaryWeight()).resolves.toBeCloseTo(share, 2);
    await expect(router.verify(share)).resolves.toBeUndefined();
    await setShare(share); // activities retry: the same share again is harmless
    await expect(router.getCanaryWeight()).resolves.toBeCloseTo(share, 2);
  });

  test.each([0, 100])('%d %% sends every request to one side', async (share) => {
    await setShare(share);
    const tally = await sendRequests(harness.trafficUrl, 300);
    expect(tally.failed).toBe(0);
    expect(tally.canary).toBe(share === 100 ? 300 : 0);
  });

  test.each([5, 50])('%d %% splits real requests within a binomial tolerance', async (share) => {
    await setShare(share);
    const tally = await sendRequests(harness.trafficUrl, SPLIT_REQUESTS);
    expect(tally.failed).toBe(0);
    const expected = (SPLIT_REQUESTS * share) / 100;
    expect(Math.abs(tally.canary - expected)).toBeLessThanOrEqual(binomialTolerance(SPLIT_REQUESTS, share));
  });

  test('a sticky user stays on one side; a rising share moves nobody off the canary', async () => {
    await setShare(50);
    const users = Array.from({ length: 24 }, () => new StickyUser(STICKY_COOKIE));
    const visitAll = (visits: number) =>
      Promise.all(users.map((user) => user.visit(harness.trafficUrl, visits)));
    const first = await visitAll(8);
    for (const sides of first) expect(new Set(sides).size).toBe(1);
    // 24 users at 50 %: both sides get some (all on one side has probability 2^-23).
    const sideOf = first.map((sides) => sides[0]);
    expect(new Set(sideOf).size).toBe(2);

    await setShare(70);
    const after = await visitAll(4);
    after.forEach((sides, user) => {
      expect(new Set(sides).size).toBe(1);
      if (sideOf[user] === 'canary') expect(sides[0]).toBe('canary');
    });
  });

  test('a weight change under constant load drops no request', async () => {
    await setShare(5);
    const tally = await underLoad(harness.trafficUrl, 8, async () => {
      for (const share of [20, 50, 80, 100, 30, 0, 10]) {
        await new Promise((resolve) => setTimeout(resolve, 150));
        await setShare(share);
      }
      await new Promise((resolve) => setTimeout(resolve, 150));
    });
    expect(tally.errors).toEqual([]);
    expect(tally.failed).toBe(0);
    expect(tally.baseline + tally.canary).toBe(tally.sent);
    expect(tally.canary).toBeGreaterThan(0);
    // Only a router that reloads may close a connection under a request (which the client retries).
    if (!harness.closesIdleConnectionsOnChange) expect(tally.retried).toBe(0);
  });

  test('the canary down: raising its share fails retryably and leaves the weight as it was', async () => {
    await setShare(20);
    await canary.stop();
    try {
      await eventually(() => expect(router.verify(20)).rejects.toThrow(RouterUnavailableError));
      await expect(setShare(30)).rejects.toThrow(RouterUnavailableError);
      await expect(router.getCanaryWeight()).resolves.toBeCloseTo(20, 2);
      // Cutting the canary always works, and from 0 it cannot be raised while it is down.
      await expect(setShare(0)).resolves.toEqual({ share: 0 });
      await expect(setShare(5)).rejects.toThrow(RouterUnavailableError);
      await expect(router.getCanaryWeight()).resolves.toBe(0);
      const tally = await sendRequests(harness.trafficUrl, 100);
      expect(tally).toMatchObject({ baseline: 100, failed: 0 });
    } finally {
      await canary.start();
    }
    await eventually(() => expect(setShare(5)).resolves.toEqual({ share: 5 }));
  });

  test('the router down: a retryable RouterUnavailableError, then the weight is set once it is back', async () => {
    await setShare(10);
    await harness.stopRouter();
    try {
      const failure = setShare(15);
      await expect(failure).rejects.toThrow(RouterUnavailableError);
      await expect(failure).rejects.not.toHaveProperty('nonRetryable', true);
      await expect(router.getCanaryWeight()).rejects.toThrow(RouterUnavailableError);
    } finally {
      await harness.restartRouter();
    }
    await eventually(() => expect(setShare(15)).resolves.toEqual({ share: 15 }));
    await expect(router.getCanaryWeight()).resolves.toBeCloseTo(15, 2);
  });

  test('finalize leaves all traffic on the promoted or the kept side', async () => {
    await router.finalize('promoted');
    await expect(router.getCanaryWeight()).resolves.toBe(100);
    await router.finalize('rolled_back');
    await expect(router.getCanaryWeight()).resolves.toBe(0);
    const tally = await sendRequests(harness.trafficUrl, 100);
    expect(tally).toMatchObject({ baseline: 100, failed: 0 });
  });

  test('gives metric templates only names they know, with a value for each target', () => {
    const variables = routerTemplateVariables(harness.spec, targets);
    expect(Object.keys(variables.canary)).toEqual(Object.keys(variables.baseline));
    for (const role of ['baseline', 'canary'] as const)
      for (const [name, value] of Object.entries(variables[role])) {
        expect(ROUTER_TEMPLATE_VARIABLES).toContain(name);
        expect(value).toMatch(/\S/);
      }
  });
});
