/**
 * TypeBox schemas validate every route's params, query and body. Query strings and path
 * parameters arrive as text and are converted; bodies are checked as sent. A failure is a
 * ValidationError whose issues read `body.reason: must be at most 1000 characters`.
 */
import type { FastifySchemaCompiler } from 'fastify';
import type { TSchema } from '@sinclair/typebox';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import { ValidationError, type FieldIssue } from '../../core/validation';

function ruleOf(error: ValueError): string {
  const schema = error.schema as Record<string, unknown>;
  if (error.type === ValueErrorType.ObjectRequiredProperty) return 'is required';
  if (typeof schema.errorMessage === 'string') return schema.errorMessage;
  switch (error.type) {
    case ValueErrorType.ObjectAdditionalProperties:
      return 'is not a known field';
    case ValueErrorType.StringMaxLength:
      return `must be at most ${String(schema.maxLength)} characters`;
    case ValueErrorType.StringMinLength:
      return schema.minLength === 1
        ? 'must not be empty'
        : `must be at least ${String(schema.minLength)} characters`;
    case ValueErrorType.StringPattern:
      return `must match ${String(schema.pattern)}`;
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum:
      return `must be >= ${String(schema.minimum)}`;
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum:
      return `must be <= ${String(schema.maximum)}`;
    case ValueErrorType.Integer:
      return 'must be an integer';
    case ValueErrorType.Number:
      return 'must be a number';
    case ValueErrorType.String:
      return 'must be a string';
    case ValueErrorType.Boolean:
      return 'must be true or false';
    case ValueErrorType.Object:
      return 'must be an object';
    case ValueErrorType.Union:
      return 'must be one of the allowed values';
    default:
      return error.message.charAt(0).toLowerCase() + error.message.slice(1);
  }
}

/** `/policy/stepUp` under `body` -> `body.policy.stepUp` (TypeBox puts missing and unknown keys in the path). */
function fieldOf(prefix: string, error: ValueError): string {
  return [prefix, ...error.path.split('/').filter(Boolean)].join('.');
}

export function schemaIssues(schema: TSchema, value: unknown, prefix: string): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const seen = new Set<string>();
  for (const error of Value.Errors(schema, value)) {
    const field = fieldOf(prefix, error);
    if (seen.has(field)) continue; // the first rule per field is the useful one
    seen.add(field);
    issues.push({ field: field || prefix || 'request', rule: ruleOf(error) });
  }
  return issues;
}

const PREFIXES: Record<string, string> = {
  body: 'body',
  querystring: 'query',
  params: 'params',
  headers: 'headers',
};

export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const convert = httpPart === 'querystring' || httpPart === 'params' || httpPart === 'headers';
  const prefix = PREFIXES[httpPart ?? 'body'] ?? 'body';
  return (data: unknown) => {
    // A control without a body means "no options": curl -X POST works without -d '{}'.
    const input = httpPart === 'body' && (data === undefined || data === null) ? {} : data;
    const value = convert ? Value.Convert(schema, Value.Default(schema, input)) : input;
    const issues = schemaIssues(schema, value, prefix);
    if (issues.length > 0) return { error: new ValidationError(issues) };
    return { value };
  };
};
