/**
 * Prometheus metrics of the API on /metrics: request latency, controls sent, and — asked of the
 * rollouts themselves at scrape time (status query, cached about a second) — the running rollouts
 * by phase and each one's canary share. These are the authoritative per-rollout figures: a
 * worker only sees the rollouts it happens to execute.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RolloutClient } from '../../client/rollout-client';
import type { RolloutSummary } from '../../client/rollout-list';
import { readAccess, type AuthConfig } from './auth';

declare module 'fastify' {
  interface FastifyInstance {
    dashboardMetrics: { controls: Counter<'control' | 'outcome'>; registry: Registry };
  }
}

const LIVE_PHASES = ['probing', 'progressing', 'paused', 'unknown'];
const MAX_LISTED = 1000;

export default fp(
  async function metricsPlugin(app: FastifyInstance, options: { rollouts: RolloutClient; auth: AuthConfig }) {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const registers = [registry];
    const duration = new Histogram({
      name: 'canary_api_request_duration_seconds',
      help: 'HTTP request latency of the dashboard API, by method, route and status code.',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    const controls = new Counter({
      name: 'canary_api_controls_total',
      help: 'Controls sent to rollouts through the API, by control and outcome.',
      labelNames: ['control', 'outcome'],
      registers,
    });
    let listing: Promise<RolloutSummary[]> | undefined;
    const running = () =>
      (listing ??= options.rollouts
        .list({ running: true, limit: MAX_LISTED })
        .then((rows) => rows.map((row) => row.summary)));
    const up = new Gauge({
      name: 'canary_api_rollouts_listing_up',
      help: '1 if the last scrape could list rollouts from Temporal.',
      registers,
    });
    new Gauge({
      name: 'canary_rollouts',
      help: 'Running rollouts by phase (asked of each workflow; unknown when it did not answer).',
      labelNames: ['phase'],
      registers,
      async collect() {
        this.reset();
        for (const phase of LIVE_PHASES) this.set({ phase }, 0);
        try {
          for (const rollout of await running())
            this.inc({ phase: LIVE_PHASES.includes(rollout.phase) ? rollout.phase : 'unknown' });
          up.set(1);
        } catch {
          up.set(0);
        }
      },
    });
    new Gauge({
      name: 'canary_rollout_canary_share_ratio',
      help: "Each running rollout's canary share of real traffic (0-1), as its workflow reports it.",
      labelNames: ['rollout', 'service', 'version'],
      registers,
      async collect() {
        this.reset();
        const rollouts = await running().catch(() => []);
        for (const rollout of rollouts)
          if (rollout.share !== null)
            this.set(
              { rollout: rollout.rolloutId, service: rollout.service, version: rollout.version },
              rollout.share / 100,
            );
      },
    });
    app.decorate('dashboardMetrics', { controls, registry });
    app.addHook('onResponse', async (request, reply) => {
      duration.observe(
        {
          method: request.method,
          route: request.routeOptions.url ?? 'unmatched',
          status: String(reply.statusCode),
        },
        reply.elapsedTime / 1000,
      );
    });
    // Protected reads protect the metrics too: they list rollouts and their shares.
    app.get('/metrics', { preHandler: readAccess(options.auth) }, async (_request, reply) => {
      listing = undefined; // one listing per scrape, shared by the gauges
      const text = await registry.metrics();
      listing = undefined;
      return reply.type(registry.contentType).send(text);
    });
  },
  { name: 'dashboard-metrics' },
);
