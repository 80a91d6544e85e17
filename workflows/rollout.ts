/**
 * The rollout workflow: one durable execution per deployment. Every interval it probes baseline
 * and canary, gets a verdict, lets the pure policy choose the canary's share, applies it, records
 * the tick and alerts. The body is glue: decisions live in RolloutState and the policy.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  workflowInfo,
  type ActivityOptions,
  type LocalActivityOptions,
} from '@temporalio/workflow';
import type { ProbeActivities, RolloutActivities } from '../activities';
import { inconclusive, type Verdict } from '../rollout/verdict';
import {
  pauseSignal,
  promoteSignal,
  resumeSignal,
  rollbackSignal,
  setPolicyUpdate,
  statusQuery,
  type ControlRequest,
} from '../rollout/messages';
import type { PolicyDecision } from './policy';
import { RolloutState } from './rollout-state';
import { mergePolicy } from '../rollout/spec';
import type {
  AlertEvent,
  Investigation,
  ProbeSummary,
  RolloutInput,
  RolloutResult,
  TickRecord,
} from '../rollout/types';
import { mergeProbeSummaries } from './probe-summary';

/**
 * Probes run for the spec's duration and heartbeat; a lost worker is noticed within the heartbeat
 * timeout, and a probe queue nobody serves (a typo, loadgen workers down) within a minute, which
 * makes the tick inconclusive instead of waiting for ever.
 */
export function probeOptionsFor(probeDurationMs: number): ActivityOptions {
  return {
    scheduleToStartTimeout: '1 minute',
    startToCloseTimeout: probeDurationMs + 5 * 60_000,
    heartbeatTimeout: '15 seconds',
    retry: { maximumAttempts: 3, initialInterval: '1 second', nonRetryableErrorTypes: ['ValidationError'] },
  };
}

/**
 * Collecting, analysing and recording are short and run where the workflow runs: as local
 * activities they cost no round trip through the server, which keeps many concurrent rollouts
 * on schedule (see bench:workflow). They are still recorded in history and retried.
 */
export const analysisOptions: LocalActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3, initialInterval: '1 second', nonRetryableErrorTypes: ['ValidationError'] },
};

/** Drawing the sample reads the whole matching population once; on FerretDB 100k profiles take ~30 s. */
export const lookupOptions: LocalActivityOptions = { ...analysisOptions, startToCloseTimeout: '5 minutes' };

/** About 15 s of retries, then the rollout pauses for a person instead of guessing. */
export const routingOptions: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: {
    maximumAttempts: 5,
    initialInterval: '1 second',
    maximumInterval: '8 seconds',
    nonRetryableErrorTypes: ['ValidationError'],
  },
};

/**
 * Final routing of runs recorded before 'final-routing-until-done': a ValidationError is
 * non-retryable there, whatever this says, so those runs could fail with the canary left in place.
 */
export const finalRoutingOptions: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
};

/**
 * One try at final routing; the workflow itself tries again on a durable timer until it works,
 * whatever the error (a ValidationError here is the worker's environment or the router's
 * configuration, e.g. a rotated token, which an operator can fix while it retries).
 */
export const finalRoutingAttemptOptions: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: {
    maximumAttempts: 3,
    initialInterval: '1 second',
    maximumInterval: '4 seconds',
    nonRetryableErrorTypes: ['ValidationError'],
  },
};

/**
 * Between tries at the end, the workflow waits from a tick interval (at most 1 s), doubling up to
 * four intervals (at least 1 s, at most a minute): short ticks retry quickly, long ones not too often.
 */
export function finalRetryWaitMs(intervalMs: number, failures: number): number {
  const cap = Math.min(60_000, Math.max(1000, 4 * intervalMs));
  return Math.min(cap, Math.min(1000, intervalMs) * 2 ** Math.min(failures, 16));
}

/** Reading the router's weight back each tick; a router that does not answer is tried next tick. */
export const readWeightOptions: ActivityOptions = {
  startToCloseTimeout: '15 seconds',
  retry: { maximumAttempts: 2, initialInterval: '1 second', nonRetryableErrorTypes: ['ValidationError'] },
};

export const recordOptions: LocalActivityOptions = {
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 10, initialInterval: '500 milliseconds', maximumInterval: '10 seconds' },
};

/**
 * A tick record the store does not take within a few seconds is kept in the workflow and tried
 * again on the next tick (the store overwrites by rollout and tick): a store outage costs each
 * tick one short try, never the loop.
 */
export const bufferedRecordOptions: LocalActivityOptions = {
  startToCloseTimeout: '3 seconds',
  retry: { maximumAttempts: 1 },
};

export const notifyOptions: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: {
    maximumAttempts: 8,
    initialInterval: '2 seconds',
    maximumInterval: '1 minute',
    nonRetryableErrorTypes: ['ValidationError'],
  },
};

/** How long a rollout that ends or continues as new waits for its last alerts to be delivered. */
const ALERT_DRAIN_TIMEOUT = '1 minute';

const lookup = proxyLocalActivities<RolloutActivities>(lookupOptions);
const analysis = proxyLocalActivities<RolloutActivities>(analysisOptions);
const routing = proxyActivities<RolloutActivities>(routingOptions);
const finalRouting = proxyActivities<RolloutActivities>(finalRoutingOptions);
const finalRoutingAttempt = proxyActivities<RolloutActivities>(finalRoutingAttemptOptions);
const reading = proxyActivities<RolloutActivities>(readWeightOptions);
const recording = proxyLocalActivities<RolloutActivities>(recordOptions);
const bufferedRecording = proxyLocalActivities<RolloutActivities>(bufferedRecordOptions);
const alerting = proxyActivities<RolloutActivities>(notifyOptions);

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `${error.message}${cause}`;
  }
  return String(error);
}

export async function rolloutWorkflow(input: RolloutInput): Promise<RolloutResult> {
  const { spec } = input;
  const rolloutId = workflowInfo().workflowId;
  const state = new RolloutState(rolloutId, spec, Date.now(), input.carryOver);
  const pendingAlerts: Promise<void>[] = [];
  let alertsInFlight = 0;
  /** The router was found serving another share than applied, and is not yet repaired. */
  let drifting = false;
  let tickScope: CancellationScope | null = null;

  const decideNow = (kind: 'promote' | 'rollback', request: ControlRequest | undefined, fallback: string) => {
    state.requestDecision({ kind, reason: `${request?.reason ?? fallback} (${request?.by ?? 'unknown'})` });
    tickScope?.cancel(); // a person's decision does not wait for the running probe
  };
  // Descriptions show in the Temporal UI, where people can send these signals too.
  setHandler(
    pauseSignal,
    (request) => state.pause(`${request?.reason ?? 'paused by a person'} (${request?.by ?? 'unknown'})`),
    { description: 'Hold the canary at its share. Payload: {"by": "you", "reason": "why"}' },
  );
  setHandler(resumeSignal, (request) => state.resume(request?.by ?? 'unknown'), {
    description: 'Continue a paused rollout. Payload: {"by": "you"}',
  });
  setHandler(rollbackSignal, (request) => decideNow('rollback', request, 'rolled back by a person'), {
    description: 'Take the canary out of real traffic now. Payload: {"by": "you", "reason": "why"}',
  });
  setHandler(promoteSignal, (request) => decideNow('promote', request, 'promoted by a person'), {
    description: 'Give the canary all traffic now. Payload: {"by": "you", "reason": "why"}',
  });
  setHandler(statusQuery, () => state.status(), {
    description: 'Phase, share, verdicts, investigations, policy',
  });
  setHandler(
    setPolicyUpdate,
    (patch) => {
      state.policy = mergePolicy(state.policy, patch);
      state.note(`policy changed: ${JSON.stringify(patch)}`);
      return state.policy;
    },
    {
      validator: (patch) => void mergePolicy(state.policy, patch),
      description: 'Change policy fields at run time, e.g. {"stepUp": 2}; bad input is rejected',
    },
  );

  const alert = (
    kind: AlertEvent['kind'],
    severity: AlertEvent['severity'],
    summary: string,
    extra: Partial<AlertEvent> = {},
  ) => {
    const event: AlertEvent = {
      key: state.alertKey(kind),
      rolloutId,
      service: spec.service,
      version: spec.version,
      kind,
      severity,
      tick: state.tick,
      summary,
      anomalies: [],
      shareBefore: state.share,
      shareAfter: state.share,
      links: spec.links,
      at: Date.now(),
      ...extra,
    };
    // Alerts must not hold up the rollout: they are awaited (at most a minute) only before it ends
    // or continues as new.
    alertsInFlight++;
    pendingAlerts.push(
      alerting
        .notify({ event, sinks: spec.alerts.sinks })
        .catch((error: unknown) => {
          log.warn('alert not delivered', { key: event.key, error: describe(error) });
        })
        .finally(() => alertsInFlight--),
    );
  };

  /**
   * Before ending or continuing as new, give the last alerts a bounded time: a sink that is down
   * (notify retries for minutes) must not hold the rollout, or a person's decision, that long.
   */
  const drainAlerts = async (): Promise<void> => {
    if (!patched('bounded-alert-drain')) {
      await Promise.all(pendingAlerts);
      return;
    }
    if (alertsInFlight > 0 && !(await condition(() => alertsInFlight === 0, ALERT_DRAIN_TIMEOUT)))
      log.warn('leaving alerts undelivered', { rolloutId, alerts: alertsInFlight });
  };

  /** Applies the policy's share; on failure the rollout pauses with the reason rather than guess. */
  const applyShare = async (share: number, options: { quiet?: boolean } = {}): Promise<boolean> => {
    try {
      const applied = await routing.setCanaryWeight({
        rolloutId,
        router: spec.router,
        targets: spec.targets,
        share,
      });
      state.appliedShare = applied.share;
      return true;
    } catch (error) {
      if (isCancellation(error)) throw error;
      const reason = `routing failed while setting ${share} %: ${describe(error)}; resume to retry, or roll back`;
      state.pause(reason);
      if (!options.quiet) alert('routing_failed', 'critical', reason);
      return false;
    }
  };

  /**
   * Reads the router's weight back; if it serves another share than the one applied (HAProxy
   * restarted from its config, the proxy lost its state, someone edited it), applies it again and
   * alerts once per episode. A failed repair pauses the rollout like any failed routing change.
   */
  const repairDrift = async (): Promise<void> => {
    const applied = state.appliedShare;
    if (applied === null) return;
    let served: number;
    try {
      ({ share: served } = await reading.readCanaryWeight({
        rolloutId,
        router: spec.router,
        targets: spec.targets,
      }));
    } catch (error) {
      if (isCancellation(error)) throw error;
      log.warn('router weight not read back', { rolloutId, error: describe(error) });
      return;
    }
    if (Math.abs(served - applied) <= 0.01) {
      drifting = false;
      return;
    }
    const firstInEpisode = !drifting;
    drifting = true;
    if (firstInEpisode) {
      const summary = `router ${spec.router.kind} serves ${served} % to the canary, ${applied} % was applied; applying ${applied} % again`;
      state.note(`drift at tick ${state.tick}: ${summary}`);
      alert('drift', 'critical', summary, { shareBefore: served, shareAfter: applied });
    }
    if (await applyShare(applied, { quiet: !firstInEpisode })) {
      drifting = false;
      state.note(`drift repaired: the router serves ${applied} % again`);
    }
  };

  const historyIsLong = (): boolean => {
    const info = workflowInfo();
    return info.historyLength >= spec.maxHistoryEvents || info.continueAsNewSuggested;
  };

  const prober = proxyActivities<ProbeActivities>({
    ...probeOptionsFor(spec.probe.durationMs),
    ...(spec.probe.taskQueue ? { taskQueue: spec.probe.taskQueue } : {}),
  });

  const runTick = async (): Promise<void> => {
    const tick = state.tick + 1;
    const scheduledAt = state.nextTickAt;
    const startedAt = Date.now();
    state.observeTickStart(scheduledAt, startedAt);
    const regime = state.enterRegime(tick);
    let verdict: Verdict;
    let probe: ProbeSummary | null = null;
    const scope = new CancellationScope();
    tickScope = scope;
    try {
      const result = await scope.run(async () => {
        const request = {
          rolloutId,
          tick,
          targets: spec.targets,
          profileIds: state.profiles.profileIds,
          durationMs: spec.probe.durationMs,
          concurrency: spec.probe.concurrency,
          seed: spec.profiles.seed + tick,
          timeScale: spec.probe.timeScale,
        };
        const shards = spec.probe.shards ?? 1;
        const summary =
          shards === 1
            ? await prober.probe(request)
            : await CancellationScope.cancellable(async () => {
                try {
                  return mergeProbeSummaries(
                    await Promise.all(
                      Array.from({ length: shards }, (_, index) =>
                        prober.probe({ ...request, shard: { index, count: shards } }),
                      ),
                    ),
                  );
                } catch (error) {
                  // One shard failed: the others would keep loading the targets into the next tick.
                  CancellationScope.current().cancel();
                  throw error;
                }
              });
        const window = { from: summary.startedAt, to: summary.endedAt };
        await analysis.collectMetrics({
          rolloutId,
          tick,
          window,
          targets: spec.targets,
          router: spec.router,
          analysis: spec.analysis,
        });
        const analysed = await analysis.analyze({
          rolloutId,
          tick,
          analysis: spec.analysis,
          state: state.analysisState,
          // Recorded histories analysed the whole rollout as one regime: they replay that way.
          ...(patched('analysis-regimes') ? { regime } : {}),
          ...(state.profiles.actions ? { actions: state.profiles.actions } : {}),
        });
        return { summary, analysed };
      });
      probe = result.summary;
      verdict = result.analysed.verdict;
      state.analysisState = result.analysed.state;
    } catch (error) {
      if (isCancellation(error)) {
        if (state.pendingDecision) return; // a person decided while the tick ran
        throw error; // the workflow itself was cancelled: abort below
      }
      verdict = inconclusive(`no verdict this tick: ${describe(error)}`);
    } finally {
      tickScope = null;
    }

    const { decision, investigation } = state.applyVerdict(tick, verdict, Date.now());
    if (!state.decided && decision.shareAfter !== state.appliedShare) await applyShare(decision.shareAfter);
    else if (!state.decided && patched('drift-repair')) await repairDrift();
    await record(tick, scheduledAt, startedAt, decision, verdict, probe, investigation);
    if (investigation) {
      alert(
        'anomaly',
        'warning',
        `${decision.reason}: ${investigation.anomalies.map((a) => a.summary).join('; ')}`,
        {
          anomalies: investigation.anomalies,
          shareBefore: decision.shareBefore,
          shareAfter: decision.shareAfter,
        },
      );
    } else if (decision.recovered) {
      alert('resolved', 'info', `recovered from the last anomaly: ${decision.reason}`);
    }
    if (decision.pause) alert('paused', 'warning', decision.pause);
    state.scheduleNextTick(scheduledAt, Date.now());
  };

  const record = async (
    tick: number,
    scheduledAt: number,
    startedAt: number,
    decision: PolicyDecision,
    verdict: Verdict,
    probe: ProbeSummary | null,
    investigation: Investigation | null,
  ): Promise<void> => {
    const entry: TickRecord = {
      rolloutId,
      tick,
      scheduledAt,
      startedAt,
      finishedAt: Date.now(),
      phase: state.phase,
      verdict,
      action: decision.action,
      shareBefore: decision.shareBefore,
      shareAfter: decision.shareAfter,
      reason: decision.reason,
      probe,
      investigation,
    };
    if (patched('buffered-tick-records')) {
      state.keepUnrecorded(entry);
      await flushTickRecords();
      return;
    }
    try {
      await recording.recordTick(entry);
    } catch (error) {
      if (isCancellation(error)) throw error;
      state.note(`tick ${tick} not recorded in the store: ${describe(error)}`);
    }
  };

  /** Writes the kept tick records, oldest first; stops at the first the store does not take. */
  const flushTickRecords = async (): Promise<boolean> => {
    for (;;) {
      const next = state.unrecordedTicks[0];
      if (!next) return true;
      try {
        await bufferedRecording.recordTick(next);
      } catch (error) {
        if (isCancellation(error)) throw error;
        log.warn('tick records kept for later: the store did not take them', {
          rolloutId,
          ticks: state.unrecordedTicks.length,
          error: describe(error),
        });
        return false;
      }
      state.recorded(next.tick);
    }
  };

  /**
   * The end of a rollout may not be given up: tries `attempt` until it works, waiting on a
   * durable timer (finalRetryWaitMs) and continuing as new if history grows long.
   */
  const untilDone = async (attempt: () => Promise<boolean>): Promise<void> => {
    for (let failures = 0; !(await attempt()); failures++) {
      await sleep(finalRetryWaitMs(spec.intervalMs, failures));
      if (historyIsLong()) {
        await condition(allHandlersFinished);
        await drainAlerts();
        log.info('continuing as new while finishing', { rolloutId, tick: state.tick });
        await continueAsNew<typeof rolloutWorkflow>({
          spec: { ...spec, policy: state.policy },
          carryOver: state.carryOver(),
        });
      }
    }
  };

  /**
   * Leaves the canary at 0 % or 100 % whatever it takes: a critical routing_failed alert opens the
   * episode, a resolved alert closes it when routing works again.
   */
  const settleFinalRouting = async (outcome: 'promoted' | 'rolled_back'): Promise<void> => {
    const share = outcome === 'promoted' ? 100 : 0;
    let failing = false;
    await untilDone(async () => {
      try {
        await finalRoutingAttempt.setCanaryWeight({
          rolloutId,
          router: spec.router,
          targets: spec.targets,
          share,
        });
        state.appliedShare = share;
        await finalRoutingAttempt.finalizeRouting({
          rolloutId,
          router: spec.router,
          targets: spec.targets,
          outcome,
        });
      } catch (error) {
        if (isCancellation(error)) throw error;
        if (!failing) {
          failing = true;
          const reason = `final routing to ${share} % failed: ${describe(error)}; retrying until it works`;
          state.note(reason);
          alert('routing_failed', 'critical', reason, { shareAfter: share });
        }
        return false;
      }
      if (failing) {
        state.note(`final routing works again: the canary is at ${share} %`);
        alert('resolved', 'info', `routing works again: the canary is at ${share} %`, { shareAfter: share });
      }
      return true;
    });
  };

  const finish = async (): Promise<RolloutResult> => {
    const outcome = state.policyState.phase === 'promoted' ? 'promoted' : 'rolled_back';
    const routingOutcome = state.outcome === 'aborted' ? 'rolled_back' : outcome;
    if (patched('final-routing-until-done')) {
      await settleFinalRouting(routingOutcome);
      await untilDone(flushTickRecords);
      return ended(outcome);
    }
    await finalRouting.setCanaryWeight({
      rolloutId,
      router: spec.router,
      targets: spec.targets,
      share: routingOutcome === 'promoted' ? 100 : 0,
    });
    state.appliedShare = routingOutcome === 'promoted' ? 100 : 0;
    await finalRouting.finalizeRouting({
      rolloutId,
      router: spec.router,
      targets: spec.targets,
      outcome: routingOutcome,
    });
    return ended(outcome);
  };

  const ended = async (outcome: 'promoted' | 'rolled_back'): Promise<RolloutResult> => {
    state.outcome ??= outcome;
    const last = state.reasons[state.reasons.length - 1] ?? state.outcome;
    alert(
      state.outcome,
      state.outcome === 'promoted' ? 'info' : 'critical',
      `${spec.service} ${spec.version} ${state.outcome}: ${last}`,
    );
    await drainAlerts();
    log.info('rollout finished', { rolloutId, outcome: state.outcome, ticks: state.tick });
    return state.result();
  };

  /** A spec that reaches what the worker's operator does not allow fails before anything is touched. */
  const checkWorkerPolicy = async (): Promise<void> => {
    try {
      await analysis.checkWorkerPolicy({ spec });
    } catch (error) {
      if (isCancellation(error)) throw error;
      const refusal = error instanceof Error && error.cause instanceof Error ? error.cause : error;
      throw ApplicationFailure.nonRetryable(describe(refusal), 'WorkerPolicyViolation');
    }
  };

  try {
    if (!input.carryOver) {
      if (patched('worker-policy-check')) await checkWorkerPolicy();
      state.profiles = await lookup.lookupProfiles({
        rolloutId,
        criteria: spec.profiles.criteria,
        sampleSize: spec.profiles.sampleSize,
        seed: spec.profiles.seed,
      });
      await applyShare(0); // routing objects exist and the canary gets no real traffic yet
    }

    for (;;) {
      // An aborted rollout that continued as new while finishing only finishes.
      if (state.applyPendingDecision() || state.decided || state.finished) break;
      setCurrentDetails(state.details());
      if (state.pausedReason !== null) {
        const woken = () => state.pausedReason === null || state.pendingDecision !== null;
        // A paused rollout still watches the router once per interval (drift, kept tick records).
        let watched = false;
        if (!patched('drift-repair')) await condition(woken);
        else if (!(await condition(woken, spec.intervalMs))) {
          await repairDrift();
          if (state.unrecordedTicks.length > 0) await flushTickRecords();
          watched = true;
        }
        if (!watched) {
          if (state.pendingDecision) continue;
          if (state.appliedShare !== state.share && !(await applyShare(state.share))) continue;
          state.nextTickAt = Date.now();
          continue;
        }
        // A long pause continues as new like ticks do, so its history stays bounded.
        if (!historyIsLong()) continue;
      } else {
        const wait = state.waitForNextTick(Date.now());
        if (
          wait > 0 &&
          (await condition(() => state.pendingDecision !== null || state.pausedReason !== null, wait))
        )
          continue;
        await runTick();
        if (state.decided || state.pendingDecision) continue;
      }
      const info = workflowInfo();
      if (historyIsLong()) {
        await condition(allHandlersFinished);
        await drainAlerts();
        // A rollback or promote that arrived while waiting is decided here, not lost in the new run.
        if (state.pendingDecision) continue;
        log.info('continuing as new', { rolloutId, tick: state.tick, historyLength: info.historyLength });
        return await continueAsNew<typeof rolloutWorkflow>({
          spec: { ...spec, policy: state.policy },
          carryOver: state.carryOver(),
        });
      }
    }
    return await finish();
  } catch (error) {
    if (!isCancellation(error)) throw error;
    // The workflow itself was cancelled: take the canary out of real traffic, then report aborted.
    return await CancellationScope.nonCancellable(async () => {
      state.outcome = 'aborted';
      state.note('aborted: the workflow was cancelled');
      return finish();
    });
  }
}
