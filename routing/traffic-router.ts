/**
 * One interface for every way of moving real traffic between baseline and canary.
 * Contract: every method is idempotent (activities retry), shares are percent of requests
 * going to the canary (the baseline gets the rest), and a router that cannot do what was
 * asked throws; it never leaves a different weight in place silently.
 */
export interface TrafficRouter {
  readonly kind: string;
  /** Makes sure the routing objects exist (backends, upstreams, routes). */
  reconcile(): Promise<void>;
  setCanaryWeight(share: number): Promise<void>;
  /** The share the router applies now, as far as it can tell. */
  getCanaryWeight(): Promise<number>;
  /** Leaves routing in its final state: all traffic to the canary, or all to the baseline. */
  finalize(outcome: 'promoted' | 'rolled_back'): Promise<void>;
  close(): Promise<void>;
}

/** The router is down or refused the change; retrying may help. */
export class RouterUnavailableError extends Error {
  override readonly name = 'RouterUnavailableError';
}

/** Setting the weight seemed to work but reading it back gave another value. */
export class WeightMismatchError extends Error {
  override readonly name = 'WeightMismatchError';
}
