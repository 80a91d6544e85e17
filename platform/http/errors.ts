/**
 * The one error handler and the one error body of our HTTP services (profiles API, dashboard,
 * loadgen service, the built-in proxy's admin endpoint): 4xx always name the field and the
 * rule; 5xx say nothing about the internals (the log has them, keyed by request id); a backend
 * that is down is a 503. Each service adds the errors only it knows. docs/http-api.md.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ValidationError, type FieldIssue } from '../../core/validation';

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

/** Every 4xx and 5xx of every service; the schema goes into route responses and OpenAPI. */
export const ErrorBody = Type.Object(
  {
    error: Type.String({ description: 'A code: bad_request, unauthorized, not_found, unavailable, ...' }),
    message: Type.String({ description: '`field: rule` for each issue, or what went wrong' }),
    issues: Type.Optional(Type.Array(Type.Object({ field: Type.String(), rule: Type.String() }))),
    request_id: Type.Optional(Type.String({ description: 'On 5xx: the key of the cause in the log' })),
  },
  { $id: 'Error' },
);
export type ErrorBody = Static<typeof ErrorBody>;

export function sendError(reply: FastifyReply, status: number, body: ErrorBody): FastifyReply {
  return reply.code(status).type('application/json').send(body);
}

export function badRequest(issues: readonly FieldIssue[]): ErrorBody {
  return {
    error: 'bad_request',
    message: issues.map((issue) => `${issue.field}: ${issue.rule}`).join('; '),
    issues: [...issues],
  };
}

export interface ErrorHandlerOptions {
  /** The service's own errors as an HttpError (or undefined to fall through). */
  translate?: (error: Error) => HttpError | undefined;
  /** Errors that mean a backend (database, Temporal) is unreachable: answered 503. */
  isUnavailable?: (error: Error) => boolean;
  /** What a 503 says, e.g. `the profile store is unavailable; retry later`. */
  unavailableMessage?: string;
  /** How the service names query parameters in issues: `query` (`query.limit`, default) or '' (`limit`). */
  queryFieldPrefix?: string;
}

// Keys that would change how the parsed query object behaves if copied into a plain object
// (`flat[key] = value` with __proto__ sets the prototype): refused, never dropped silently.
const RESERVED_QUERY_KEY = /^(__proto__|constructor|prototype)(\[|$)/;

/** A 400 naming each query parameter called __proto__, constructor or prototype. */
export function reservedQueryIssues(query: unknown, prefix = 'query'): FieldIssue[] {
  if (typeof query !== 'object' || query === null) return [];
  return Object.keys(query)
    .filter((key) => RESERVED_QUERY_KEY.test(key))
    .map((key) => ({
      field: prefix ? `${prefix}.${key}` : key,
      rule: 'is not a parameter: __proto__, constructor and prototype are reserved names',
    }));
}

export function createErrorHandler(options: ErrorHandlerOptions) {
  return function handleError(
    error: FastifyError | Error,
    request: FastifyRequest,
    reply: FastifyReply,
  ): FastifyReply {
    if (error instanceof ValidationError) return sendError(reply, 400, badRequest(error.issues));
    const known = error instanceof HttpError ? error : options.translate?.(error);
    if (known)
      return sendError(reply, known.statusCode, {
        error: known.code,
        message: known.message,
        ...(known.issues.length ? { issues: known.issues } : {}),
      });
    const fastifyError = error as FastifyError;
    switch (fastifyError.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE': {
        const rule = `must be at most ${request.routeOptions.bodyLimit ?? '?'} bytes`;
        return sendError(reply, 413, {
          error: 'payload_too_large',
          message: `body: ${rule}`,
          issues: [{ field: 'body', rule }],
        });
      }
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return sendError(reply, 400, badRequest([{ field: 'body', rule: 'must be valid, non-empty JSON' }]));
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return sendError(reply, 415, {
          error: 'unsupported_media_type',
          message: 'content-type: must be application/json',
          issues: [{ field: 'content-type', rule: 'must be application/json' }],
        });
      case 'FST_ERR_VALIDATION': {
        const context = fastifyError.validationContext ?? 'request';
        const issues = (fastifyError.validation ?? []).map((item) => ({
          field: `${context}${item.instancePath.replace(/\//g, '.')}`,
          rule: item.message ?? 'is invalid',
        }));
        return sendError(
          reply,
          400,
          badRequest(issues.length ? issues : [{ field: context, rule: fastifyError.message }]),
        );
      }
    }
    const status = fastifyError.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500)
      return sendError(reply, status, { error: 'bad_request', message: fastifyError.message });
    if (options.isUnavailable?.(error)) {
      request.log.error({ err: error }, 'backend unavailable');
      return sendError(reply, 503, {
        error: 'unavailable',
        message: options.unavailableMessage ?? 'a backend is unavailable; retry later',
        request_id: request.id,
      });
    }
    request.log.error({ err: error }, 'unhandled error');
    return sendError(reply, 500, { error: 'internal', message: 'internal error', request_id: request.id });
  };
}

/**
 * Installs the handler, a 404 that names the route that does not exist, and the refusal of
 * reserved query parameter names (before any other hook, so before authentication too).
 */
export function installErrorHandling(app: FastifyInstance, options: ErrorHandlerOptions): void {
  app.setErrorHandler(createErrorHandler(options));
  app.addHook('onRequest', async (request) => {
    const issues = reservedQueryIssues(request.query, options.queryFieldPrefix);
    if (issues.length > 0) throw new ValidationError(issues);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, {
      error: 'not_found',
      message: `no route ${request.method} ${request.url.split('?')[0]}`,
    }),
  );
}
