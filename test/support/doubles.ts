/**
 * TEST DOUBLES for the components (profile source, prober, analyzer, router, alerts), for the
 * workflow, CLI, dashboard and worker tests that drive rollouts tick by tick with scripted
 * verdicts; the end-to-end suite runs the real components instead. They keep their state in MongoDB (the real FerretDB of the test), so a worker in another process, a killed
 * worker and its replacement all see the same router and alert history.
 */
import type { Db } from 'mongodb';
import { ValidationError, type Json } from '../../core/validation';
import { anomalyKey, type Anomaly, type Verdict, type VerdictStatus } from '../../rollout/verdict';
import type { ActivityDeps, AnalyzeRequest, ProbeRequest } from '../../activities/ports';
import {
  RouterUnavailableError,
  sameShare,
  WeightMismatchError,
  type TrafficRouter,
} from '../../routing/traffic-router';
import { RolloutStore } from '../../client/rollout-store';
import type { AdapterSpec } from '../../rollout/spec';
import type { AlertEvent, ProbeSummary } from '../../rollout/types';
import { emptyWorkerPolicy } from '../../rollout/worker-policy';

/**
 * Scripted verdicts: `{ "default": "healthy", "4": "anomalous", "5": "inconclusive", "6": "critical" }`,
 * read from the spec's `analysis.options.script` or else from the test database (`scriptVerdicts`,
 * for specs that must pass the real components' validation, as the CLI's do).
 * `analysis.options.action` names the action the scripted anomalies blame (default `checkout`).
 */
export class ScriptedAnalyzer {
  constructor(private readonly db: Db) {}

  async analyze(request: AnalyzeRequest): Promise<{ verdict: Verdict; state: Json }> {
    const options = request.analysis.options;
    // A script in the spec needs no database, so a store outage does not stall the analysis.
    const script =
      (options.script as Record<string, string> | undefined) ??
      (await this.db.collection<ScriptDocument>('test_verdict_scripts').findOne({ _id: request.rolloutId }))
        ?.script ??
      {};
    // Only tests that ask for it keep the regimes, so a store outage does not stall the others.
    if (options.recordRegimes === true)
      await this.db
        .collection<RegimeDocument>('test_analysed_regimes')
        .replaceOne(
          { _id: `${request.rolloutId}#${request.tick}` },
          { rolloutId: request.rolloutId, tick: request.tick, regime: request.regime ?? null },
          { upsert: true },
        );
    const step = script[String(request.tick)] ?? script.default ?? 'healthy';
    const action = typeof options.action === 'string' ? options.action : 'checkout';
    // The state counts the ticks analysed; a gap means the carried state was lost (e.g. across
    // continue-as-new), which the tests must see as a wrong verdict rather than miss.
    const seen = typeof request.state === 'number' ? request.state : 0;
    const state = seen + 1;
    if (seen !== request.tick - 1) {
      return {
        verdict: {
          status: 'inconclusive',
          anomalies: [],
          reasons: [`analysis state lost: ${seen} ticks seen before tick ${request.tick}`],
        },
        state,
      };
    }
    if (step === 'healthy') return { verdict: { status: 'healthy', anomalies: [], reasons: [] }, state };
    if (step === 'inconclusive') {
      return { verdict: { status: 'inconclusive', anomalies: [], reasons: ['scripted: no data'] }, state };
    }
    const anomaly: Anomaly = {
      metric: 'latency_ms',
      action,
      effect: 0.38,
      interval: [0.22, 0.55],
      statistic: 'scripted',
      critical: step === 'critical',
      summary: `${action} p90 latency +38 % [+22 %, +55 %]`,
      evidence: {
        regime: 1,
        fromTick: 1,
        samples: { baseline: 400 * request.tick, canary: 400 * request.tick },
      },
    };
    const status: VerdictStatus = 'anomalous';
    return { verdict: { status, anomalies: [anomaly], reasons: [anomalyKey(anomaly)] }, state };
  }
}

interface RegimeDocument {
  _id: string;
  rolloutId: string;
  tick: number;
  regime: AnalyzeRequest['regime'] | null;
}

/** The regime the workflow handed the analyzer at each tick, in tick order. */
export async function analysedRegimes(
  db: Db,
  rolloutId: string,
): Promise<{ tick: number; regime: AnalyzeRequest['regime'] | null }[]> {
  const documents = await db
    .collection<RegimeDocument>('test_analysed_regimes')
    .find({ rolloutId })
    .sort({ tick: 1 })
    .toArray();
  return documents.map(({ tick, regime }) => ({ tick, regime }));
}

interface ScriptDocument {
  _id: string;
  script: Record<string, string>;
}

/** Scripts the verdicts of one rollout (see ScriptedAnalyzer). */
export async function scriptVerdicts(
  db: Db,
  rolloutId: string,
  script: Record<string, string>,
): Promise<void> {
  await db
    .collection<ScriptDocument>('test_verdict_scripts')
    .replaceOne({ _id: rolloutId }, { script }, { upsert: true });
}

/** Waits out the probe duration (heartbeating, honouring cancellation) and reports request counts. */
export class SleepingProber {
  constructor(private readonly options: { honourDuration: boolean } = { honourDuration: true }) {}

  async probe(
    request: ProbeRequest,
    progress: (details: Json) => void,
    signal: AbortSignal,
  ): Promise<ProbeSummary> {
    const startedAt = Date.now();
    const until = startedAt + (this.options.honourDuration ? request.durationMs : 0);
    while (Date.now() < until) {
      if (signal.aborted) throw new Error('probe cancelled');
      progress({ tick: request.tick, elapsedMs: Date.now() - startedAt });
      await new Promise((resolve) => setTimeout(resolve, Math.min(200, until - Date.now())));
    }
    const requests = request.profileIds.length * request.concurrency;
    return {
      startedAt,
      endedAt: Date.now(),
      requests: { baseline: requests, canary: requests },
      errors: { baseline: 0, canary: 0 },
    };
  }
}

interface WeightDocument {
  rolloutId: string;
  share: number;
  at: Date;
}

type RouterFault = 'refused-token' | 'down';

/**
 * Breaks the router double of one rollout until called again with null: 'refused-token' fails
 * like a proxy answering 401 (a ValidationError), 'down' like an unreachable router.
 */
export async function breakRouter(db: Db, rolloutId: string, fault: RouterFault | null): Promise<void> {
  await db
    .collection<{ _id: string; fault: RouterFault | null }>('test_router_faults')
    .updateOne({ _id: rolloutId }, { $set: { fault } }, { upsert: true });
}

/** Changes the share the router double serves behind the rollout's back (drift). */
export async function driftRouter(db: Db, rolloutId: string, share: number): Promise<void> {
  await db
    .collection<{ _id: string; share: number }>('test_router_state')
    .updateOne({ _id: rolloutId }, { $set: { share } });
}

/**
 * A router double that records every weight it is given. Spec options:
 * `unavailableAbove: n` makes it refuse shares above n (a router that is down for that change).
 * breakRouter() makes every change fail until it is repaired.
 */
export class RecordingRouter implements TrafficRouter {
  readonly kind = 'test-recording';

  constructor(
    private readonly db: Db,
    private readonly rolloutId: string,
    private readonly spec: AdapterSpec,
  ) {}

  async reconcile(): Promise<void> {
    await this.db
      .collection<{ _id: string; share: number }>('test_router_state')
      .updateOne({ _id: this.rolloutId }, { $setOnInsert: { share: 0 } }, { upsert: true });
  }

  private async failIfBroken(): Promise<void> {
    const broken = await this.db
      .collection<{ _id: string; fault: RouterFault | null }>('test_router_faults')
      .findOne({ _id: this.rolloutId });
    if (broken?.fault === 'refused-token')
      throw new ValidationError([{ field: 'router.tokenEnv', rule: 'the test router refused the token' }]);
    if (broken?.fault === 'down') throw new RouterUnavailableError('test router is down');
  }

  async setCanaryWeight(share: number): Promise<void> {
    await this.failIfBroken();
    const limit = this.spec.unavailableAbove;
    if (typeof limit === 'number' && share > limit)
      throw new RouterUnavailableError(`test router refuses ${share} % (> ${limit})`);
    await this.db
      .collection<WeightDocument>('test_router_weights')
      .insertOne({ rolloutId: this.rolloutId, share, at: new Date() });
    await this.db
      .collection<{ _id: string; share: number }>('test_router_state')
      .updateOne({ _id: this.rolloutId }, { $set: { share } }, { upsert: true });
  }

  async getCanaryWeight(): Promise<number> {
    const state = await this.db
      .collection<{ _id: string; share: number }>('test_router_state')
      .findOne({ _id: this.rolloutId });
    return state?.share ?? 0;
  }

  async verify(share: number): Promise<void> {
    const applied = await this.getCanaryWeight();
    if (!sameShare(applied, share))
      throw new WeightMismatchError(`test router applies ${applied} %, expected ${share} %`);
  }

  async finalize(outcome: 'promoted' | 'rolled_back'): Promise<void> {
    await this.failIfBroken();
    await this.db
      .collection<{ _id: string; outcome: string }>('test_router_final')
      .updateOne({ _id: this.rolloutId }, { $set: { outcome } }, { upsert: true });
  }

  async close(): Promise<void> {}
}

export async function appliedWeights(db: Db, rolloutId: string): Promise<number[]> {
  const documents = await db
    .collection<WeightDocument>('test_router_weights')
    .find({ rolloutId })
    .sort({ at: 1, _id: 1 })
    .toArray();
  return documents.map((document) => document.share);
}

/** Alerts kept by idempotency key: a retried notify overwrites, `deliveries` counts attempts. */
export class RecordingAlerts {
  constructor(private readonly db: Db) {}

  async dispatch(event: AlertEvent): Promise<void> {
    await this.db
      .collection<AlertEvent & { _id: string; deliveries: number }>('test_alerts')
      .updateOne({ _id: event.key }, { $set: event, $inc: { deliveries: 1 } }, { upsert: true });
  }
}

export async function recordedAlerts(
  db: Db,
  rolloutId: string,
): Promise<(AlertEvent & { deliveries: number })[]> {
  return db
    .collection<AlertEvent & { _id: string; deliveries: number }>('test_alerts')
    .find({ rolloutId })
    .sort({ at: 1 })
    .toArray();
}

export function testDeps(db: Db, options: { honourProbeDuration?: boolean } = {}): ActivityDeps {
  const store = new RolloutStore(db);
  return {
    profiles: {
      select: async ({ sampleSize }) => ({
        profileIds: Array.from({ length: Math.min(sampleSize, 5) }, (_, i) => `user-${i + 1}`),
        mix: { 'device:desktop': 0.6, 'device:mobile': 0.4 },
      }),
    },
    prober: new SleepingProber({ honourDuration: options.honourProbeDuration ?? true }),
    metrics: { collect: async () => ({ samples: 0, sources: ['test'], missing: [] }) },
    analyzer: new ScriptedAnalyzer(db),
    routers: { routerFor: (rolloutId, spec) => new RecordingRouter(db, rolloutId, spec) },
    alerts: new RecordingAlerts(db),
    ticks: store,
    // A worker without a policy file: loopback endpoints and CANARY_* secret names only.
    workerPolicy: emptyWorkerPolicy('development'),
  };
}
