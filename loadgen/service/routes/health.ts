/** Liveness with the number of runs playing. */
import type { FastifyInstance } from 'fastify';

export default async function healthRoutes(app: FastifyInstance) {
  app.get('/healthz', async () => ({ ok: true, active_runs: app.loadgen.runs.active }));
}
