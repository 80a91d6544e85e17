/**
 * Everything a rollout knows between ticks, and how signals and verdicts change it.
 * A plain class without Temporal imports, so its transitions are tested on their own;
 * the workflow body only moves data between it and the activities.
 */
import type { Verdict } from '../rollout/verdict';
import {
  applyManualDecision,
  initialPolicyState,
  isTerminal,
  nextTrafficShare,
  type PolicyDecision,
  type SevereAnomaly,
} from './policy';
import type { RolloutSpec, TrafficPolicy } from '../rollout/spec';
import type {
  Investigation,
  PolicyState,
  ProfileSelection,
  RolloutCarryOver,
  RolloutOutcome,
  RolloutPhase,
  RolloutResult,
  RolloutStatus,
  TrafficRegime,
  TickRecord,
  VerdictDigest,
} from '../rollout/types';
import type { Json } from '../core/validation';

/** Bounds on what the workflow carries; the full log lives in the store. */
export const KEPT_VERDICTS = 20;
export const KEPT_INVESTIGATIONS = 20;
export const KEPT_REASONS = 50;
/**
 * Tick records kept for the store while it is down (about 2 KB each, carried in the
 * continue-as-new input, which Temporal limits to 2 MB): over three hours at 1-minute ticks.
 */
export const KEPT_UNRECORDED_TICKS = 200;

export interface ManualDecision {
  kind: 'promote' | 'rollback';
  reason: string;
}

function keepLast<T>(items: T[], limit: number): T[] {
  return items.length > limit ? items.slice(items.length - limit) : items;
}

/** The severe anomaly whose lower bound is furthest beyond the baseline, if any. */
function worstSevere(verdict: Verdict): SevereAnomaly | null {
  const severe = verdict.anomalies.filter((anomaly) => anomaly.severe === true);
  return severe.reduce<SevereAnomaly | null>(
    (worst, anomaly) => (worst === null || anomaly.interval[0] > worst.interval[0] ? anomaly : worst),
    null,
  );
}

export class RolloutState {
  policy: TrafficPolicy;
  policyState: PolicyState;
  analysisState: Json;
  profiles: ProfileSelection;
  appliedShare: number | null;
  pausedReason: string | null;
  lastVerdicts: VerdictDigest[];
  investigations: Investigation[];
  reasons: string[];
  anomalyCount: number;
  readonly startedAt: number;
  nextTickAt: number;
  continuedAsNew: number;
  /** The regime of the last tick; null before the first. */
  regime: TrafficRegime | null;
  outcome: RolloutOutcome | null = null;
  pendingDecision: ManualDecision | null = null;
  unrecordedTicks: TickRecord[];
  /** Alert keys used so far, with the tick they were used at. */
  private readonly alertKeys = new Map<string, number>();
  private timerLateness = 0;

  constructor(
    readonly rolloutId: string,
    readonly spec: RolloutSpec,
    now: number,
    carryOver?: RolloutCarryOver,
  ) {
    this.policy = carryOver?.policy ?? spec.policy;
    this.policyState = carryOver?.policyState ?? initialPolicyState();
    this.analysisState = carryOver?.analysisState ?? null;
    this.profiles = carryOver?.profiles ?? { profileIds: [], mix: {} };
    this.appliedShare = carryOver?.appliedShare ?? null;
    this.pausedReason = carryOver?.pausedReason ?? null;
    this.lastVerdicts = carryOver?.lastVerdicts ?? [];
    this.investigations = carryOver?.investigations ?? [];
    this.reasons = carryOver?.reasons ?? [];
    this.anomalyCount = carryOver?.anomalyCount ?? 0;
    this.startedAt = carryOver?.startedAt ?? now;
    this.nextTickAt = carryOver?.nextTickAt ?? now;
    this.continuedAsNew = carryOver?.continuedAsNew ?? 0;
    this.regime = carryOver?.regime ?? null;
    this.unrecordedTicks = carryOver?.unrecordedTicks ?? [];
    this.outcome = carryOver?.outcome ?? null;
    for (const key of carryOver?.alertKeys ?? []) this.alertKeys.set(key, this.tick);
  }

  /**
   * The idempotency key of an alert of `kind` now: deterministic, so a retried notify keeps its
   * key and is deduplicated by it, and a second alert of one kind at one tick gets its own.
   */
  alertKey(kind: string): string {
    const base = `${this.rolloutId}/${kind}/${this.tick}`;
    let key = base;
    for (let repeat = 2; this.alertKeys.has(key); repeat++) key = `${base}#${repeat}`;
    this.alertKeys.set(key, this.tick);
    return key;
  }

  /** Keeps a tick record until the store takes it; the oldest go first if the store stays down. */
  keepUnrecorded(record: TickRecord): void {
    this.unrecordedTicks = [...this.unrecordedTicks, record];
    if (this.unrecordedTicks.length > KEPT_UNRECORDED_TICKS) {
      const lost = this.unrecordedTicks.length - KEPT_UNRECORDED_TICKS;
      this.note(
        `${lost} tick record(s) dropped: the store was down for more than ${KEPT_UNRECORDED_TICKS} ticks`,
      );
      this.unrecordedTicks = this.unrecordedTicks.slice(lost);
    }
  }

  /** The store took this tick's record. */
  recorded(tick: number): void {
    this.unrecordedTicks = this.unrecordedTicks.filter((record) => record.tick !== tick);
  }

  get share(): number {
    return this.policyState.share;
  }

  get tick(): number {
    return this.policyState.tick;
  }

  get finished(): boolean {
    return this.outcome !== null;
  }

  get phase(): RolloutPhase {
    if (this.outcome === 'aborted') return 'aborted';
    if (isTerminal(this.policyState.phase)) return this.policyState.phase;
    return this.pausedReason === null ? this.policyState.phase : 'paused';
  }

  /** The policy reached promoted or rolled back: the loop stops and routing is finalised. */
  get decided(): boolean {
    return isTerminal(this.policyState.phase);
  }

  note(reason: string): void {
    this.reasons = keepLast([...this.reasons, reason], KEPT_REASONS);
  }

  pause(reason: string): void {
    if (this.decided || this.pausedReason !== null) return;
    this.pausedReason = reason;
    this.note(`paused: ${reason}`);
  }

  resume(by: string): void {
    if (this.pausedReason === null) return;
    this.pausedReason = null;
    this.note(`resumed by ${by}`);
  }

  /** A person asked to promote or roll back now; the first request wins. */
  requestDecision(decision: ManualDecision): void {
    if (this.decided || this.pendingDecision) return;
    this.pendingDecision = decision;
  }

  /** Applies a pending manual decision to the policy state; returns it if there was one. */
  applyPendingDecision(): ManualDecision | null {
    const decision = this.pendingDecision;
    if (!decision || this.decided) return null;
    this.pendingDecision = null;
    this.policyState = applyManualDecision(this.policyState, decision.kind);
    this.pausedReason = null;
    this.note(`${decision.kind === 'promote' ? 'promoted' : 'rolled back'} by a person: ${decision.reason}`);
    return decision;
  }

  /**
   * The regime a tick runs in: the share the router applied during its probe. A changed share
   * starts a new one; a pause, a failed routing change or a person's look do not.
   */
  enterRegime(tick: number): TrafficRegime {
    const share = (this.appliedShare ?? 0) / 100;
    if (this.regime === null || this.regime.share !== share)
      this.regime = { index: (this.regime?.index ?? 0) + 1, sinceTick: tick, share };
    return this.regime;
  }

  /** Feeds one tick's verdict to the policy and keeps the bounded summaries up to date. */
  applyVerdict(
    tick: number,
    verdict: Verdict,
    at: number,
  ): { decision: PolicyDecision; investigation: Investigation | null } {
    const critical = verdict.anomalies.some((anomaly) => anomaly.critical);
    // A pause that arrived while the tick ran stops raises, not cuts: safety still applies.
    const decision = nextTrafficShare(this.policy, this.policyState, {
      tick,
      status: verdict.status,
      critical,
      severe: worstSevere(verdict),
      ...(verdict.healthProven === undefined ? {} : { healthProven: verdict.healthProven }),
      holdRaises: this.pausedReason !== null,
    });
    this.policyState = decision.state;
    const notes =
      verdict.status === 'anomalous'
        ? verdict.anomalies.map((anomaly) => anomaly.summary)
        : verdict.status === 'inconclusive'
          ? verdict.reasons
          : [];
    this.lastVerdicts = keepLast(
      [...this.lastVerdicts, { tick, status: verdict.status, notes }],
      KEPT_VERDICTS,
    );

    let investigation: Investigation | null = null;
    if (verdict.status === 'anomalous') {
      this.anomalyCount += 1;
      // The seed's "trigger an investigation": which tick, which evidence, share before and after.
      investigation = {
        id: `${this.rolloutId}#${tick}`,
        rolloutId: this.rolloutId,
        tick,
        openedAt: at,
        shareBefore: decision.shareBefore,
        shareAfter: decision.shareAfter,
        action: decision.action,
        anomalies: verdict.anomalies,
      };
      this.investigations = keepLast([...this.investigations, investigation], KEPT_INVESTIGATIONS);
    }
    if (decision.action !== 'hold' && decision.action !== 'raise')
      this.note(`tick ${tick}: ${decision.reason}`);
    if (decision.pause) this.pause(decision.pause);
    else if (investigation && this.spec.onAnomaly === 'reduce-and-pause' && !this.decided) {
      this.pause(`anomaly at tick ${tick} (onAnomaly: reduce-and-pause)`);
    }
    return { decision, investigation };
  }

  /** Next due time: one interval after the last, or now if the rollout fell a whole interval behind. */
  scheduleNextTick(scheduledAt: number, now: number): void {
    const next = scheduledAt + this.spec.intervalMs;
    this.nextTickAt = next + this.spec.intervalMs <= now ? now : next;
  }

  /**
   * A durable timer starts when the server receives the workflow task's result, later than the
   * workflow time the wait was computed from, and fires a little late again; without correction
   * every tick would slip by that lateness. Learn it (moving average) from how late ticks start.
   */
  observeTickStart(scheduledAt: number, startedAt: number): void {
    const late = startedAt - scheduledAt;
    if (late < 0 || late >= this.spec.intervalMs) return; // resumed or fell behind: not timer lateness
    this.timerLateness = Math.min(
      this.spec.intervalMs / 2,
      0.7 * this.timerLateness + 0.3 * (late + this.timerLateness),
    );
  }

  /** How long to wait before the next tick, corrected for the lateness learned so far. */
  waitForNextTick(now: number): number {
    return this.nextTickAt - now - this.timerLateness;
  }

  /** One line for the Temporal UI's "current details". */
  details(): string {
    const verdict = this.lastVerdicts[this.lastVerdicts.length - 1];
    const paused = this.pausedReason === null ? '' : ` — paused: ${this.pausedReason}`;
    return `**${this.phase}** at ${this.share} % real traffic, tick ${this.tick}, last verdict ${verdict?.status ?? 'none'}, ${this.anomalyCount} anomalies${paused}`;
  }

  status(): RolloutStatus {
    return {
      rolloutId: this.rolloutId,
      service: this.spec.service,
      version: this.spec.version,
      phase: this.phase,
      share: this.share,
      appliedShare: this.appliedShare,
      tick: this.tick,
      pausedReason: this.pausedReason,
      lastVerdicts: this.lastVerdicts,
      anomalyCount: this.anomalyCount,
      investigations: this.investigations,
      reasons: this.reasons,
      policy: this.policy,
      startedAt: this.startedAt,
      nextTickAt: this.finished || this.pausedReason !== null ? null : this.nextTickAt,
      outcome: this.outcome,
      continuedAsNew: this.continuedAsNew,
    };
  }

  carryOver(): RolloutCarryOver {
    return {
      policyState: this.policyState,
      policy: this.policy,
      analysisState: this.analysisState,
      profiles: this.profiles,
      appliedShare: this.appliedShare,
      pausedReason: this.pausedReason,
      lastVerdicts: this.lastVerdicts,
      investigations: this.investigations,
      reasons: this.reasons,
      anomalyCount: this.anomalyCount,
      startedAt: this.startedAt,
      nextTickAt: this.nextTickAt,
      continuedAsNew: this.continuedAsNew + 1,
      regime: this.regime,
      // Only keys of the current tick can be asked for again: later ticks have other keys.
      alertKeys: [...this.alertKeys].filter(([, tick]) => tick === this.tick).map(([key]) => key),
      unrecordedTicks: this.unrecordedTicks,
      ...(this.outcome ? { outcome: this.outcome } : {}),
    };
  }

  result(): RolloutResult {
    return {
      rolloutId: this.rolloutId,
      outcome: this.outcome ?? 'aborted',
      reasons: this.reasons.slice(-10),
      finalShare: this.outcome === 'promoted' ? 100 : 0,
      ticks: this.tick,
      anomalyCount: this.anomalyCount,
      continuedAsNew: this.continuedAsNew,
    };
  }
}
