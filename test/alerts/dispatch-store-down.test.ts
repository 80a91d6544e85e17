import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient } from 'mongodb';
import { capturingLogger } from '../support/log-capture';
import { AlertDispatcher, type DeliveryReport } from '../../alerts/dispatcher';
import { FerretDbServer } from '../../devstack/ferretdb';
import type { AdapterSpec } from '../../rollout/spec';
import { alertEvent } from './events';
import { HttpReceiver } from './receiver';

let dir: string;
let ferret: FerretDbServer;
let mongo: MongoClient;
let hooks: HttpReceiver;
const logLines: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'canary-alerts-down-'));
  hooks = await HttpReceiver.start();
  ferret = await FerretDbServer.start({
    dataDir: path.join(dir, 'ferretdb'),
    logFile: path.join(dir, 'ferretdb.log'),
  });
  // As the worker connects (platform/mongo-indexes.ts openDatabase).
  mongo = await MongoClient.connect(ferret.uri, { serverSelectionTimeoutMS: 10_000 });
});

afterAll(async () => {
  await mongo?.close();
  await Promise.all([ferret?.stop(), hooks?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

function dispatcher(reports: DeliveryReport[]): AlertDispatcher {
  const logger = capturingLogger(logLines);
  return new AlertDispatcher({
    db: mongo.db('alerts_down'),
    logger,
    env: { CANARY_HOOK_SECRET: 'hmac-secret-for-the-test' },
    retry: { budgetMs: 2000, initialDelayMs: 50, maxDelayMs: 200 },
    onDelivery: (report) => reports.push(report),
  });
}

const sinks = (): AdapterSpec[] => [
  { kind: 'webhook', url: `${hooks.url}/webhook`, secretEnv: 'CANARY_HOOK_SECRET', timeout: '1s' },
];
const alertLinesFor = (key: string) =>
  logLines.filter((line) => line.includes('"alert"') && line.includes(`"key":"${key}"`));

describe('alerts while the delivery store (FerretDB) is down', () => {
  test('reach the log and the webhook within seconds, at least once; deduplicated again once it is back', async () => {
    const reports: DeliveryReport[] = [];
    const before = alertEvent({ kind: 'paused' });
    await dispatcher(reports).dispatch(before, sinks());
    expect(hooks.requests).toHaveLength(1);

    await ferret.stop();
    const during = alertEvent({ kind: 'paused', severity: 'warning', summary: 'paused: the store is down' });
    const started = Date.now();
    await dispatcher(reports).dispatch(during, sinks());
    const tookMs = Date.now() - started;
    expect(tookMs).toBeLessThan(8000);
    expect(hooks.requests.map((r) => r.headers['x-canary-event'])).toEqual([before.key, during.key]);
    expect(alertLinesFor(during.key)).toHaveLength(1);
    expect(logLines.some((line) => line.includes('delivering the alert without a delivery record'))).toBe(
      true,
    );
    // A retried notify while the store is still down sends again: at least once, not at most once.
    await dispatcher(reports).dispatch(during, sinks());
    expect(hooks.requests.filter((r) => r.headers['x-canary-event'] === during.key)).toHaveLength(2);

    await ferret.restart();
    const after = alertEvent({ kind: 'paused' });
    await dispatcher(reports).dispatch(after, sinks());
    await dispatcher(reports).dispatch(after, sinks());
    expect(hooks.requests.filter((r) => r.headers['x-canary-event'] === after.key)).toHaveLength(1);
    expect(reports.filter((r) => r.sinkKind === 'webhook').map((r) => r.outcome)).toEqual([
      'delivered',
      'delivered',
      'delivered',
      'delivered',
      'duplicate',
    ]);
    console.log(`alert delivered with the store down after ${tookMs} ms`);
  });

  test('a store that accepts connections but does not answer (FerretDB stopped with SIGSTOP) holds delivery at most ~3 s per call', async () => {
    const reports: DeliveryReport[] = [];
    const pid = listenerPid(ferret.port);
    process.kill(pid, 'SIGSTOP');
    try {
      const hung = alertEvent({ kind: 'paused' });
      const started = Date.now();
      await dispatcher(reports).dispatch(hung, sinks());
      const tookMs = Date.now() - started;
      expect(hooks.requests.filter((r) => r.headers['x-canary-event'] === hung.key)).toHaveLength(1);
      expect(alertLinesFor(hung.key)).toHaveLength(1);
      expect(tookMs).toBeGreaterThanOrEqual(3000);
      expect(tookMs).toBeLessThan(10_000);
      console.log(`alert delivered with the store hanging after ${tookMs} ms`);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  });
});

/** The process listening on a loopback port (FerretDB keeps its child process to itself). */
function listenerPid(port: number): number {
  const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' });
  const match = /pid=(\d+)/.exec(out);
  if (!match) throw new Error(`no process listens on ${port}: ${out}`);
  return Number(match[1]);
}
