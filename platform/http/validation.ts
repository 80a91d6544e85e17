/**
 * The TypeBox validator compiler of our Fastify services. Query strings, path parameters and
 * headers arrive as text: they get their schema defaults and are converted; bodies are checked as
 * sent (a "5" is not a number, an unknown field is not dropped). A failure is a ValidationError
 * naming each field and its rule, which the error handler (errors.ts) answers with a 400.
 */
import type { FastifySchemaCompiler } from 'fastify';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ValidationError } from '../../core/validation';
import { schemaIssues } from './schema-issues';

type RequestPart = 'body' | 'querystring' | 'params' | 'headers';

export interface ValidatorOptions {
  /**
   * What a field of each part is named under: `body.reason`, `query.limit`, `params.id` unless a
   * service says otherwise ('' names the bare field: `limit`).
   */
  fieldPrefixes?: Partial<Record<RequestPart, string>>;
  /** Validate a request without a body as `{}` (a control with no options, `curl -X POST`). */
  absentBodyIsEmpty?: boolean;
}

const DEFAULT_PREFIXES: Record<RequestPart, string> = {
  body: 'body',
  querystring: 'query',
  params: 'params',
  headers: 'headers',
};

export function createValidatorCompiler(options: ValidatorOptions = {}): FastifySchemaCompiler<TSchema> {
  const prefixes = { ...DEFAULT_PREFIXES, ...options.fieldPrefixes };
  return ({ schema, httpPart }) => {
    const part = (httpPart ?? 'body') as RequestPart;
    const convert = part !== 'body';
    const prefix = prefixes[part] ?? part;
    return (data: unknown) => {
      const input =
        options.absentBodyIsEmpty && part === 'body' && (data === undefined || data === null) ? {} : data;
      const value = convert ? Value.Convert(schema, Value.Default(schema, input)) : input;
      const issues = schemaIssues(schema, value, prefix);
      if (issues.length > 0) return { error: new ValidationError(issues) };
      return { value };
    };
  };
}
