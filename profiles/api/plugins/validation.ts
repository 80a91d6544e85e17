/**
 * Schema validation with TypeBox for every route: query strings and path parameters are
 * converted (they arrive as text), bodies are checked as sent (a "5" is not a number). Failures
 * are ValidationErrors naming `body.<field>` or the query parameter, handled centrally.
 */
import type { FastifySchemaCompiler } from 'fastify';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { schemaIssues } from '../../profile-schema';
import { ValidationError } from '../../../core/validation';

export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const convert = httpPart === 'querystring' || httpPart === 'params' || httpPart === 'headers';
  const prefix = httpPart === 'body' ? 'body' : '';
  return (data: unknown) => {
    const value = convert ? Value.Convert(schema, data) : data;
    const issues = schemaIssues(schema, value, prefix);
    if (issues.length > 0) return { error: new ValidationError(issues) };
    return { value };
  };
};
