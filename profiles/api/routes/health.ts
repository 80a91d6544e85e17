/** Liveness (the process answers) and readiness (the store answers a ping). */
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';

const Health = Type.Object({
  status: Type.String(),
  checks: Type.Optional(Type.Record(Type.String(), Type.String())),
});

export default async function healthRoutes(app: FastifyInstance) {
  app.get('/healthz', { schema: { tags: ['health'], response: { 200: Health } } }, async () => ({
    status: 'ok',
  }));

  app.get(
    '/readyz',
    { schema: { tags: ['health'], response: { 200: Health, 503: Health } } },
    async (request, reply) => {
      try {
        await app.profileStore.db.command({ ping: 1 }, { timeoutMS: 2000 });
        return { status: 'ready', checks: { mongodb: 'ok' } };
      } catch (error) {
        request.log.warn({ err: error }, 'readiness check failed');
        return reply.code(503).send({ status: 'not_ready', checks: { mongodb: 'unreachable' } });
      }
    },
  );
}
