/** Query-string pieces shared by the read routes: criteria (both forms), fields, cursors. */
import { Type } from '@sinclair/typebox';
import { combineCriteria, parseCriteriaText, parseFlatCriteria, type CompiledCriteria } from '../../criteria';
import { PROFILE_FIELDS } from '../../profile-schema';
import { ValidationError } from '../../../core/validation';

export const CriteriaQuery = {
  criteria: Type.Optional(
    Type.String({
      maxLength: 8192,
      description:
        'JSON criteria, e.g. {"device_type":{"in":["mobile","tablet"]},"resource_intensity.cpu_ms":{"gte":100}}. Flat parameters (?geo_location=US&behavioral_pattern=high_activity) may be used instead or as well.',
    }),
  ),
};

/** Any other query parameter is a flat criterion, checked by the criteria parser. */
export const flatCriteriaValues = Type.Union([
  Type.String({ maxLength: 1024 }),
  Type.Array(Type.String({ maxLength: 1024 }), { maxItems: 20 }),
]);

export function criteriaOf(query: Record<string, unknown>, reserved: readonly string[]): CompiledCriteria {
  // No prototype: a parameter named like an Object member stays a parameter (and is refused by name).
  const flat = Object.create(null) as Record<string, string | string[]>;
  for (const [key, value] of Object.entries(query)) {
    if (key === 'criteria' || reserved.includes(key)) continue;
    flat[key] = value as string | string[];
  }
  const parts = [parseFlatCriteria(flat)];
  if (typeof query.criteria === 'string') parts.unshift(parseCriteriaText(query.criteria));
  return combineCriteria(parts);
}

export function fieldsOf(text: string | undefined): string[] | undefined {
  if (text === undefined || text === '') return undefined;
  const fields = text.split(',').map((field) => field.trim());
  const unknown = fields.filter((field) => !(PROFILE_FIELDS as string[]).includes(field));
  if (unknown.length > 0)
    throw new ValidationError(
      unknown.map((field) => ({
        field: 'fields',
        rule: `${field} is not a profile field (fields: ${PROFILE_FIELDS.join(', ')})`,
      })),
    );
  return fields;
}

/** Opaque page cursor: the last user_id, bound to the criteria it was issued for. */
export function encodeCursor(after: string, criteria: CompiledCriteria): string {
  return Buffer.from(JSON.stringify({ a: after, d: criteria.digest })).toString('base64url');
}

export function decodeCursor(cursor: string | undefined, criteria: CompiledCriteria): string | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    decoded = undefined;
  }
  const value = decoded as { a?: unknown; d?: unknown } | undefined;
  if (typeof value?.a !== 'string' || typeof value.d !== 'string')
    throw new ValidationError([{ field: 'cursor', rule: 'is not a cursor this API issued' }]);
  if (value.d !== criteria.digest)
    throw new ValidationError([
      { field: 'cursor', rule: 'was issued for other criteria; start again without a cursor' },
    ]);
  return value.a;
}
