/**
 * Prometheus metrics on /metrics: request latency per route and status, profiles written, and
 * the process defaults. One registry per app instance, so tests can build several apps. With
 * protected reads, /metrics needs the token like any read.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { AuthConfig } from '../config';
import { requireReadToken } from './auth';

declare module 'fastify' {
  interface FastifyInstance {
    profileMetrics: { written: Counter<'source'>; rejected: Counter<'route'> };
  }
}

export default fp(
  async function metricsPlugin(app: FastifyInstance, options: { auth: AuthConfig }) {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry, prefix: 'profiles_api_' });
    const duration = new Histogram({
      name: 'profiles_api_request_duration_seconds',
      help: 'HTTP request latency by route, method and status code',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    const written = new Counter({
      name: 'profiles_api_profiles_written_total',
      help: 'Profiles created or replaced, by source (api, generator)',
      labelNames: ['source'] as const,
      registers: [registry],
    });
    const rejected = new Counter({
      name: 'profiles_api_rejected_requests_total',
      help: 'Requests answered 4xx, by route',
      labelNames: ['route'] as const,
      registers: [registry],
    });
    app.decorate('profileMetrics', { written, rejected });
    app.addHook('onResponse', async (request, reply) => {
      const route = request.routeOptions.url ?? 'unmatched';
      duration.observe(
        { method: request.method, route, status: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      );
      if (reply.statusCode >= 400 && reply.statusCode < 500) rejected.inc({ route });
    });
    // Protected reads protect the metrics too: route names, counts and rates are reads.
    app.get(
      '/metrics',
      { schema: { hide: true }, preHandler: requireReadToken(options.auth) },
      async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()),
    );
  },
  { name: 'metrics' },
);
