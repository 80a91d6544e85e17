/**
 * The one error handler (platform/http/errors.ts) with the profile store's errors (criteria over
 * the population cap are a 400 naming `criteria`, a store that is down a 503) and this service's
 * own: more runs than it plays at once is a 429.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { HttpError, installErrorHandling } from '../../../platform/http/errors';
import { profileStoreErrors } from '../../../profiles/api/plugins/errors';
import { TooManyRunsError } from '../run-registry';

export default fp(
  async function errorsPlugin(app: FastifyInstance) {
    installErrorHandling(app, {
      ...profileStoreErrors,
      queryFieldPrefix: 'query',
      translate: (error) =>
        error instanceof TooManyRunsError
          ? new HttpError(429, 'too_many_runs', error.message)
          : profileStoreErrors.translate?.(error),
    });
  },
  { name: 'loadgen-errors' },
);
