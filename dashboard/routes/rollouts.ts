/** Reading rollouts: the list, one rollout, its tick log, investigations and probe series. */
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { temporalWorkflowUrl } from '../../rollout/links';
import { readAccess } from '../plugins/auth';
import { InvestigationsQuery, ListQuery, PageQuery, RolloutParams } from './schemas';

type Params = Static<typeof RolloutParams>;
type Page = Static<typeof PageQuery>;

export default async function rolloutRoutes(app: FastifyInstance) {
  const { rollouts, readModel, settings } = app.dashboard;
  const preHandler = readAccess(settings.auth);
  const temporalLink = (rolloutId: string) =>
    settings.temporalUiUrl
      ? temporalWorkflowUrl(settings.temporalUiUrl, rollouts.namespace, rolloutId)
      : null;

  app.get('/api/config', async () => ({
    controls: settings.auth.token !== undefined,
    protectReads: settings.auth.protectReads,
    namespace: rollouts.namespace,
    temporalUiUrl: settings.temporalUiUrl ?? null,
    refreshMs: settings.refreshMs,
  }));

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/api/rollouts',
    { preHandler, schema: { querystring: ListQuery } },
    async (request) => {
      const listed = await rollouts.list({
        running: request.query.status === 'running',
        limit: request.query.limit,
      });
      return {
        rollouts: listed.map(({ summary }) => ({
          ...summary,
          links: { temporalUi: temporalLink(summary.rolloutId) },
        })),
      };
    },
  );

  app.get<{ Params: Params }>(
    '/api/rollouts/:id',
    { preHandler, schema: { params: RolloutParams } },
    async (request) => {
      const detail = await rollouts.detail(request.params.id);
      return { ...detail, links: { temporalUi: temporalLink(request.params.id) } };
    },
  );

  app.get<{ Params: Params; Querystring: Page }>(
    '/api/rollouts/:id/ticks',
    { preHandler, schema: { params: RolloutParams, querystring: PageQuery } },
    async (request) => ({ ticks: await readModel.ticks(request.params.id, request.query) }),
  );

  app.get<{ Params: Params; Querystring: Static<typeof InvestigationsQuery> }>(
    '/api/rollouts/:id/investigations',
    { preHandler, schema: { params: RolloutParams, querystring: InvestigationsQuery } },
    async (request) => ({
      investigations: await readModel.investigations(request.params.id, request.query),
    }),
  );

  app.get<{ Params: Params; Querystring: Page }>(
    '/api/rollouts/:id/probes',
    { preHandler, schema: { params: RolloutParams, querystring: PageQuery } },
    async (request) => ({ points: await readModel.probePoints(request.params.id, request.query) }),
  );
}
