import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as hdr from 'hdr-histogram-js';
import { MongoClient, type Db } from 'mongodb';
import type { Verdict } from '../../rollout/verdict';
import { RolloutAnalyzer, packState, unpackState } from '../../signals/analyzer';
import { SampleCollector } from '../../signals/collector';
import {
  PROBE_RESULTS_COLLECTION,
  type ProbeActionStats,
  type ProbeResultDocument,
} from '../../signals/probe-results';
import { SAMPLES_COLLECTION } from '../../signals/sample-store';
import { seededRandom, type RandomStream } from '../../core/random';
import { FerretDbServer } from '../../devstack/ferretdb';
import type { CollectRequest } from '../../activities/ports';
import { routerTemplateVariables } from '../../routing/routers';
import type { SourceRequest } from '../../signals/source';
import type { RolloutSpec } from '../../rollout/spec';
import { ValidationError, type Json } from '../../core/validation';

let dataDir: string;
let ferret: FerretDbServer;
let mongo: MongoClient;
let db: Db;

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'canary-collector-'));
  ferret = await FerretDbServer.start({
    dataDir: path.join(dataDir, 'ferretdb'),
    logFile: path.join(dataDir, 'ferretdb.log'),
  });
  mongo = await MongoClient.connect(ferret.uri, { serverSelectionTimeoutMS: 5000 });
  db = mongo.db('test_collector');
});

afterAll(async () => {
  await mongo?.close();
  await ferret?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

function logNormalMs(random: RandomStream, median: number): number {
  const z = Math.sqrt(-2 * Math.log(Math.max(random(), 1e-12))) * Math.cos(2 * Math.PI * random());
  return median * Math.exp(0.4 * z);
}

/** What the traffic generator would write for one probe window. */
function probeStats(
  random: RandomStream,
  target: 'baseline' | 'canary',
  action: string,
  requests: number,
  slowdown: number,
  errorRate: number,
): ProbeActionStats {
  const histogram = hdr.build({ numberOfSignificantValueDigits: 3, useWebAssembly: false });
  let errors = 0;
  for (let i = 0; i < requests; i += 1) {
    if (random() < errorRate) errors += 1;
    else histogram.recordValue(Math.round(logNormalMs(random, 40) * slowdown * 1000)); // µs
  }
  const encoded = hdr.encodeIntoCompressedBase64(histogram);
  histogram.destroy();
  return {
    target,
    action,
    latencyHistogram: encoded,
    successes: requests - errors,
    errors,
    statusCounts: { '200': requests - errors, '503': errors },
    errorKinds: errors > 0 ? { status: errors } : {},
    bytes: requests * 1200,
  };
}

async function writeProbeResults(
  rolloutId: string,
  tick: number,
  random: RandomStream,
  checkoutSlowdown: number,
): Promise<void> {
  const stats: ProbeActionStats[] = [];
  for (const target of ['baseline', 'canary'] as const)
    for (const action of ['browse', 'checkout'])
      stats.push(
        probeStats(
          random,
          target,
          action,
          500,
          target === 'canary' && action === 'checkout' ? checkoutSlowdown : 1,
          0.005,
        ),
      );
  const document: ProbeResultDocument = {
    rolloutId,
    tick,
    startedAt: tick * 60_000,
    endedAt: tick * 60_000 + 45_000,
    stats,
  };
  await db.collection<ProbeResultDocument>(PROBE_RESULTS_COLLECTION).insertOne(document);
}

const targets: RolloutSpec['targets'] = {
  baseline: { url: 'http://127.0.0.1:1' },
  canary: { url: 'http://127.0.0.1:2' },
};
const analysis: RolloutSpec['analysis'] = {
  method: 'sequential',
  alpha: 0.05,
  options: { sources: [{ kind: 'probe-results' }] },
};

function collectRequest(rolloutId: string, tick: number, spec = analysis): CollectRequest {
  return {
    rolloutId,
    tick,
    window: { from: tick * 60_000, to: tick * 60_000 + 45_000 },
    targets,
    router: { kind: 'builtin' },
    analysis: spec,
  };
}

describe('sample collector and analyzer on FerretDB', () => {
  it('rolls back when checkout latency regresses by 50 %, from probe results', async () => {
    const collector = new SampleCollector({ db });
    const analyzer = new RolloutAnalyzer(db);
    const random = seededRandom(21);
    let state: Json = null;
    const verdicts: Verdict[] = [];
    for (let tick = 1; tick <= 6; tick += 1) {
      await writeProbeResults('rollout-shop-slow', tick, random, 1.5);
      const summary = await collector.collect(collectRequest('rollout-shop-slow', tick));
      expect(summary).toMatchObject({ sources: ['probe-results'], missing: [] });
      const result = await analyzer.analyze({ rolloutId: 'rollout-shop-slow', tick, analysis, state });
      state = JSON.parse(JSON.stringify(result.state)) as Json;
      verdicts.push(result.verdict);
    }
    const anomalous = verdicts.find((v) => v.status === 'anomalous');
    expect(anomalous?.anomalies[0]).toMatchObject({
      metric: 'latency_ms',
      action: 'checkout',
      target: 'canary',
      critical: false,
    });
    expect(anomalous?.anomalies[0]?.summary).toMatch(
      /^checkout (p\d+ )?latency \+\d+ % \[\+\d+ %, \+\d+ %\]$/,
    );
    expect(verdicts.at(-1)?.status).toBe('anomalous');
  });

  it('stays healthy when canary and baseline behave alike', async () => {
    const collector = new SampleCollector({ db });
    const analyzer = new RolloutAnalyzer(db);
    const random = seededRandom(22);
    let state: Json = null;
    for (let tick = 1; tick <= 4; tick += 1) {
      await writeProbeResults('rollout-shop-same', tick, random, 1);
      await collector.collect(collectRequest('rollout-shop-same', tick));
      const result = await analyzer.analyze({ rolloutId: 'rollout-shop-same', tick, analysis, state });
      expect(result.verdict.status).toBe('healthy');
      state = result.state;
    }
  });

  it('stores one compact document per tick, however often collection is retried', async () => {
    const collector = new SampleCollector({ db });
    await writeProbeResults('rollout-shop-retry', 1, seededRandom(23), 1);
    await collector.collect(collectRequest('rollout-shop-retry', 1));
    await collector.collect(collectRequest('rollout-shop-retry', 1));
    const documents = await db
      .collection(SAMPLES_COLLECTION)
      .find({ rolloutId: 'rollout-shop-retry' })
      .toArray();
    expect(documents).toHaveLength(1);
    expect(documents[0]?.storedAt).toBeInstanceOf(Date);
    const stored = await collector.store.load('rollout-shop-retry', 1);
    expect(stored).not.toHaveProperty('storedAt');
    // 2 targets x 2 actions x (latency, error, status_5xx), not 2000 raw values
    expect(stored?.samples).toHaveLength(12);
    expect(stored?.rawSamples).toBe(12);
    expect(JSON.stringify(stored).length).toBeLessThan(60_000);
  });

  it('is inconclusive, naming the source, when the traffic generator wrote nothing', async () => {
    const collector = new SampleCollector({ db });
    const summary = await collector.collect(collectRequest('rollout-shop-silent', 1));
    expect(summary).toEqual({ samples: 0, sources: [], missing: ['probe-results'] });
    const result = await new RolloutAnalyzer(db).analyze({
      rolloutId: 'rollout-shop-silent',
      tick: 1,
      analysis,
      state: null,
    });
    expect(result.verdict.status).toBe('inconclusive');
    expect(result.verdict.reasons).toContain(
      'source probe-results gave no data: no probe results for rollout-shop-silent tick 1',
    );
    const uncollected = await new RolloutAnalyzer(db).analyze({
      rolloutId: 'rollout-shop-silent',
      tick: 2,
      analysis,
      state: result.state,
    });
    expect(uncollected.verdict.reasons).toContain('no samples were collected for tick 2');
  });

  it('refuses bad analysis options with the field and the rule', async () => {
    const collector = new SampleCollector({ db });
    const bad = { ...analysis, options: { sources: [{ kind: 'graphite' }] } };
    await expect(collector.collect(collectRequest('rollout-shop-bad', 1, bad))).rejects.toThrow(
      ValidationError,
    );
    await expect(collector.collect(collectRequest('rollout-shop-bad', 1, bad))).rejects.toThrow(
      'analysis.sources[0].kind: must be one of probe-results, prometheus, scrape',
    );
  });

  it("hands every source the template variables the rollout's router gives", async () => {
    const seen: { source: string; variables: SourceRequest['variables'] }[] = [];
    const collector = new SampleCollector({
      db,
      routerVariables: routerTemplateVariables,
      sourceFor: (spec) => ({
        name: spec.kind,
        collect: async (request) => {
          seen.push({ source: spec.kind, variables: request.variables });
          return { samples: [{ t: 0, target: 'canary', metric: 'memory_bytes', value: 1 }] };
        },
      }),
    });
    const twoSources = { ...analysis, options: { sources: [{ kind: 'probe-results' }, { kind: 'scrape' }] } };
    const haproxy = {
      kind: 'haproxy',
      runtimeApi: '/run/haproxy/admin.sock',
      backend: 'shop',
      servers: { baseline: 'v1', canary: 'v2' },
    };
    await collector.collect({ ...collectRequest('rollout-shop-vars', 1, twoSources), router: haproxy });
    const expected = {
      baseline: { backend: 'shop', server: 'v1' },
      canary: { backend: 'shop', server: 'v2' },
    };
    expect(seen).toEqual([
      { source: 'probe-results', variables: expected },
      { source: 'scrape', variables: expected },
    ]);
    // A router spec that no longer validates gives no names; queries needing one then say so.
    seen.length = 0;
    await collector.collect({
      ...collectRequest('rollout-shop-vars', 2, twoSources),
      router: { kind: 'envoy' },
    });
    expect(seen.map((entry) => entry.variables)).toEqual([
      { baseline: {}, canary: {} },
      { baseline: {}, canary: {} },
    ]);
  });

  it('carries the state deflated and reads it back intact', () => {
    const state = { v: 1, cells: { latency_ms: { checkout: { b: '1:2.3.4'.repeat(200) } } } } as Json;
    const packed = packState(state);
    expect(JSON.stringify(packed).length).toBeLessThan(JSON.stringify(state).length / 3);
    expect(unpackState(packed)).toEqual(state);
    expect(unpackState({ v: 1, deflated: 'not base64 deflate' })).toEqual({ unreadable: true });
  });
});
