/**
 * Thin, idempotent glue between the rollout workflow and the components. Every activity is
 * safe to retry: weights are set (not added), records and alerts are keyed by rollout + tick.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { ValidationError, type Json } from '../core/validation';
import { messageOf } from '../core/errors';
import type { AdapterSpec, RolloutSpec } from '../rollout/spec';
import type {
  AlertEvent,
  MetricsSummary,
  ProbeSummary,
  ProfileSelection,
  TickRecord,
} from '../rollout/types';
import type { Verdict } from '../rollout/verdict';
import { checkSpecAgainstWorkerPolicy } from '../rollout/worker-policy';
import type {
  AnalyzeRequest,
  CollectRequest,
  ProbeActivityDeps,
  ProbeRequest,
  RolloutActivityDeps,
} from './ports';

export type { ActivityDeps, ProbeActivityDeps, RolloutActivityDeps } from './ports';

export interface LookupProfilesInput {
  rolloutId: string;
  criteria: Record<string, Json>;
  sampleSize: number;
  seed: number;
}

export interface SetWeightInput {
  rolloutId: string;
  router: AdapterSpec;
  targets: RolloutSpec['targets'];
  share: number;
}

export type ReadWeightInput = Omit<SetWeightInput, 'share'>;

export interface FinalizeInput {
  rolloutId: string;
  router: AdapterSpec;
  targets: RolloutSpec['targets'];
  outcome: 'promoted' | 'rolled_back';
}

export interface CheckWorkerPolicyInput {
  spec: RolloutSpec;
}

export interface NotifyInput {
  event: AlertEvent;
  sinks: AdapterSpec[];
}

/** Bad input is not fixed by retrying: surface it as a non-retryable failure naming the field. */
async function failFastOnBadInput<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof ValidationError) {
      throw ApplicationFailure.nonRetryable(error.message, 'ValidationError', error.issues);
    }
    throw error;
  }
}

/** The activities a rollout runs on its own task queue, except the probe. */
export function createRolloutActivities(deps: RolloutActivityDeps) {
  return {
    /** Refuses, naming the field and the rule, a spec that reaches what this worker's policy does not list. */
    async checkWorkerPolicy(input: CheckWorkerPolicyInput): Promise<void> {
      return failFastOnBadInput(async () => checkSpecAgainstWorkerPolicy(input.spec, deps.workerPolicy));
    },

    async lookupProfiles(input: LookupProfilesInput): Promise<ProfileSelection> {
      return failFastOnBadInput(() => deps.profiles.select(input));
    },

    async collectMetrics(input: CollectRequest): Promise<MetricsSummary> {
      return failFastOnBadInput(() => deps.metrics.collect(input));
    },

    /**
     * The verdict, and for an anomalous one the blamed action's exemplars: fetched here, on the
     * activity side, so the workflow stays deterministic and issues no extra command. Exemplars
     * help a person; failing to find them must not cost the rollout its verdict.
     */
    async analyze(input: AnalyzeRequest): Promise<{ verdict: Verdict; state: Json }> {
      const result = await failFastOnBadInput(() => deps.analyzer.analyze(input));
      if (result.verdict.status !== 'anomalous' || !deps.exemplars) return result;
      try {
        return {
          ...result,
          verdict: await deps.exemplars.attach(input.rolloutId, input.tick, result.verdict),
        };
      } catch (error) {
        const reason = `no exemplars for this anomaly: ${messageOf(error)}`;
        return { ...result, verdict: { ...result.verdict, reasons: [...result.verdict.reasons, reason] } };
      }
    },

    /** Reconciles, sets, then reads back: a router that reports another share fails the attempt. */
    async setCanaryWeight(input: SetWeightInput): Promise<{ share: number }> {
      return failFastOnBadInput(async () => {
        const router = deps.routers.routerFor(input.rolloutId, input.router, input.targets);
        await router.reconcile();
        await router.setCanaryWeight(input.share);
        const applied = await router.getCanaryWeight();
        if (Math.abs(applied - input.share) > 0.01) {
          throw ApplicationFailure.retryable(
            `router ${router.kind} reports ${applied} % after setting ${input.share} %`,
            'WeightMismatchError',
          );
        }
        return { share: applied };
      });
    },

    /** The share the router applies now, read from the router itself (drift shows here). */
    async readCanaryWeight(input: ReadWeightInput): Promise<{ share: number }> {
      return failFastOnBadInput(async () => {
        const router = deps.routers.routerFor(input.rolloutId, input.router, input.targets);
        return { share: await router.getCanaryWeight() };
      });
    },

    async finalizeRouting(input: FinalizeInput): Promise<void> {
      return failFastOnBadInput(async () => {
        const router = deps.routers.routerFor(input.rolloutId, input.router, input.targets);
        await router.finalize(input.outcome);
      });
    },

    async recordTick(record: TickRecord): Promise<void> {
      await deps.ticks.recordTick(record);
    },

    async notify(input: NotifyInput): Promise<void> {
      return failFastOnBadInput(() => deps.alerts.dispatch(input.event, input.sinks));
    },
  };
}

/**
 * The probe, served by the rollout worker and by loadgen workers (a spec's probe.taskQueue);
 * it heartbeats and stops when the rollout cancels it.
 */
export function createProbeActivities({ prober }: ProbeActivityDeps) {
  return {
    async probe(input: ProbeRequest): Promise<ProbeSummary> {
      const context = Context.current();
      return failFastOnBadInput(() =>
        prober.probe(input, (details) => context.heartbeat(details), context.cancellationSignal),
      );
    },
  };
}

export type RolloutActivities = ReturnType<typeof createRolloutActivities>;
export type ProbeActivities = ReturnType<typeof createProbeActivities>;
