import { ValidationError } from '../core/validation';
import type { RouterTemplateVariable } from '../rollout/spec';
import type { TargetRole } from '../rollout/verdict';
import { messageOf } from '../core/errors';

/**
 * One interface for every way of moving real traffic between baseline and canary.
 * Contract: every method is idempotent (activities retry), shares are percent of requests
 * going to the canary (the baseline gets the rest), and a router that cannot do what was
 * asked throws; it never leaves a different weight in place silently.
 */
export interface TrafficRouter {
  readonly kind: string;
  /** Makes sure the routing objects exist (backends, upstreams, routes) and point at the targets. */
  reconcile(): Promise<void>;
  /**
   * Applies `share` and verifies it before returning. Refuses (RouterUnavailableError, nothing
   * changed) to raise the canary's share while the router sees the canary down.
   */
  setCanaryWeight(share: number): Promise<void>;
  /** The share the router applies now, read from the router itself. */
  getCanaryWeight(): Promise<number>;
  /**
   * Throws unless the router applies `share` now and every upstream that should receive
   * traffic at that share is up, as far as the router can tell: WeightMismatchError for
   * another share, RouterUnavailableError for a down upstream or an unreachable router.
   */
  verify(share: number): Promise<void>;
  /** Leaves routing in its final state: all traffic to the canary, or all to the baseline. */
  finalize(outcome: 'promoted' | 'rolled_back'): Promise<void>;
  close(): Promise<void>;
}

/**
 * What a router gives metric query templates, per target: the label values its own metrics carry
 * for that target (e.g. HAProxy's backend and server). Empty where its metrics carry none.
 */
export type TemplateVariables = Record<TargetRole, Partial<Record<RouterTemplateVariable, string>>>;

export const NO_TEMPLATE_VARIABLES: Readonly<TemplateVariables> = Object.freeze({
  baseline: Object.freeze({}),
  canary: Object.freeze({}),
});

/** The router is down or refused the change; retrying may help. */
export class RouterUnavailableError extends Error {
  override readonly name = 'RouterUnavailableError';
}

/** Setting the weight seemed to work but reading it back gave another value. */
export class WeightMismatchError extends Error {
  override readonly name = 'WeightMismatchError';
}

/** Routers keep shares to 0.01 points at least; the activity accepts a read-back within 0.01. */
export const SHARE_PRECISION = 0.005;

export function sameShare(a: number, b: number): boolean {
  return Math.abs(a - b) <= SHARE_PRECISION;
}

/** A share as routers accept it: a finite percentage from 0 to 100. */
export function checkShare(share: number): number {
  if (typeof share !== 'number' || !Number.isFinite(share) || share < 0 || share > 100) {
    throw new ValidationError([{ field: 'share', rule: 'must be a number from 0 to 100' }]);
  }
  return share;
}

/** What a router reports about itself: the share it applies and whether each upstream is up. */
export interface RoutingObservation {
  share: number;
  /** `undefined` where the router cannot tell (e.g. a HAProxy server in maintenance is not checked). */
  healthy: { baseline: boolean | undefined; canary: boolean | undefined };
}

/**
 * The behaviour every router shares, written once: refuse to raise the canary while it is
 * down, skip a change that is already in place (activities retry), verify after applying,
 * and finalize by setting 0 or 100. Each router supplies how to observe and how to apply.
 */
export abstract class ObservedRouter implements TrafficRouter {
  abstract readonly kind: string;
  abstract reconcile(): Promise<void>;
  abstract close(): Promise<void>;
  /** Reads the share and upstream health from the router; RouterUnavailableError if unreachable. */
  protected abstract observe(): Promise<RoutingObservation>;
  /** Applies `share` (a change from `current`); may wait for the router to settle. */
  protected abstract apply(share: number, current: RoutingObservation): Promise<void>;
  /** Names the upstream for messages, e.g. `canary http://10.0.0.2:8080`. */
  protected abstract describeUpstream(role: 'baseline' | 'canary'): string;

  async setCanaryWeight(share: number): Promise<void> {
    const target = checkShare(share);
    const current = await this.observe();
    if (!sameShare(current.share, target)) {
      if (target > current.share && current.healthy.canary === false) {
        throw new RouterUnavailableError(
          `${this.kind} router: ${this.describeUpstream('canary')} is down; refusing to raise its share from ${current.share} % to ${target} % (nothing changed)`,
        );
      }
      await this.apply(target, current);
    }
    await this.verify(target);
  }

  async getCanaryWeight(): Promise<number> {
    return (await this.observe()).share;
  }

  async verify(share: number): Promise<void> {
    const expected = checkShare(share);
    const observed = await this.observe();
    if (!sameShare(observed.share, expected)) {
      throw new WeightMismatchError(
        `${this.kind} router applies ${observed.share} % to the canary, expected ${expected} %`,
      );
    }
    for (const role of ['baseline', 'canary'] as const) {
      const receivesTraffic = role === 'canary' ? expected > 0 : expected < 100;
      if (receivesTraffic && observed.healthy[role] === false) {
        throw new RouterUnavailableError(
          `${this.kind} router: ${this.describeUpstream(role)} is down, so its share of ${role === 'canary' ? expected : 100 - expected} % is not served as set`,
        );
      }
    }
  }

  async finalize(outcome: 'promoted' | 'rolled_back'): Promise<void> {
    await this.setCanaryWeight(outcome === 'promoted' ? 100 : 0);
  }
}

/** Wraps a network failure talking to the router as the retryable error callers expect. */
export function unavailable(kind: string, action: string, error: unknown): RouterUnavailableError {
  if (error instanceof RouterUnavailableError) return error;
  const reason = messageOf(error);
  return new RouterUnavailableError(`${kind} router: ${action} failed: ${reason}`, { cause: error });
}
