import type { Anomaly } from '../../rollout/verdict';
import type { AlertEvent } from '../../rollout/types';

export function anomaly(overrides: Partial<Anomaly> = {}): Anomaly {
  return {
    metric: 'latency_ms',
    action: 'checkout',
    effect: 0.38,
    interval: [0.22, 0.55],
    statistic: 'anytime p=0.003',
    critical: false,
    summary: 'checkout p90 latency +38 % [+22 %, +55 %]',
    ...overrides,
  };
}

let sequence = 0;

/** An alert event as the workflow emits it; each call gets its own rollout unless one is given. */
export function alertEvent(overrides: Partial<AlertEvent> = {}): AlertEvent {
  sequence += 1;
  const rolloutId = overrides.rolloutId ?? `rollout-shop-v${process.pid}-${sequence}`;
  const kind = overrides.kind ?? 'anomaly';
  const tick = overrides.tick ?? 4;
  return {
    key: `${rolloutId}/${kind}/${tick}`,
    rolloutId,
    service: 'shop',
    version: 'v2',
    kind,
    severity: 'warning',
    tick,
    summary: 'anomaly: cut by 5 from 22 % to 17 %: checkout p90 latency +38 % [+22 %, +55 %]',
    anomalies: kind === 'anomaly' ? [anomaly()] : [],
    shareBefore: 22,
    shareAfter: 17,
    links: { dashboardUrl: 'http://dashboard.test', temporalUiUrl: 'http://temporal.test' },
    at: 1_700_000_000_000 + tick * 60_000,
    ...overrides,
  };
}
