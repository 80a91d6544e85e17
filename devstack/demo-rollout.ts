/**
 * The rollout the demo and the end-to-end tests run against the local stack: the sample shop
 * behind the built-in router, probed by shoppers who check out, with short ticks.
 */
import { NO_FAULTS, type ShopFaults } from '../examples/shop/faults';
import type { TrafficPolicy } from '../rollout/spec';
import type { LocalStack } from './local-stack';

export { NO_FAULTS };

/** The demo's regression: the canary's checkout answers 250 ms slower. */
export const CHECKOUT_REGRESSION: ShopFaults = {
  latency: [{ action: 'checkout', extraMs: 250, fraction: 1 }],
  errors: [],
  cpu: [],
  leakBytesPerSecond: 0,
};

export interface DemoRolloutOptions {
  version: string;
  intervalMs?: number;
  policy?: Partial<TrafficPolicy>;
}

/** A rollout document (as `canary rollout start -f` reads it) for the stack's shop. */
export function demoRolloutDocument(stack: LocalStack, options: DemoRolloutOptions): Record<string, unknown> {
  const intervalMs = options.intervalMs ?? 3000;
  return {
    apiVersion: 'canary.dev/v1',
    kind: 'Rollout',
    metadata: { service: 'shop', version: options.version },
    spec: {
      targets: { baseline: { url: stack.baselineUrl }, canary: { url: stack.canaryUrl } },
      router: { kind: 'builtin', adminUrl: stack.proxyAdminUrl, tokenEnv: 'CANARY_PROXY_TOKEN' },
      // Shoppers who check out: the flow the regression scenario breaks.
      profiles: { criteria: { actions: 'checkout' }, sampleSize: 60, seed: 7 },
      interval: `${intervalMs}ms`,
      // Sessions replay 200x faster so whole sessions, checkout included, fit in a probe window;
      // 20 shoppers per target leave a 2-core machine room: a saturated prober measures its own
      // queueing, which is not the same for both targets and reads as a regression.
      probe: { duration: `${Math.round(intervalMs * 0.8)}ms`, concurrency: 20, timeScale: 0.005 },
      // The default method: evidence per regime, proof of health, and severity (the demo's
      // regression is severe and rolls back at the tick that finds it).
      analysis: { alpha: 0.05 },
      // Bigger steps than production's +1 % so the demo finishes in a few minutes.
      policy: {
        probingTicks: 3,
        initialShare: 5,
        stepUp: 5,
        stepDown: 5,
        recoveryTicks: 2,
        cooldownTicks: 4,
        ...options.policy,
      },
      links: {
        dashboardUrl: stack.apiUrl,
        // The base: alerts append /namespaces/<ns>/workflows/<id> themselves (rollout/links.ts).
        ...(stack.temporal.uiUrl ? { temporalUiUrl: stack.temporal.uiUrl } : {}),
      },
    },
  };
}
