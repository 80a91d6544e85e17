/**
 * Steering a rollout: pause, resume, roll back (with a reason), promote, and policy changes.
 * Each needs the bearer token, validates the id and the body (4xx naming the field), and reaches
 * the workflow only through its signals and update. 202: the workflow applies a signal on its
 * next workflow task; the status query shows the result a moment later.
 */
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ControlRequest } from '../../rollout/messages';
import type { TrafficPolicy } from '../../rollout/spec';
import { ValidationError } from '../../core/validation';
import { requireToken } from '../plugins/auth';
import type { ControlKind } from '../../client/rollout-client';
import { OptionalReasonBody, PolicyBody, ResumeBody, RollbackBody, RolloutParams } from './schemas';

type Params = Static<typeof RolloutParams>;
type Body = { reason?: string; by?: string };

const BODIES: Record<ControlKind, typeof OptionalReasonBody | typeof ResumeBody | typeof RollbackBody> = {
  pause: OptionalReasonBody,
  resume: ResumeBody,
  rollback: RollbackBody,
  promote: OptionalReasonBody,
};

export default async function controlRoutes(app: FastifyInstance) {
  const { rollouts, settings } = app.dashboard;
  const { controls } = app.dashboardMetrics;
  const preHandler = requireToken(settings.auth);

  const counted = async <T>(control: string, run: () => Promise<T>): Promise<T> => {
    try {
      const result = await run();
      controls.inc({ control, outcome: 'accepted' });
      return result;
    } catch (error) {
      controls.inc({ control, outcome: 'refused' });
      throw error;
    }
  };

  for (const kind of Object.keys(BODIES) as ControlKind[]) {
    app.post<{ Params: Params; Body: Body }>(
      `/api/rollouts/:id/${kind}`,
      { preHandler, schema: { params: RolloutParams, body: BODIES[kind] } },
      async (request, reply) => {
        const body = request.body ?? {};
        const control: ControlRequest = { by: body.by ? `dashboard:${body.by}` : 'dashboard' };
        if (body.reason !== undefined) control.reason = body.reason.trim();
        await counted(kind, () => rollouts.control(request.params.id, kind, control));
        request.log.info({ rolloutId: request.params.id, control: kind, by: control.by }, 'control sent');
        return reply.code(202).send({ accepted: true, control: kind, rolloutId: request.params.id });
      },
    );
  }

  app.patch<{ Params: Params; Body: Partial<TrafficPolicy> }>(
    '/api/rollouts/:id/policy',
    { preHandler, schema: { params: RolloutParams, body: PolicyBody } },
    async (request) => {
      try {
        const policy = await counted('set_policy', () => rollouts.setPolicy(request.params.id, request.body));
        return { policy };
      } catch (error) {
        // mergePolicy names fields `policy.x`; in this API the body is the policy.
        if (error instanceof ValidationError)
          throw new ValidationError(
            error.issues.map((issue) => ({
              field: issue.field.replace(/^policy\b/, 'body'),
              rule: issue.rule,
            })),
          );
        throw error;
      }
    },
  );
}
