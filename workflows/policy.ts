/**
 * The traffic policy: given the last tick's verdict, what share of real traffic the canary
 * gets next. Pure and deterministic; the workflow calls it, property tests exercise it.
 *
 * The seed's algorithm: start at `initialShare`, +`stepUp` per clean tick, -`stepDown` at
 * once per anomalous tick, within [0, 100]. Around it:
 * - probing: real traffic moves only after `probingTicks` clean ticks at 0 %;
 * - severity: a critical metric, or an anomaly whose lower bound is beyond its metric's severe
 *   ratio, rolls back at once instead of stepping down;
 * - hysteresis: after a cut, the share rises again only on a verdict that proves health in the
 *   regime the cut started (upper bound below 1 + tolerance), so the band between "proven worse"
 *   and "proven within tolerance" is where the share holds; `maxRecoveryTicks` ticks without
 *   proof pause for a person. Verdicts that cannot prove health (engines and histories from
 *   before proof existed) fall back to `recoveryTicks` clean ticks in a row since the cut;
 * - cooldown: for `cooldownTicks` ticks after a cut the share stays below the level that was cut,
 *   so a canary that breaks at 20 % does not bounce between 15 % and 20 %; then raises stop at
 *   that level once (a retry), and `maxCutsAtLevel` cuts at one level pause or roll back
 *   (`onRepeatedCuts`): the canary fails under that load;
 * - ordinary raises need a clean tick, or proof of health with `raiseRequires: proof`;
 * - inconclusive ticks never raise the share, and too many in a row pause for a person;
 * - rollback on `maxAnomalies` within `anomalyWindowTicks`, or when cuts drive the share to 0;
 *   promotion on reaching `promoteAt`.
 * Policy fields added with proof and levels are absent in rollouts started before them: each
 * rule that reads one then behaves as before.
 */
import type { Anomaly, VerdictStatus } from '../rollout/verdict';
import type { TrafficPolicy } from '../rollout/spec';
import type { PolicyAction, PolicyPhase, PolicyState } from '../rollout/types';

export interface TickInput {
  tick: number;
  status: VerdictStatus;
  /** A critical metric failed: roll back at once. */
  critical: boolean;
  /** The worst anomaly beyond its metric's severe ratio, if any: roll back at once. */
  severe?: SevereAnomaly | null;
  /**
   * The verdict proves the canary within tolerance in the current regime; undefined when the
   * engine cannot prove health (older engines and recorded histories).
   */
  healthProven?: boolean;
  /** A person paused the rollout while this tick ran: it may cut the share but not raise it. */
  holdRaises?: boolean;
}

export type SevereAnomaly = Pick<Anomaly, 'metric' | 'action' | 'effect' | 'interval'>;

export interface PolicyDecision {
  state: PolicyState;
  action: PolicyAction;
  shareBefore: number;
  shareAfter: number;
  reason: string;
  /** Set when the rollout should wait for a person (policy limit), with why. */
  pause: string | null;
  /** The first raise after a cut: the canary recovered from the last anomaly. */
  recovered: boolean;
}

export function initialPolicyState(): PolicyState {
  return {
    phase: 'probing',
    share: 0,
    tick: 0,
    cleanStreak: 0,
    inconclusiveStreak: 0,
    recovering: false,
    ceiling: null,
    anomalyTicks: [],
  };
}

export function isTerminal(phase: PolicyPhase): phase is 'promoted' | 'rolled_back' {
  return phase === 'promoted' || phase === 'rolled_back';
}

/** Shares are kept to two decimals so fractional steps do not accumulate float noise. */
function roundShare(share: number): number {
  return Math.min(100, Math.max(0, Math.round(share * 100) / 100));
}

export function nextTrafficShare(
  policy: TrafficPolicy,
  previous: PolicyState,
  input: TickInput,
): PolicyDecision {
  const shareBefore = previous.share;
  const decide = (
    state: PolicyState,
    action: PolicyAction,
    reason: string,
    pause: string | null = null,
  ): PolicyDecision => ({
    state,
    action,
    shareBefore,
    shareAfter: state.share,
    reason,
    pause,
    recovered: previous.recovering && action === 'raise',
  });

  if (isTerminal(previous.phase))
    return decide({ ...previous, tick: input.tick }, 'hold', `rollout already ${previous.phase}`);

  const anomalyTicks = previous.anomalyTicks.filter((t) => t > input.tick - policy.anomalyWindowTicks);
  const ceiling = previous.ceiling && input.tick < previous.ceiling.untilTick ? previous.ceiling : null;
  const base: PolicyState = { ...previous, tick: input.tick, anomalyTicks, ceiling };

  if (input.status === 'anomalous') {
    anomalyTicks.push(input.tick);
    const state: PolicyState = { ...base, cleanStreak: 0, inconclusiveStreak: 0 };
    if (input.critical) return decide(rolledBack(state), 'rollback', 'a critical metric failed');
    if (input.severe) return decide(rolledBack(state), 'rollback', describeSevere(input.severe));
    if (anomalyTicks.length >= policy.maxAnomalies) {
      return decide(
        rolledBack(state),
        'rollback',
        `${anomalyTicks.length} anomalous ticks within ${policy.anomalyWindowTicks} ticks (limit ${policy.maxAnomalies})`,
      );
    }
    if (state.phase === 'probing') return decide(state, 'hold', 'anomaly while probing at 0 % real traffic');
    const share = roundShare(shareBefore - policy.stepDown);
    if (share <= 0)
      return decide(rolledBack(state), 'rollback', `anomaly cut the share from ${shareBefore} % to 0 %`);
    const reason = `anomaly: cut by ${policy.stepDown} from ${shareBefore} % to ${share} %`;
    const cut: PolicyState = {
      ...state,
      share,
      recovering: true,
      ticksWithoutProof: 0,
      ceiling:
        policy.cooldownTicks > 0
          ? { share: shareBefore, untilTick: input.tick + policy.cooldownTicks }
          : null,
    };
    if (policy.maxCutsAtLevel === undefined) return decide(cut, 'reduce', reason);
    // The same load failing again and again is not chance: a person, or a rollback, decides.
    const cutLevels = countCut(previous.cutLevels ?? [], shareBefore);
    const counted: PolicyState = { ...cut, cutLevels };
    const limit = policy.maxCutsAtLevel;
    const reached = cutLevels.find((level) => level.share <= shareBefore && level.cuts >= limit);
    if (!reached) return decide(counted, 'reduce', reason);
    const repeated = `${reached.cuts} cuts at or above ${reached.share} % (maxCutsAtLevel ${limit}): the canary fails under the load of that share`;
    if (policy.onRepeatedCuts === 'rollback') return decide(rolledBack(state), 'rollback', repeated);
    return decide(counted, 'reduce', reason, `${repeated}; investigate, then resume, promote or roll back`);
  }

  // Every tick after a cut that does not prove health counts toward maxRecoveryTicks.
  const ticksWithoutProof = base.recovering ? (base.ticksWithoutProof ?? 0) + 1 : base.ticksWithoutProof;
  if (input.status === 'inconclusive') {
    const inconclusiveStreak = base.inconclusiveStreak + 1;
    const state: PolicyState = {
      ...base,
      cleanStreak: 0,
      inconclusiveStreak,
      ...(ticksWithoutProof === undefined ? {} : { ticksWithoutProof }),
    };
    if (inconclusiveStreak >= policy.maxInconclusiveTicks) {
      return decide(
        { ...state, inconclusiveStreak: 0 },
        'hold',
        'inconclusive tick: share held',
        `${inconclusiveStreak} inconclusive ticks in a row: not enough data to judge the canary`,
      );
    }
    return decide(state, 'hold', 'inconclusive tick: share held');
  }

  const state: PolicyState = { ...base, cleanStreak: base.cleanStreak + 1, inconclusiveStreak: 0 };
  const unproven = input.healthProven === false;
  // Proof of health at a share clears the levels cut at or below it: that load is fine after all.
  if (state.cutLevels && input.healthProven === true)
    state.cutLevels = state.cutLevels.filter((level) => level.share > shareBefore);
  if (state.phase === 'probing') {
    if (state.cleanStreak < policy.probingTicks) {
      return decide(
        state,
        'hold',
        `probing: ${state.cleanStreak} of ${policy.probingTicks} clean ticks at 0 %`,
      );
    }
    if (input.holdRaises)
      return decide(state, 'hold', 'probing passed; paused: real traffic waits for resume');
    if (policy.raiseRequires === 'proof' && unproven)
      return decide(
        state,
        'hold',
        'probing passed; real traffic waits for proof of health (raiseRequires: proof)',
      );
    const share = roundShare(Math.min(policy.initialShare, policy.promoteAt));
    if (share >= policy.promoteAt) return decide(promoted(state), 'promote', `reached ${policy.promoteAt} %`);
    return decide(
      { ...state, phase: 'progressing', share },
      'start',
      `probing passed: real traffic starts at ${share} %`,
    );
  }
  if (state.recovering && input.healthProven !== undefined) {
    // Hysteresis with proof: a cut is undone only by evidence of health at the lower share.
    if (unproven) {
      const waited = ticksWithoutProof ?? 1;
      const held = `hysteresis: held at ${shareBefore} % until a verdict proves health (${waited} tick${waited === 1 ? '' : 's'} without proof)`;
      if (policy.maxRecoveryTicks !== undefined && waited >= policy.maxRecoveryTicks) {
        return decide(
          { ...state, ticksWithoutProof: 0 },
          'hold',
          held,
          `${waited} ticks after the cut without proof of health (maxRecoveryTicks ${policy.maxRecoveryTicks})`,
        );
      }
      return decide({ ...state, ticksWithoutProof: waited }, 'hold', held);
    }
  } else if (state.recovering) {
    // Hysteresis without proof: hold until the last recoveryTicks ticks before this one were clean.
    const cleanBefore = state.cleanStreak - 1;
    if (cleanBefore < policy.recoveryTicks) {
      return decide(
        state,
        'hold',
        `hysteresis: held, ${cleanBefore + 1} of ${policy.recoveryTicks} clean ticks in a row since the cut`,
      );
    }
  } else if (policy.raiseRequires === 'proof' && unproven) {
    return decide(
      state,
      'hold',
      `clean but not proven healthy: held at ${shareBefore} % (raiseRequires: proof)`,
    );
  }
  if (input.holdRaises) return decide(state, 'hold', `paused: held at ${shareBefore} %`);
  const wanted = roundShare(Math.min(shareBefore + policy.stepUp, policy.promoteAt));
  // After a cut the way up stops at the level that was cut: that share is retried on its own.
  const retryLevel = state.cutLevels?.find((level) => level.share > shareBefore && level.share < wanted);
  const share = retryLevel?.share ?? wanted;
  if (state.ceiling && share >= state.ceiling.share) {
    return decide(
      state,
      'hold',
      `cooldown: stays below ${state.ceiling.share} % until tick ${state.ceiling.untilTick}`,
    );
  }
  if (share >= policy.promoteAt) return decide(promoted(state), 'promote', `reached ${policy.promoteAt} %`);
  const raised: PolicyState = { ...state, share, recovering: false, ticksWithoutProof: 0 };
  // Without proof, passing a level is the best sign there is that its load is fine.
  if (state.cutLevels && input.healthProven === undefined)
    raised.cutLevels = state.cutLevels.filter((level) => level.share >= share);
  const why = state.recovering && input.healthProven ? 'proven healthy' : 'clean tick';
  const what = retryLevel ? `retrying ${share} %, the level that was cut` : `raised to ${share} %`;
  return decide(raised, 'raise', `${why}: ${what}`);
}

/**
 * Levels kept after a cut at `share`: a cut there is also a cut above every lower level (more
 * load than a level that already failed), so their counts go up too. The 10 lowest are kept.
 */
function countCut(
  levels: { share: number; cuts: number }[],
  share: number,
): { share: number; cuts: number }[] {
  const counted = levels.map((level) => (level.share <= share ? { ...level, cuts: level.cuts + 1 } : level));
  if (!levels.some((level) => level.share === share)) counted.push({ share, cuts: 1 });
  return counted.sort((a, b) => a.share - b.share).slice(0, 10);
}

function formatRatio(ratio: number): string {
  return ratio >= 10 ? ratio.toFixed(0) : ratio.toFixed(2);
}

/** Names the metric (and action) and how many times the baseline it is, with the interval's lower bound. */
export function describeSevere(anomaly: SevereAnomaly): string {
  const where = anomaly.action ? `${anomaly.action} ${anomaly.metric}` : anomaly.metric;
  return `severe regression: ${where} at ${formatRatio(1 + anomaly.effect)}x the baseline (at least ${formatRatio(1 + anomaly.interval[0])}x): rolled back at once`;
}

function rolledBack(state: PolicyState): PolicyState {
  return { ...state, phase: 'rolled_back', share: 0, ceiling: null, recovering: false };
}

function promoted(state: PolicyState): PolicyState {
  return { ...state, phase: 'promoted', share: 100, ceiling: null, recovering: false };
}

/** A person's decision overrides the policy: roll back or promote now. */
export function applyManualDecision(state: PolicyState, decision: 'promote' | 'rollback'): PolicyState {
  if (isTerminal(state.phase)) return state;
  return decision === 'promote' ? promoted(state) : rolledBack(state);
}
