/**
 * What the dashboard tests run against: the real Temporal dev server and FerretDB, a rollout
 * worker wired with the TEST DOUBLES of test/support/doubles.ts, and a prober double that writes
 * probe_results documents in the traffic generator's real format (HDR histograms encoded by
 * loadgen/stats.ts), so the charts have per-action data to draw.
 */
import type { Worker } from '@temporalio/worker';
import type { Db } from 'mongodb';
import type { Prober, ProbeRequest } from '../../activities/ports';
import { PROBE_RESULTS_COLLECTION, probeSummaryOf } from '../../loadgen/prober';
import { ActionRecorder } from '../../loadgen/stats';
import { Random } from '../../core/random';
import { createRolloutWorker } from '../../workers/rollout-worker';
import { ProbeExemplars } from '../../signals/exemplars';
import type { ProbeSummary } from '../../rollout/types';
import type { Json } from '../../core/validation';
import { SleepingProber, testDeps } from '../support/doubles';
import { workflowBundle, type TestServers } from '../support/environment';

/** Per action: baseline median latency (ms), how much slower the canary is, and error rates. */
export interface ActionShape {
  action: string;
  medianMs: number;
  canarySlowdown: number;
  baselineErrorRate: number;
  canaryErrorRate: number;
}

export const DEFAULT_SHAPES: ActionShape[] = [
  { action: 'browse', medianMs: 18, canarySlowdown: 1.0, baselineErrorRate: 0.002, canaryErrorRate: 0.002 },
  { action: 'search', medianMs: 42, canarySlowdown: 1.05, baselineErrorRate: 0.004, canaryErrorRate: 0.005 },
  { action: 'checkout', medianMs: 95, canarySlowdown: 1.4, baselineErrorRate: 0.005, canaryErrorRate: 0.03 },
];

/** How each action's requests were sent, for exemplars (the search carries a token to be scrubbed). */
const SENT: Record<string, { method: string; path: string }> = {
  browse: { method: 'GET', path: '/products?page=2' },
  search: { method: 'GET', path: '/search?q=tea&access_token=secret-token-1' },
  checkout: { method: 'POST', path: '/checkout' },
};

/**
 * The stats of one probe window, as the traffic generator records them; with `profileIds` the
 * requests are attributed to those profiles in turn, so exemplars are kept.
 */
export function syntheticStats(
  shapes: readonly ActionShape[],
  seed: number,
  requestsPerAction = 400,
  profileIds: readonly string[] = [],
) {
  const random = Random.fromText(seed);
  const stats = [];
  for (const shape of shapes) {
    for (const target of ['baseline', 'canary'] as const) {
      const recorder = new ActionRecorder(target, shape.action);
      const median = shape.medianMs * (target === 'canary' ? shape.canarySlowdown : 1);
      const errorRate = target === 'canary' ? shape.canaryErrorRate : shape.baselineErrorRate;
      const sent = SENT[shape.action] ?? { method: 'GET', path: `/${shape.action}` };
      for (let i = 0; i < requestsPerAction; i++) {
        const micros = Math.round(random.logNormal(median * 1000, 0.45));
        const profileId = profileIds[i % Math.max(1, profileIds.length)];
        const request = profileId === undefined ? undefined : sent;
        if (random.next() < errorRate)
          recorder.recordError('unexpected_status', micros, 503, 0, request, profileId);
        else recorder.recordSuccess(micros, 200, 1200, request, profileId);
      }
      const drained = recorder.drain();
      recorder.latency.destroy();
      recorder.errorLatency.destroy();
      stats.push(drained);
    }
  }
  return stats;
}

/** TEST DOUBLE of the traffic generator: waits out the window, then writes its probe_results. */
export class SyntheticProber implements Prober {
  private readonly sleeping = new SleepingProber();

  constructor(
    private readonly db: Db,
    private readonly shapes: (request: ProbeRequest) => ActionShape[] = () => DEFAULT_SHAPES,
  ) {}

  async probe(
    request: ProbeRequest,
    progress: (details: Json) => void,
    signal: AbortSignal,
  ): Promise<ProbeSummary> {
    const slept = await this.sleeping.probe(request, progress, signal);
    const document = {
      _id: `${request.rolloutId}#${request.tick}`,
      rolloutId: request.rolloutId,
      tick: request.tick,
      startedAt: slept.startedAt,
      endedAt: slept.endedAt,
      stats: syntheticStats(this.shapes(request), request.seed, 400, request.profileIds),
      replay: {
        targets: { baseline: request.targets.baseline.url, canary: request.targets.canary.url },
        durationMs: request.durationMs,
        concurrency: request.concurrency,
        seed: request.seed,
        timeScale: request.timeScale ?? 1,
      },
    };
    await this.db
      .collection<typeof document>(PROBE_RESULTS_COLLECTION)
      .replaceOne({ _id: document._id }, document, { upsert: true });
    return probeSummaryOf(document);
  }
}

export async function dashboardTestWorker(
  servers: TestServers,
  taskQueue: string,
  shapes?: (request: ProbeRequest) => ActionShape[],
): Promise<Worker> {
  return createRolloutWorker({
    connection: servers.env.nativeConnection,
    taskQueue,
    deps: {
      ...testDeps(servers.db),
      prober: new SyntheticProber(servers.db, shapes),
      exemplars: new ProbeExemplars(servers.db),
    },
    workflowBundle: await workflowBundle(),
  });
}

export async function until<T>(
  read: () => Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (accept(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}
