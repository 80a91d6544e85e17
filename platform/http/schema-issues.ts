/**
 * TypeBox errors as our `field: rule` issues, for every HTTP service and for the checks that run
 * outside HTTP (a profile written by the CLI). A schema may say its own rule in words with
 * `errorMessage` (e.g. what a rollout id looks like) instead of showing its pattern.
 */
import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import { join, type FieldIssue } from '../../core/validation';

const MAX_ISSUES = 50;

const checks = new WeakMap<TSchema, TypeCheck<TSchema>>();

function compiled<T extends TSchema>(schema: T): TypeCheck<T> {
  let check = checks.get(schema);
  if (!check) {
    check = TypeCompiler.Compile(schema);
    checks.set(schema, check);
  }
  return check as TypeCheck<T>;
}

/** TypeBox path `/behavioral_patterns/0/action` as our dotted field `behavioral_patterns[0].action`. */
export function fieldOfPointer(pointer: string, prefix = ''): string {
  let field = prefix;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    field = /^\d+$/.test(key) ? join(field, Number(key)) : join(field, key);
  }
  return field || prefix || 'body';
}

function ruleOf(error: ValueError): string {
  const schema = error.schema as Record<string, unknown>;
  if (error.type === ValueErrorType.ObjectRequiredProperty) return 'is required';
  if (typeof schema.errorMessage === 'string') return schema.errorMessage;
  switch (error.type) {
    case ValueErrorType.ObjectAdditionalProperties:
      return 'is not a known field';
    case ValueErrorType.String:
      return 'must be a string';
    case ValueErrorType.Number:
      return 'must be a number';
    case ValueErrorType.Integer:
      return 'must be an integer';
    case ValueErrorType.Boolean:
      return 'must be true or false';
    case ValueErrorType.Object:
      return 'must be an object';
    case ValueErrorType.Array:
      return 'must be an array';
    case ValueErrorType.StringPattern:
      return `must match ${String(schema.pattern)}`;
    case ValueErrorType.StringMaxLength:
      return `must be at most ${String(schema.maxLength)} characters`;
    case ValueErrorType.StringMinLength:
      return schema.minLength === 1
        ? 'must not be empty'
        : `must be at least ${String(schema.minLength)} characters`;
    case ValueErrorType.NumberMinimum:
    case ValueErrorType.IntegerMinimum:
      return `must be >= ${String(schema.minimum)}`;
    case ValueErrorType.NumberMaximum:
    case ValueErrorType.IntegerMaximum:
      return `must be <= ${String(schema.maximum)}`;
    case ValueErrorType.NumberExclusiveMinimum:
    case ValueErrorType.IntegerExclusiveMinimum:
      return `must be > ${String(schema.exclusiveMinimum)}`;
    case ValueErrorType.NumberExclusiveMaximum:
    case ValueErrorType.IntegerExclusiveMaximum:
      return `must be < ${String(schema.exclusiveMaximum)}`;
    case ValueErrorType.ArrayMaxItems:
      return `must have at most ${String(schema.maxItems)} items`;
    case ValueErrorType.ArrayMinItems:
      return `must have at least ${String(schema.minItems)} item(s)`;
    case ValueErrorType.ObjectMaxProperties:
      return `must have at most ${String(schema.maxProperties)} keys`;
    case ValueErrorType.ObjectMinProperties:
      return `must have at least ${String(schema.minProperties)} key(s)`;
    case ValueErrorType.Literal:
      return `must be ${JSON.stringify(schema.const)}`;
    case ValueErrorType.Union: {
      const literals = (schema.anyOf as Record<string, unknown>[] | undefined)?.map((option) => option.const);
      if (literals && literals.every((literal) => typeof literal === 'string'))
        return `must be one of ${literals.join(', ')}`;
      return `must be ${describeUnion(schema)}`;
    }
    default:
      return error.message.replace(/^Expected/, 'must be').toLowerCase();
  }
}

function describeUnion(schema: Record<string, unknown>): string {
  const options = (schema.anyOf as { type?: string }[] | undefined) ?? [];
  return options.map((option) => option.type ?? 'value').join(' or ');
}

/**
 * Structural issues of `value` against `schema`, one per field (the first rule each breaks),
 * fields named under `prefix` (`body` gives `body.user_id`). Union members are explained by the
 * member whose JSON type matches the value.
 */
export function schemaIssues(schema: TSchema, value: unknown, prefix = ''): FieldIssue[] {
  const check = compiled(schema);
  if (check.Check(value)) return [];
  const issues: FieldIssue[] = [];
  const seen = new Set<string>();
  for (const error of check.Errors(value)) {
    const field = fieldOfPointer(error.path, prefix);
    // A union reports itself and each member: keep the member's precise error when there is one.
    if (seen.has(field)) continue;
    const member =
      error.type === ValueErrorType.Union && typeof error.schema.errorMessage !== 'string'
        ? matchingMember(error.schema, error.value)
        : undefined;
    const inner = member ? schemaIssues(member, error.value, field) : [];
    if (inner.length > 0) {
      for (const issue of inner) {
        if (seen.has(issue.field)) continue;
        seen.add(issue.field);
        issues.push(issue);
      }
      continue;
    }
    seen.add(field);
    issues.push({ field, rule: ruleOf(error) });
    if (issues.length >= MAX_ISSUES) break;
  }
  return issues;
}

function matchingMember(union: TSchema, value: unknown): TSchema | undefined {
  const members = ((union as { anyOf?: TSchema[] }).anyOf ?? []) as (TSchema & {
    type?: string;
    const?: unknown;
  })[];
  if (members.some((member) => 'const' in member)) return undefined;
  const kind = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
  return members.find((member) => member.type === kind || (member.type === 'integer' && kind === 'number'));
}
