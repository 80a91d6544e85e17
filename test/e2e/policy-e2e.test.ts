/**
 * The traffic policy against real scenarios, end to end on the local stack with the real
 * analysis (the default method, which scopes evidence to regimes, proves health and grades
 * severity): the sample shop's canary gets a transient, a load-dependent or a severe fault, real
 * users come through the built-in router, and alerts go to a real HTTP receiver.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { MongoClient } from 'mongodb';
import { request } from 'undici';
import { stringify } from 'yaml';
import { CHECKOUT_REGRESSION, demoRolloutDocument, NO_FAULTS } from '../../devstack/demo-rollout';
import { LocalStack, MONGO_DB } from '../../devstack/local-stack';
import type { ShopFaults } from '../../examples/shop/faults';
import { RolloutClient } from '../../client/rollout-client';
import { RolloutStore } from '../../client/rollout-store';
import { connectClient } from '../../platform/temporal-connection';
import { parseRolloutDocument } from '../../rollout/document';
import { rollbackSignal, statusQuery } from '../../rollout/messages';
import type { TrafficPolicy } from '../../rollout/spec';
import type { AlertEvent, RolloutResult, RolloutStatus, TickRecord } from '../../rollout/types';
import { HttpReceiver } from '../alerts/receiver';

const INTERVAL_MS = 2000;
/** Real users through the router, per second; the canary serves its share of them. */
const REAL_USERS_PER_SECOND = 30;
// A development worker allows secret names starting with CANARY_ only.
const HOOK_SECRET_ENV = 'CANARY_E2E_POLICY_HOOK_SECRET';
/** How long the transient fault lasts: a few ticks, long enough to be found. */
const TRANSIENT_MS = 6000;

let dataDir: string;
let stack: LocalStack;
let client: Client;
let mongo: MongoClient;
let receiver: HttpReceiver;
let users: RealUsers;
let counter = 0;

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'canary-policy-e2e-'));
  // The worker inherits the environment: the webhook sink signs with this secret.
  process.env[HOOK_SECRET_ENV] = randomBytes(16).toString('hex');
  [stack, receiver] = await Promise.all([LocalStack.start({ dataDir, profiles: 400 }), HttpReceiver.start()]);
  client = await connectClient({ address: stack.temporal.address, namespace: 'default' });
  mongo = await MongoClient.connect(stack.ferret.uri);
  users = new RealUsers(stack.proxyUrl, REAL_USERS_PER_SECOND);
}, 240_000);

afterAll(async () => {
  await users?.stop();
  await receiver?.stop();
  await mongo?.close();
  await client?.connection.close();
  await stack?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

/** Shoppers who keep coming through the router at a steady rate, each request split afresh. */
class RealUsers {
  private timer: NodeJS.Timeout | null = null;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly proxyUrl: string,
    private readonly perSecond: number,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      const sent = request(`${this.proxyUrl}/products/7`).then(
        (response) => response.body.dump(),
        () => undefined,
      );
      this.inFlight.add(sent);
      void sent.finally(() => this.inFlight.delete(sent));
    }, 1000 / this.perSecond);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.all(this.inFlight);
  }
}

interface Started {
  id: string;
  version: string;
}

async function startRollout(
  policy: Partial<TrafficPolicy>,
  analysis: Record<string, unknown> = {},
): Promise<Started> {
  counter += 1;
  const version = `3.0.${counter}-policy`;
  const document = demoRolloutDocument(stack, { version, intervalMs: INTERVAL_MS, policy }) as {
    spec: Record<string, unknown>;
  };
  document.spec.probe = { duration: `${INTERVAL_MS * 0.8}ms`, concurrency: 20, timeScale: 0.005 };
  // The default analysis method on what the probes measure (resources have their own tests),
  // and every alert to the receiver.
  document.spec.analysis = {
    alpha: 0.05,
    metrics: [{ name: 'latency_ms', minSamples: 10 }, { name: 'error' }],
    ...analysis,
  };
  document.spec.alerts = {
    sinks: [{ kind: 'webhook', url: `${receiver.url}/${version}`, secretEnv: HOOK_SECRET_ENV }],
  };
  const handle = await new RolloutClient(client).start(parseRolloutDocument(stringify(document)));
  return { id: handle.workflowId, version };
}

async function setFaults(faults: ShopFaults): Promise<void> {
  await stack.injectCanaryFaults(faults);
}

async function ticksOf(id: string): Promise<TickRecord[]> {
  return new RolloutStore(mongo.db(MONGO_DB)).listTicks(id);
}

async function statusOf(id: string): Promise<RolloutStatus | undefined> {
  return client.workflow
    .getHandle(id)
    .query(statusQuery)
    .catch(() => undefined);
}

async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not reached in time`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The rollout's result; if it takes longer than `timeoutMs`, a failure with its tick log. */
async function resultOf(id: string, timeoutMs = 100_000): Promise<RolloutResult> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        void ticksOf(id).then((ticks) =>
          reject(new Error(`${id} did not end within ${timeoutMs} ms; tick log:\n${describeTicks(ticks)}`)),
        ),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([client.workflow.getHandle(id).result() as Promise<RolloutResult>, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Real-user requests the router sent to the canary so far, from its own metrics. */
async function canaryRealRequests(): Promise<number> {
  const text = await (await request(`${stack.proxyAdminUrl}/metrics`)).body.text();
  return text
    .split('\n')
    .filter((line) => line.startsWith('canary_proxy_requests_total{upstream="canary"'))
    .reduce((total, line) => total + Number(line.split(' ').at(-1)), 0);
}

function alertsFor(version: string): AlertEvent[] {
  return receiver.requests
    .filter((received) => received.path === `/${version}`)
    .map((received) => JSON.parse(received.body) as AlertEvent);
}

/** Runs assertions about a rollout; a failure also shows its tick log, which says why. */
function aboutTicks(ticks: TickRecord[], assertions: () => void): void {
  try {
    assertions();
  } catch (error) {
    if (error instanceof Error) error.message += `\n\ntick log:\n${describeTicks(ticks)}`;
    throw error;
  }
}

function describeTicks(ticks: TickRecord[]): string {
  return ticks
    .map(
      (t) =>
        `${t.tick} ${t.verdict.status}${t.verdict.healthProven ? '+proven' : ''} ${t.action} ${t.shareBefore}->${t.shareAfter}: ${t.reason}`,
    )
    .join('\n');
}

describe('the traffic policy against real faults, with the real analysis', () => {
  test('healthy: promoted in the minimum number of ticks the policy allows', async () => {
    await setFaults(NO_FAULTS);
    // 1 probing tick, start at 10 %, +30 per clean tick: 10, 40, 70, then 100 promotes at tick 5.
    const { id } = await startRollout({ probingTicks: 1, initialShare: 10, stepUp: 30 });
    const result = await resultOf(id);
    const ticks = await ticksOf(id);
    aboutTicks(ticks, () => {
      expect(result.outcome).toBe('promoted');
      expect(ticks.map((tick) => tick.action)).toEqual(['hold', 'start', 'raise', 'raise', 'promote']);
    });
  });

  test('severe: checkout 250 ms slower is rolled back within one tick of detection, as soon as a verdict grades it severe', async () => {
    await setFaults(NO_FAULTS);
    const { id } = await startRollout({ probingTicks: 1, initialShare: 10, stepUp: 10, maxAnomalies: 3 });
    await waitFor('share 20 %', async () => ((await statusOf(id))?.share ?? 0) >= 20);
    users.start();
    const exposedBefore = await canaryRealRequests();
    await setFaults(CHECKOUT_REGRESSION);
    const injectedAt = Date.now();
    const result = await resultOf(id);
    const exposed = (await canaryRealRequests()) - exposedBefore;
    await users.stop();
    await setFaults(NO_FAULTS);
    const ticks = await ticksOf(id);
    recordExposure('severe', ticks, (tick) => tick.finishedAt >= injectedAt, exposed);
    const detected = ticks.findIndex((tick) => tick.verdict.status === 'anomalous');
    aboutTicks(ticks, () => {
      expect(result.outcome).toBe('rolled_back');
      // The first verdict that grades the anomaly severe rolls back: at detection, or at the
      // next tick when the first detection's interval is still too wide to call it severe.
      const rollback = ticks.findIndex((tick) => tick.action === 'rollback');
      expect(rollback - detected).toBeLessThanOrEqual(1);
      expect(ticks[rollback]?.verdict.anomalies.some((anomaly) => anomaly.severe)).toBe(true);
      expect(ticks[rollback]?.reason).toMatch(
        /^severe regression: checkout latency_ms at [\d.]+x the baseline \(at least [\d.]+x\): rolled back at once$/,
      );
    });
  });

  test('transient: checkout slower for a few seconds is cut, the share held until health is proven at the lower share, then raised (a `resolved` alert) and promoted', async () => {
    await setFaults(NO_FAULTS);
    const { id, version } = await startRollout(
      {
        probingTicks: 1,
        initialShare: 10,
        stepUp: 5,
        stepDown: 5,
        cooldownTicks: 1,
        maxAnomalies: 4,
        promoteAt: 55,
      },
      NOT_SEVERE,
    );
    await waitFor('share 25 %', async () => ((await statusOf(id))?.share ?? 0) >= 25);
    await setFaults({
      ...NO_FAULTS,
      latency: [{ action: 'checkout', extraMs: 20, fraction: 1 }],
      activeForMs: TRANSIENT_MS,
    });
    const injectedAt = Date.now();
    const result = await resultOf(id);
    const ticks = await ticksOf(id);
    recordExposure(
      'transient',
      ticks,
      (tick) => tick.finishedAt >= injectedAt && tick.startedAt <= injectedAt + TRANSIENT_MS,
    );
    const cuts = ticks.filter((tick) => tick.action === 'reduce');
    const lastCut = ticks.indexOf(cuts.at(-1) as TickRecord);
    const recovery = ticks.slice(lastCut + 1).find((tick) => tick.action === 'raise');
    aboutTicks(ticks, () => {
      expect(result.outcome).toBe('promoted');
      expect(cuts.length).toBeGreaterThanOrEqual(1);
      expect(cuts.flatMap((tick) => tick.verdict.anomalies.map((a) => `${a.action} ${a.metric}`))).toContain(
        'checkout latency_ms',
      );
      // Hysteresis: after the last cut the share rose only on a verdict that proved health.
      expect(recovery?.verdict.healthProven).toBe(true);
    });
    // The receiver got the anomaly, then `resolved` at the recovering raise, then the promotion.
    await receiver.received(1);
    await waitFor(
      'promoted alert',
      async () => alertsFor(version).some((alert) => alert.kind === 'promoted'),
      30_000,
    );
    const alerts = alertsFor(version);
    const kinds = alerts.map((alert) => alert.kind);
    expect(kinds.slice(kinds.lastIndexOf('anomaly'))).toEqual(['anomaly', 'resolved', 'promoted']);
    expect(alerts.find((alert) => alert.kind === 'resolved')).toMatchObject({
      tick: recovery?.tick,
      severity: 'info',
    });
  });

  test('load-dependent: cut at the share whose load slows checkout, held below it for the cooldown, retried, and paused after the second cut there', async () => {
    await setFaults(NO_FAULTS);
    users.start();
    const { id } = await startRollout(LOAD_POLICY, NOT_SEVERE);
    await setFaults({ ...NO_FAULTS, load: [SLOW_ABOVE_A_THIRD] });
    const injectedAt = Date.now();
    const status = await waitFor(
      'paused',
      async () => {
        const current = await statusOf(id);
        return current?.phase === 'paused' ? current : undefined;
      },
      200_000,
    ).catch(async (error: Error) => {
      aboutTicks(await ticksOf(id), () => {
        throw error;
      });
      throw error;
    });
    const ticks = await ticksOf(id);
    recordExposure(
      'load-dependent',
      ticks,
      (tick) => tick.finishedAt >= injectedAt && tick.shareBefore >= 40,
    );
    await client.workflow
      .getHandle(id)
      .signal(rollbackSignal, { by: 'e2e', reason: 'load-dependent fault found' });
    await resultOf(id);
    await users.stop();
    await setFaults(NO_FAULTS);
    const cuts = ticks.filter((tick) => tick.action === 'reduce');
    // The first cut back to 10 % (at 40 % the regression may be found only a tick later, at 70 %).
    const firstCut = cuts.find((tick) => tick.shareAfter === 10) as TickRecord;
    const retry = ticks.find((tick) => tick.tick > firstCut.tick && tick.action === 'raise');
    aboutTicks(ticks, () => {
      expect(status.pausedReason).toBe(
        '2 cuts at or above 40 % (maxCutsAtLevel 2): the canary fails under the load of that share; investigate, then resume, promote or roll back',
      );
      // Cut only where the load is above the fault's threshold, never at 10 %.
      expect(cuts.every((tick) => tick.shareBefore >= 40)).toBe(true);
      expect(firstCut).toBeDefined();
      // Cooldown, then a retry: for cooldownTicks after the cut the share stayed below 40 %; the
      // way back up stopped at 40 % exactly, on a verdict that proved health at 10 %.
      expect(retry).toMatchObject({ shareBefore: 10, shareAfter: 40, verdict: { healthProven: true } });
      expect((retry?.tick ?? 0) - firstCut.tick).toBeGreaterThanOrEqual(2);
      expect(
        ticks
          .filter((tick) => tick.tick > firstCut.tick && tick.tick < (retry?.tick ?? 0))
          .every((t) => t.shareAfter < 40),
      ).toBe(true);
    });
  }, 240_000);

  test('load-dependent with onRepeatedCuts: rollback: the second cut at one share rolls the canary back', async () => {
    await setFaults({ ...NO_FAULTS, load: [SLOW_ABOVE_A_THIRD] });
    users.start();
    const { id } = await startRollout({ ...LOAD_POLICY, onRepeatedCuts: 'rollback' }, NOT_SEVERE);
    const result = await resultOf(id, 200_000);
    await users.stop();
    await setFaults(NO_FAULTS);
    const ticks = await ticksOf(id);
    aboutTicks(ticks, () => {
      expect(result.outcome).toBe('rolled_back');
      expect(ticks.at(-1)?.reason).toBe(
        '2 cuts at or above 40 % (maxCutsAtLevel 2): the canary fails under the load of that share',
      );
    });
  }, 240_000);
});

/**
 * Checkout 20 ms slower is found in a tick or two and this spec does not call it severe. Proof
 * of health needs every compared cell proven within tolerance: latency only (these faults break
 * no requests; an error rate of a few events a tick cannot be proven within 5 % in a short test),
 * on the actions these shoppers use tens of times a tick (login, upload and api_call come a few
 * times), with a tolerance wide enough for loopback jitter.
 */
const NOT_SEVERE = {
  metrics: [{ name: 'latency_ms', minSamples: 10, tolerance: 0.3, severeRatio: 50 }],
  actions: ['page_view', 'search', 'view_product', 'add_to_cart', 'checkout'],
};

/**
 * 10 %, then 40 %, where the load fault below slows checkout; a cut goes back to 10 %. Proof of
 * health at the lower share took this engine 3 to more than 20 two-second ticks here: 40 are allowed.
 */
const LOAD_POLICY: Partial<TrafficPolicy> = {
  probingTicks: 1,
  initialShare: 10,
  stepUp: 30,
  stepDown: 30,
  cooldownTicks: 2,
  maxRecoveryTicks: 40,
  maxAnomalies: 5,
  anomalyWindowTicks: 20,
};

/**
 * Checkout 20 ms slower while the canary serves more than 15 real-user requests a second: at
 * 60 a second through the router that is above 25 %, so 10 % is fine and 40 % is not. Probes
 * are not counted (their rate does not change with the share) but are slowed like everyone.
 */
const SLOW_ABOVE_A_THIRD = {
  action: 'checkout' as const,
  extraMs: 20,
  aboveRps: 8,
  uncountedHeader: 'x-canary-probe',
};

/**
 * Real-user requests a regressed canary served, estimated from the tick log as the tick's share
 * x the real-user rate x the interval, over the ticks while it was regressed; and where real
 * users ran, what the router counted.
 */
const exposures: Record<string, { ticks: number; estimated: number; measured?: number }> = {};
function recordExposure(
  scenario: string,
  ticks: TickRecord[],
  regressed: (tick: TickRecord) => boolean,
  measured?: number,
): void {
  const exposedTicks = ticks.filter(regressed);
  const estimated = exposedTicks.reduce(
    (sum, tick) => sum + (tick.shareBefore / 100) * REAL_USERS_PER_SECOND * (INTERVAL_MS / 1000),
    0,
  );
  exposures[scenario] = {
    ticks: exposedTicks.length,
    estimated: Math.round(estimated),
    ...(measured === undefined ? {} : { measured }),
  };
}

afterAll(() => {
  if (process.env.E2E_EXPOSURE_FILE)
    writeFileSync(process.env.E2E_EXPOSURE_FILE, JSON.stringify(exposures, null, 2));
});
