import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export const UPSTREAM_ROLES = ['baseline', 'canary'] as const;
export type UpstreamRole = (typeof UPSTREAM_ROLES)[number];

export const ERROR_REASONS = ['connect', 'timeout', 'reset', 'client_abort', 'other'] as const;
export type ErrorReason = (typeof ERROR_REASONS)[number];

/** Seconds; dense below 100 ms where a canary's latency regressions show first. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The metric children of one upstream, resolved once so the hot path does no label lookups. */
export interface UpstreamMetrics {
  /** Indexed by the status code's first digit (1-5). */
  readonly responses: readonly Counter.Internal[];
  readonly latency: Histogram.Internal<'upstream'>;
  readonly errors: Readonly<Record<ErrorReason, Counter.Internal>>;
  readonly healthy: Gauge.Internal<'upstream'>;
}

/**
 * The "real traffic" metrics the analysis reads (through Prometheus or a scrape of the admin
 * endpoint's /metrics), labelled by `upstream` = baseline | canary.
 */
export class ProxyMetrics {
  readonly registry = new Registry();
  readonly share: Gauge;
  readonly upstreams: Readonly<Record<UpstreamRole, UpstreamMetrics>>;

  constructor(prefix = 'canary_proxy_') {
    collectDefaultMetrics({ register: this.registry, prefix });
    const registers = [this.registry];
    const requests = new Counter({
      name: `${prefix}requests_total`,
      help: 'Requests answered through the proxy, by upstream and status class.',
      labelNames: ['upstream', 'status_class'],
      registers,
    });
    const latency = new Histogram({
      name: `${prefix}request_duration_seconds`,
      help: 'Time from receiving a request to the end of the upstream response, by upstream.',
      labelNames: ['upstream'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const errors = new Counter({
      name: `${prefix}upstream_errors_total`,
      help: 'Requests that got no complete response from the upstream, by upstream and reason.',
      labelNames: ['upstream', 'reason'],
      registers,
    });
    const healthy = new Gauge({
      name: `${prefix}upstream_healthy`,
      help: '1 while the active health check passes, else 0.',
      labelNames: ['upstream'],
      registers,
    });
    this.share = new Gauge({
      name: `${prefix}canary_share_percent`,
      help: "The canary's share of requests the proxy applies (percent).",
      registers,
    });
    const forRole = (upstream: UpstreamRole): UpstreamMetrics => {
      const responses = ['0', '1', '2', '3', '4', '5'].map((digit) =>
        requests.labels({ upstream, status_class: `${digit}xx` }),
      );
      // Create every series at zero, so a rate() over a quiet canary reads 0, not "no data".
      for (const digit of ['2', '4', '5']) requests.inc({ upstream, status_class: `${digit}xx` }, 0);
      const byReason = {} as Record<ErrorReason, Counter.Internal>;
      for (const reason of ERROR_REASONS) {
        byReason[reason] = errors.labels({ upstream, reason });
        errors.inc({ upstream, reason }, 0);
      }
      return {
        responses,
        latency: latency.labels({ upstream }),
        errors: byReason,
        healthy: healthy.labels({ upstream }),
      };
    };
    this.upstreams = { baseline: forRole('baseline'), canary: forRole('canary') };
  }
}
