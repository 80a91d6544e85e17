/**
 * The one error handler: 4xx always name the field and the rule; 5xx say nothing about the
 * internals (the log has them, keyed by request id). Temporal or MongoDB being unreachable is a
 * 503, not a 500.
 */
import fp from 'fastify-plugin';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ServiceError } from '@temporalio/client';
import { MongoNetworkError, MongoServerSelectionError } from 'mongodb';
import { ValidationError, type FieldIssue } from '../../workflows/validation';
import { RolloutEndedError, RolloutNotFoundError } from '../rollout-directory';

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly issues: FieldIssue[] = [],
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export interface ErrorBody {
  error: string;
  message: string;
  issues?: FieldIssue[];
  request_id?: string;
}

function send(reply: FastifyReply, status: number, body: ErrorBody): FastifyReply {
  return reply.code(status).type('application/json').send(body);
}

function badRequest(issues: readonly FieldIssue[]): ErrorBody {
  return {
    error: 'bad_request',
    message: issues.map((issue) => `${issue.field}: ${issue.rule}`).join('; '),
    issues: [...issues],
  };
}

export function handleError(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  if (error instanceof ValidationError) return send(reply, 400, badRequest(error.issues));
  if (error instanceof HttpError)
    return send(reply, error.statusCode, {
      error: error.code,
      message: error.message,
      ...(error.issues.length ? { issues: error.issues } : {}),
    });
  if (error instanceof RolloutNotFoundError)
    return send(reply, 404, { error: 'not_found', message: error.message });
  if (error instanceof RolloutEndedError)
    return send(reply, 409, { error: 'conflict', message: error.message });
  const fastifyError = error as FastifyError;
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return send(reply, 413, {
        error: 'payload_too_large',
        message: 'body: is too large',
        issues: [{ field: 'body', rule: 'is too large' }],
      });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return send(reply, 400, badRequest([{ field: 'body', rule: 'must be valid, non-empty JSON' }]));
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return send(reply, 415, {
        error: 'unsupported_media_type',
        message: 'content-type: must be application/json',
        issues: [{ field: 'content-type', rule: 'must be application/json' }],
      });
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500)
    return send(reply, status, { error: 'bad_request', message: fastifyError.message });
  if (
    error instanceof MongoServerSelectionError ||
    error instanceof MongoNetworkError ||
    error instanceof ServiceError
  ) {
    request.log.error({ err: error }, 'backend unavailable');
    return send(reply, 503, {
      error: 'unavailable',
      message: 'Temporal or the database is unavailable; retry later',
      request_id: request.id,
    });
  }
  request.log.error({ err: error }, 'unhandled error');
  return send(reply, 500, { error: 'internal', message: 'internal error', request_id: request.id });
}

export default fp(
  async function errorsPlugin(app: FastifyInstance) {
    app.setErrorHandler(handleError);
    app.setNotFoundHandler((request, reply) =>
      send(reply, 404, {
        error: 'not_found',
        message: `no route ${request.method} ${request.url.split('?')[0]}`,
      }),
    );
  },
  { name: 'dashboard-errors' },
);
