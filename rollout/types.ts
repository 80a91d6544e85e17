/**
 * Data the rollout workflow exchanges with its activities, the store and its clients.
 * Types only: the CLI, the API and the store import them without pulling in workflow code.
 */
import type { Anomaly, Verdict, VerdictStatus } from './verdict';
import type { RolloutSpec, TrafficPolicy } from './spec';
import type { Json } from '../core/validation';

/** Where the traffic policy stands; the workflow's pure policy moves it (workflows/policy.ts). */
export type PolicyPhase = 'probing' | 'progressing' | 'promoted' | 'rolled_back';

export interface PolicyState {
  phase: PolicyPhase;
  /** The canary's share of real traffic, percent. */
  share: number;
  /** Last tick evaluated (1-based; 0 before the first). */
  tick: number;
  cleanStreak: number;
  inconclusiveStreak: number;
  /** True from a cut until the first raise after it (hysteresis applies). */
  recovering: boolean;
  /** While `tick < untilTick`, the share must stay below `share` (cooldown after a cut). */
  ceiling: { share: number; untilTick: number } | null;
  /** Ticks of anomalies inside the current window, oldest first. */
  anomalyTicks: number[];
  /**
   * Shares at which the canary was cut and how often, while the share has not risen above them:
   * raises stop at such a level (a retry), and `maxCutsAtLevel` cuts there pause or roll back.
   * Absent in states recorded before levels were counted.
   */
  cutLevels?: { share: number; cuts: number }[];
  /** Ticks since the last cut whose verdict did not prove health (bounded by `maxRecoveryTicks`). */
  ticksWithoutProof?: number;
}

export type PolicyAction = 'hold' | 'start' | 'raise' | 'reduce' | 'promote' | 'rollback';

/** What people see: the policy phase, or `paused` while a person (or a policy limit) holds it. */
export type RolloutPhase = PolicyPhase | 'paused' | 'aborted';

export type RolloutOutcome = 'promoted' | 'rolled_back' | 'aborted';

export interface ProfileSelection {
  profileIds: string[];
  /** Share of the sample per stratum, e.g. `{ "device:mobile": 0.6 }`, for the dashboard. */
  mix: Record<string, number>;
  /**
   * The distinct actions the sampled profiles use, sorted: known before the first look, they fix
   * the analysis's multiplicity correction. Absent in selections recorded before it existed.
   */
  actions?: string[];
}

export interface ProbeSummary {
  startedAt: number;
  endedAt: number;
  requests: { baseline: number; canary: number };
  errors: { baseline: number; canary: number };
}

export interface MetricsSummary {
  samples: number;
  sources: string[];
  /** Sources that gave no data this window (the analysis treats them as missing, not as good). */
  missing: string[];
}

export interface Investigation {
  id: string;
  rolloutId: string;
  tick: number;
  openedAt: number;
  shareBefore: number;
  shareAfter: number;
  action: PolicyAction;
  anomalies: Anomaly[];
}

export interface TickRecord {
  rolloutId: string;
  tick: number;
  /** When the tick was due and when it started (workflow time, ms since epoch). */
  scheduledAt: number;
  startedAt: number;
  finishedAt: number;
  phase: RolloutPhase;
  verdict: Verdict;
  action: PolicyAction;
  shareBefore: number;
  shareAfter: number;
  reason: string;
  probe: ProbeSummary | null;
  investigation: Investigation | null;
}

export interface VerdictDigest {
  tick: number;
  status: VerdictStatus;
  /** One line per anomaly, or the reason for an inconclusive tick. */
  notes: string[];
}

export interface RolloutStatus {
  rolloutId: string;
  service: string;
  version: string;
  phase: RolloutPhase;
  /** Share the policy wants and share the router last confirmed. */
  share: number;
  appliedShare: number | null;
  tick: number;
  pausedReason: string | null;
  lastVerdicts: VerdictDigest[];
  anomalyCount: number;
  investigations: Investigation[];
  reasons: string[];
  policy: TrafficPolicy;
  startedAt: number;
  nextTickAt: number | null;
  outcome: RolloutOutcome | null;
  continuedAsNew: number;
}

export interface RolloutResult {
  rolloutId: string;
  outcome: RolloutOutcome;
  reasons: string[];
  finalShare: number;
  ticks: number;
  anomalyCount: number;
  /** How many times the rollout continued as new to keep its history bounded. */
  continuedAsNew: number;
}

/**
 * A stretch of ticks during which the canary's applied share of real traffic stayed the same:
 * index 1 at the first tick, +1 whenever the share changed; the analysis scopes evidence to it.
 */
export interface TrafficRegime {
  index: number;
  /** The regime's first tick. */
  sinceTick: number;
  /** The canary's applied share of real traffic, as a fraction in [0, 1]. */
  share: number;
}

/** Everything a rollout needs to go on after continue-as-new; bounded in size. */
export interface RolloutCarryOver {
  policyState: PolicyState;
  policy: TrafficPolicy;
  analysisState: Json;
  profiles: ProfileSelection;
  appliedShare: number | null;
  pausedReason: string | null;
  lastVerdicts: VerdictDigest[];
  investigations: Investigation[];
  reasons: string[];
  anomalyCount: number;
  startedAt: number;
  nextTickAt: number;
  continuedAsNew: number;
  /** Absent in carry-overs from before regimes were counted: counting starts again at 1. */
  regime?: TrafficRegime | null;
  /** Alert keys already used at the current tick, so the next run gives a repeat its own key. */
  alertKeys?: string[];
  /** Tick records the store did not take yet, written on later ticks (oldest first). */
  unrecordedTicks?: TickRecord[];
  /** Set when the run that continued as new was finishing an aborted rollout. */
  outcome?: RolloutOutcome;
}

export interface RolloutInput {
  spec: RolloutSpec;
  carryOver?: RolloutCarryOver;
}

export interface AlertEvent {
  /** Idempotency key: a retried activity or a replayed tick must not notify twice. */
  key: string;
  rolloutId: string;
  service: string;
  version: string;
  kind:
    | 'anomaly'
    | 'resolved'
    | 'paused'
    | 'promoted'
    | 'rolled_back'
    | 'aborted'
    | 'routing_failed'
    /** The router served another share than the rollout applied; it was applied again. */
    | 'drift'
    /** Raised by a worker at start: the rollout ended abnormally with the canary in real traffic. */
    | 'abandoned';
  severity: 'info' | 'warning' | 'critical';
  tick: number;
  summary: string;
  anomalies: Anomaly[];
  shareBefore: number;
  shareAfter: number;
  links: { dashboardUrl?: string; temporalUiUrl?: string };
  at: number;
}
