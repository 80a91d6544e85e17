/**
 * The one error handler: 4xx always name the field and the rule; 5xx say nothing about the
 * internals (the log has them, keyed by request id).
 */
import fp from 'fastify-plugin';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { MongoServerSelectionError, MongoNetworkError } from 'mongodb';
import { ValidationError, type FieldIssue } from '../../workflows/validation';
import { PopulationTooLargeError } from '../store';

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

function badRequest(issues: FieldIssue[]): ErrorBody {
  return {
    error: 'bad_request',
    message: issues.map((issue) => `${issue.field}: ${issue.rule}`).join('; '),
    issues,
  };
}

export function handleError(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  if (error instanceof ValidationError) return send(reply, 400, badRequest([...error.issues]));
  if (error instanceof HttpError) {
    return send(reply, error.statusCode, {
      error: error.code,
      message: error.message,
      ...(error.issues.length ? { issues: error.issues } : {}),
    });
  }
  if (error instanceof PopulationTooLargeError)
    return send(reply, 400, badRequest([{ field: 'criteria', rule: error.message }]));
  const fastifyError = error as FastifyError;
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return send(reply, 413, {
        error: 'payload_too_large',
        message: `body: must be at most ${request.routeOptions.bodyLimit ?? '?'} bytes`,
        issues: [{ field: 'body', rule: `must be at most ${request.routeOptions.bodyLimit ?? '?'} bytes` }],
      });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return send(reply, 400, badRequest([{ field: 'body', rule: 'must be valid, non-empty JSON' }]));
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return send(reply, 415, {
        error: 'unsupported_media_type',
        message: 'body: must be application/json',
        issues: [{ field: 'content-type', rule: 'must be application/json' }],
      });
    case 'FST_ERR_VALIDATION': {
      const context = fastifyError.validationContext ?? 'request';
      const issues = (fastifyError.validation ?? []).map((item) => ({
        field: `${context}${item.instancePath.replace(/\//g, '.')}`,
        rule: item.message ?? 'is invalid',
      }));
      return send(
        reply,
        400,
        badRequest(issues.length ? issues : [{ field: context, rule: fastifyError.message }]),
      );
    }
  }
  const status = fastifyError.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500)
    return send(reply, status, { error: 'bad_request', message: fastifyError.message });
  if (error instanceof MongoServerSelectionError || error instanceof MongoNetworkError) {
    request.log.error({ err: error }, 'database unavailable');
    return send(reply, 503, {
      error: 'unavailable',
      message: 'the profile store is unavailable; retry later',
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
  { name: 'errors' },
);
