/**
 * The one error handler (platform/http/errors.ts) with the dashboard's own cases: an unknown rollout
 * is a 404, a control for one that ended a 409; Temporal or MongoDB unreachable is a 503.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { MongoNetworkError, MongoServerSelectionError } from 'mongodb';
import { HttpError, installErrorHandling } from '../../platform/http/errors';
import { isTemporalUnavailable, RolloutEndedError, RolloutNotFoundError } from '../../client/rollout-errors';

export default fp(
  async function errorsPlugin(app: FastifyInstance) {
    installErrorHandling(app, {
      translate: (error) =>
        error instanceof RolloutNotFoundError
          ? new HttpError(404, 'not_found', error.message)
          : error instanceof RolloutEndedError
            ? new HttpError(409, 'conflict', error.message)
            : undefined,
      isUnavailable: (error) =>
        error instanceof MongoServerSelectionError ||
        error instanceof MongoNetworkError ||
        isTemporalUnavailable(error),
      unavailableMessage: 'Temporal or the database is unavailable; retry later',
    });
  },
  { name: 'dashboard-errors' },
);
