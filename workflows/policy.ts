/**
 * The traffic policy: given the last tick's verdict, what share of real traffic the canary
 * gets next. Pure and deterministic; the workflow calls it, property tests exercise it.
 *
 * The seed's algorithm: start at `initialShare`, +`stepUp` per clean tick, -`stepDown` at
 * once per anomalous tick, within [0, 100]. Around it:
 * - probing: real traffic moves only after `probingTicks` clean ticks at 0 %;
 * - hysteresis: after a cut, the share rises again only once `recoveryTicks` clean ticks in a row
 *   have passed since the last non-clean tick;
 * - cooldown: for `cooldownTicks` ticks after a cut the share stays below the level that was cut,
 *   so a canary that breaks at 20 % does not bounce between 15 % and 20 %;
 * - inconclusive ticks never raise the share, and too many in a row pause for a person;
 * - rollback on a critical anomaly, on `maxAnomalies` within `anomalyWindowTicks`, or when cuts
 *   drive the share to 0; promotion on reaching `promoteAt`.
 */
import type { VerdictStatus } from '../rollout/verdict';
import type { TrafficPolicy } from '../rollout/spec';
import type { PolicyAction, PolicyPhase, PolicyState } from '../rollout/types';

export interface TickInput {
  tick: number;
  status: VerdictStatus;
  /** A critical metric failed: roll back at once. */
  critical: boolean;
  /** A person paused the rollout while this tick ran: it may cut the share but not raise it. */
  holdRaises?: boolean;
}

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
    return decide(
      {
        ...state,
        share,
        recovering: true,
        ceiling:
          policy.cooldownTicks > 0
            ? { share: shareBefore, untilTick: input.tick + policy.cooldownTicks }
            : null,
      },
      'reduce',
      `anomaly: cut by ${policy.stepDown} from ${shareBefore} % to ${share} %`,
    );
  }

  if (input.status === 'inconclusive') {
    const inconclusiveStreak = base.inconclusiveStreak + 1;
    const state: PolicyState = { ...base, cleanStreak: 0, inconclusiveStreak };
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
    const share = roundShare(Math.min(policy.initialShare, policy.promoteAt));
    if (share >= policy.promoteAt) return decide(promoted(state), 'promote', `reached ${policy.promoteAt} %`);
    return decide(
      { ...state, phase: 'progressing', share },
      'start',
      `probing passed: real traffic starts at ${share} %`,
    );
  }
  // Hysteresis: after a cut, hold until the last recoveryTicks ticks before this one were clean.
  const cleanBefore = state.cleanStreak - 1;
  if (state.recovering && cleanBefore < policy.recoveryTicks) {
    return decide(
      state,
      'hold',
      `hysteresis: held, ${cleanBefore + 1} of ${policy.recoveryTicks} clean ticks in a row since the cut`,
    );
  }
  if (input.holdRaises) return decide(state, 'hold', `paused: held at ${shareBefore} %`);
  const share = roundShare(Math.min(shareBefore + policy.stepUp, policy.promoteAt));
  if (state.ceiling && share >= state.ceiling.share) {
    return decide(
      state,
      'hold',
      `cooldown: stays below ${state.ceiling.share} % until tick ${state.ceiling.untilTick}`,
    );
  }
  if (share >= policy.promoteAt) return decide(promoted(state), 'promote', `reached ${policy.promoteAt} %`);
  return decide({ ...state, share, recovering: false }, 'raise', `clean tick: raised to ${share} %`);
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
