/**
 * The dashboard in a real browser: Debian's Chromium driven by playwright-core, against the
 * dashboard server, the real Temporal dev server and FerretDB, and a rollout worker wired with
 * the test doubles (plus probe_results in the traffic generator's format). Screenshots of the
 * list and of a rollout page land in test-artifacts/dashboard/.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Worker } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { buildDashboard } from '../../dashboard/app';
import { RolloutClient } from '../../client/rollout-client';
import { resolveTool } from '../../devstack/tools';
import { statusQuery } from '../../rollout/messages';
import type { rolloutWorkflow } from '../../workflows/rollout';
import { rolloutIdFor } from '../../rollout/spec';
import type { RolloutStatus } from '../../rollout/types';
import { startTestServers, type TestServers } from '../support/environment';
import { testSpec } from '../support/specs';
import { dashboardTestWorker, DEFAULT_SHAPES, until } from './support';

const TOKEN = 'browser-test-token-0123456789abcdef';
const TASK_QUEUE = 'dashboard-browser';
const ARTIFACTS = path.join(__dirname, '..', '..', 'test-artifacts', 'dashboard');
/** An action name that would run script if the page ever put data into HTML. */
const HOSTILE_ACTION = '<img src=x onerror="window.__xss=1">';

let servers: TestServers;
let worker: Worker;
let running: Promise<void>;
let app: FastifyInstance;
let baseUrl: string;
let profileDir: string;
let context: BrowserContext;
let page: Page;
const problems: string[] = [];
let liveId: string;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  servers = await startTestServers('dashboard-browser');
  worker = await dashboardTestWorker(servers, TASK_QUEUE, () => [
    ...DEFAULT_SHAPES,
    { action: HOSTILE_ACTION, medianMs: 30, canarySlowdown: 1, baselineErrorRate: 0, canaryErrorRate: 0 },
  ]);
  running = worker.run();
  app = await buildDashboard({
    temporal: servers.env.client,
    db: servers.db,
    settings: {
      auth: { token: TOKEN, protectReads: false },
      temporalUiUrl: 'http://127.0.0.1:8233',
      refreshMs: 700,
    },
  });
  baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });

  const start = (spec: ReturnType<typeof testSpec>) =>
    new RolloutClient(servers.env.client).start(spec, { taskQueue: TASK_QUEUE });
  // One that promotes, one that rolls back, and a long one that stays running with an anomaly.
  const done = await Promise.all([
    start(
      testSpec({ service: 'search', policy: { probingTicks: 1, initialShare: 5, stepUp: 1, promoteAt: 8 } }),
    ),
    start(
      testSpec({
        service: 'payments',
        policy: { probingTicks: 1, initialShare: 10, maxAnomalies: 2, anomalyWindowTicks: 5 },
        analysis: { script: { default: 'anomalous', '1': 'healthy', '2': 'healthy' }, action: 'pay' },
      }),
    ),
  ]);
  const live = testSpec({
    service: 'shop',
    interval: '500ms',
    probe: { duration: '200ms', concurrency: 4 },
    policy: {
      probingTicks: 2,
      initialShare: 5,
      stepUp: 1,
      stepDown: 3,
      promoteAt: 100,
      recoveryTicks: 2,
      cooldownTicks: 3,
    },
    analysis: { script: { '7': 'anomalous', '12': 'inconclusive' } },
  });
  liveId = rolloutIdFor(live.service, live.version);
  await start(live);
  await Promise.all(done.map((handle) => handle.result()));
  await until(
    () => servers.env.client.workflow.getHandle(liveId).query(statusQuery),
    (status: RolloutStatus) => status.tick >= 16,
    60_000,
  );

  profileDir = mkdtempSync(path.join(os.tmpdir(), 'canary-chromium-'));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: resolveTool('chromium'),
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning')
      problems.push(`console ${message.type()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  // Nothing may leave loopback: no CDN, no fonts, no telemetry.
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1') return route.continue();
    problems.push(`request to ${url.href}`);
    return route.abort();
  });
});

afterAll(async () => {
  await context?.close();
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  await servers?.env.client.workflow
    .getHandle(liveId)
    .terminate('test over')
    .catch(() => undefined);
  worker?.shutdown();
  await running;
  await app?.close();
  await servers?.stop();
});

async function status(): Promise<RolloutStatus> {
  return servers.env.client.workflow.getHandle(liveId).query(statusQuery);
}

/** Pixels of the canary's orange on every canvas under `selector` (0 if nothing was drawn). */
function canaryPixels(selector: string): Promise<number> {
  return page.evaluate<number>(`(() => {
    let count = 0;
    for (const canvas of document.querySelectorAll(${JSON.stringify(`${selector} canvas`)})) {
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      for (let i = 0; i < data.length; i += 4)
        if (data[i] > 200 && data[i + 1] > 60 && data[i + 1] < 120 && data[i + 2] < 60 && data[i + 3] > 200) count++;
    }
    return count;
  })()`);
}

test('the list shows every rollout with phase, share, start and last verdict', async () => {
  await page.goto(`${baseUrl}/`);
  await page.locator('#rollouts tbody tr[data-rollout]').nth(2).waitFor();
  const rows = page.locator('#rollouts tbody tr[data-rollout]');
  expect(await rows.count()).toBe(3);
  const live = page.locator(`tr[data-rollout="${liveId}"]`);
  await expect(live.locator('.badge').first().textContent()).resolves.toMatch(/progressing|probing/);
  expect(await page.locator('tr[data-rollout^="rollout-search-"] .badge').first().textContent()).toBe(
    'promoted',
  );
  expect(await page.locator('tr[data-rollout^="rollout-payments-"] .badge').first().textContent()).toBe(
    'rolled_back',
  );
  expect(
    await page.locator('tr[data-rollout^="rollout-payments-"] td[data-label="Last verdict"]').textContent(),
  ).toContain('anomalous');
  expect(await live.locator('td[data-label="Started"]').textContent()).toMatch(/ago|just now/);
  await page.screenshot({ path: path.join(ARTIFACTS, 'rollouts-list.png') });
});

test('a running rollout: share over time with anomalies, per-action charts, anomalies, tick log, profile mix', async () => {
  await page.locator(`tr[data-rollout="${liveId}"] a`).click();
  await page.waitForURL(`${baseUrl}/rollouts/${liveId}`);
  await page.locator('#rollout-title').waitFor();
  expect(await page.locator('#rollout-title').textContent()).toMatch(/^shop v/);

  await until(
    () => page.locator('#share-chart').getAttribute('data-points'),
    (points) => Number(points) >= 16,
  );
  await until(
    () => canaryPixels('#share-chart'),
    (pixels) => pixels > 200,
  );
  const cards = page.locator('.action-card');
  await until(
    () => cards.count(),
    (count) => count === 4,
  );
  for (const action of ['browse', 'checkout', 'search']) {
    const card = page.locator(`.action-card[data-action="${action}"]`);
    expect(Number(await card.locator('.latency-chart').getAttribute('data-points'))).toBeGreaterThanOrEqual(
      10,
    );
    expect(await card.locator('canvas').count()).toBe(2);
    expect(await canaryPixels(`.action-card[data-action="${action}"] .latency-chart`)).toBeGreaterThan(100);
  }
  expect(await page.locator('.action-card[data-action="checkout"] h3 .badge').textContent()).toBe(
    '1 anomaly',
  );

  const anomaly = page.locator('#anomalies .anomaly').first();
  expect(await anomaly.textContent()).toContain('checkout · latency_ms +38 % [+22 %, +55 %]');
  expect(await page.locator('#anomalies').textContent()).toMatch(/Tick 7 .* share \d+ % → \d+ %/);
  expect(await anomaly.locator('.evidence').textContent()).toContain(
    'regime 1 since tick 1: 2800 baseline, 2800 canary samples',
  );
  // What a person needs to look at and replay: the blamed action's slowest and failed requests.
  const slowest = anomaly.locator('.exemplar-table').first();
  expect(await slowest.locator('caption').textContent()).toMatch(/^Slowest requests \(ticks \d+–7\)$/);
  expect(await slowest.locator('tbody tr').count()).toBe(5);
  expect(await slowest.locator('td[data-label="Request"]').first().textContent()).toBe('POST /checkout');
  expect(await slowest.locator('td[data-label="Profile"]').first().textContent()).toMatch(/^user-\d$/);
  expect(await slowest.locator('td[data-label="Latency"]').first().textContent()).toMatch(/^\d+\.\d ms$/);
  expect(await anomaly.locator('.reproduce-line').textContent()).toMatch(
    /^canary loadgen --profiles user-\d(,user-\d)* --baseline \S+ --canary \S+ --duration 200ms /,
  );
  expect(await page.locator('#tick-log tbody tr').count()).toBeGreaterThanOrEqual(16);
  expect(await page.locator('#tick-log tr[data-tick="7"] td[data-label="Verdict"]').textContent()).toBe(
    'anomalous',
  );
  expect(await page.locator('#tick-log tr[data-tick="12"] td[data-label="Verdict"]').textContent()).toBe(
    'inconclusive',
  );
  expect(await page.locator('#profile-mix').textContent()).toContain('device:desktop');
  expect(await page.locator('#profile-mix').textContent()).toContain('60 %');
  expect(await page.locator('#temporal-link').getAttribute('href')).toBe(
    `http://127.0.0.1:8233/namespaces/default/workflows/${liveId}`,
  );

  // User input is shown as text, never parsed as HTML.
  const hostile = page.locator('.action-card h3').filter({ hasText: HOSTILE_ACTION });
  expect(await hostile.count()).toBe(1);
  expect(await page.evaluate<number>("document.querySelectorAll('main img').length")).toBe(0);
  expect(await page.evaluate<unknown>('window.__xss')).toBeUndefined();

  await page.screenshot({ path: path.join(ARTIFACTS, 'rollout-page.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(400); // charts follow their container's new width
  await page.screenshot({ path: path.join(ARTIFACTS, 'rollout-page-phone.png') });
  await page.screenshot({ path: path.join(ARTIFACTS, 'rollout-page-phone-full.png'), fullPage: true });
  const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
  expect(overflow).toBeLessThanOrEqual(0);
  await page.setViewportSize({ width: 1280, height: 900 });
});

test('controls: pause asks for the token once and pauses the workflow; roll back needs a reason', async () => {
  await page.locator('#control-pause').click();
  await page.locator('#control-dialog').waitFor();
  await page.locator('#reason-input').fill('looking at checkout latency');
  await page.locator('#control-ok').click();
  // No token yet: the page asks for it, then sends the control.
  await page.locator('#token-dialog').waitFor();
  await page.locator('#token-input').fill(TOKEN);
  await page.locator('#token-save').click();
  await page.locator('#control-dialog').waitFor({ state: 'hidden' });

  const paused = await until(status, (s) => s.phase === 'paused', 15_000);
  expect(paused.pausedReason).toBe('looking at checkout latency (dashboard)');
  await page.locator('#summary .badge.paused').first().waitFor();
  expect(await page.locator('#paused-reason').textContent()).toContain('looking at checkout latency');
  expect(await page.locator('#control-resume').isEnabled()).toBe(true);
  expect(await page.locator('#control-pause').isDisabled()).toBe(true);
  await page.screenshot({ path: path.join(ARTIFACTS, 'rollout-paused.png') });

  await page.locator('#control-rollback').click();
  await page.locator('#control-ok').click();
  expect(await page.locator('#control-error').textContent()).toContain('Please say why');
  await page.locator('#reason-input').fill('checkout p90 too slow');
  await page.locator('#control-ok').click();
  await page.locator('#control-dialog').waitFor({ state: 'hidden' });
  const result = await servers.env.client.workflow.getHandle<typeof rolloutWorkflow>(liveId).result();
  expect(result.outcome).toBe('rolled_back');
  expect(result.reasons.join('\n')).toContain('checkout p90 too slow (dashboard)');
  await page.locator('#summary .badge.rolled_back').first().waitFor({ timeout: 15_000 });
  expect(await page.locator('#control-rollback').isDisabled()).toBe(true);
  expect(problems).toEqual([]);
});
