/**
 * The one error handler (platform/http/errors.ts) with what only the profile store knows: a query
 * whose population is too large is the caller's criteria at fault. The loadgen service reads
 * the same store and answers its errors the same way.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { MongoServerSelectionError, MongoNetworkError } from 'mongodb';
import { HttpError, installErrorHandling, type ErrorHandlerOptions } from '../../../platform/http/errors';
import { PopulationTooLargeError } from '../../store';

export const profileStoreErrors: ErrorHandlerOptions = {
  translate: (error) =>
    error instanceof PopulationTooLargeError
      ? new HttpError(400, 'bad_request', `criteria: ${error.message}`, [
          { field: 'criteria', rule: error.message },
        ])
      : undefined,
  isUnavailable: (error) => error instanceof MongoServerSelectionError || error instanceof MongoNetworkError,
  unavailableMessage: 'the profile store is unavailable; retry later',
  queryFieldPrefix: '',
};

export default fp(
  async function errorsPlugin(app: FastifyInstance) {
    installErrorHandling(app, profileStoreErrors);
  },
  { name: 'errors' },
);
