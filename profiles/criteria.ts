/**
 * Criteria: the only way a caller's words reach a MongoDB filter. Parsed against a whitelist
 * of fields, each with its own operators and value rules; everything else ($where, $function,
 * $expr, $regex, unknown fields, operators inside values) is a ValidationError naming the key.
 * Pure, so it is property-tested on its own.
 */
import { createHash } from 'node:crypto';
import type { Filter } from 'mongodb';
import {
  ACTIVITY_LEVELS,
  ACTION_PATTERN,
  COUNTRY_PATTERN,
  DEVICE_TYPES,
  REGION_PATTERN,
  USER_ID_PATTERN,
  USER_ID_RULE,
} from './profile-schema';
import { FieldReader, isPlainObject, join, ValidationError } from '../core/validation';
import type { StoredProfile } from './store';

export const OPERATORS = ['eq', 'ne', 'in', 'nin', 'gt', 'gte', 'lt', 'lte', 'all', 'exists'] as const;
export type Operator = (typeof OPERATORS)[number];

const EQUALITY: readonly Operator[] = ['eq', 'ne', 'in', 'nin', 'exists'];
const RANGE: readonly Operator[] = ['eq', 'ne', 'in', 'nin', 'gt', 'gte', 'lt', 'lte', 'exists'];
const SET: readonly Operator[] = ['eq', 'ne', 'in', 'nin', 'all'];

type ValueKind =
  | { kind: 'string'; pattern: RegExp; rule: string }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'number'; integer: boolean };

interface FieldSpec {
  /** The stored document's path (user_id is the document _id). */
  path: string;
  value: ValueKind;
  operators: readonly Operator[];
  description: string;
}

const ACTION_REGEX = new RegExp(ACTION_PATTERN);
const ACTION_VALUE: ValueKind = {
  kind: 'string',
  pattern: ACTION_REGEX,
  rule: 'must be an action name (a-z, 0-9, _)',
};
const COUNTRY_VALUE: ValueKind = {
  kind: 'string',
  pattern: new RegExp(COUNTRY_PATTERN),
  rule: 'must be an ISO 3166-1 alpha-2 code such as US',
};
const NUMBER: ValueKind = { kind: 'number', integer: false };

/** The whitelist. Every path here has an index (store.ts creates them from this table). */
export const CRITERIA_FIELDS: Readonly<Record<string, FieldSpec>> = {
  user_id: {
    path: '_id',
    value: { kind: 'string', pattern: new RegExp(USER_ID_PATTERN), rule: USER_ID_RULE },
    operators: ['eq', 'ne', 'in', 'nin'],
    description: 'the profile id',
  },
  device_type: {
    path: 'device_type',
    value: { kind: 'enum', values: DEVICE_TYPES },
    operators: EQUALITY,
    description: 'device type',
  },
  'geo_location.country': {
    path: 'geo_location.country',
    value: COUNTRY_VALUE,
    operators: EQUALITY,
    description: 'country',
  },
  'geo_location.region': {
    path: 'geo_location.region',
    value: { kind: 'string', pattern: new RegExp(REGION_PATTERN), rule: `must match ${REGION_PATTERN}` },
    operators: EQUALITY,
    description: 'region within the country',
  },
  activity_level: {
    path: 'activity_level',
    value: { kind: 'enum', values: ACTIVITY_LEVELS },
    operators: EQUALITY,
    description: 'derived activity level',
  },
  actions: {
    path: 'actions',
    value: ACTION_VALUE,
    operators: SET,
    description: 'the set of actions used (eq: uses it, all: uses all)',
  },
  'resource_intensity.cpu_ms': {
    path: 'resource_intensity.cpu_ms',
    value: NUMBER,
    operators: RANGE,
    description: 'CPU ms per period',
  },
  'resource_intensity.memory_mb': {
    path: 'resource_intensity.memory_mb',
    value: NUMBER,
    operators: RANGE,
    description: 'memory MB',
  },
  'resource_intensity.network_bytes': {
    path: 'resource_intensity.network_bytes',
    value: NUMBER,
    operators: RANGE,
    description: 'bytes per period',
  },
  'resource_intensity.period_ms': {
    path: 'resource_intensity.period_ms',
    value: NUMBER,
    operators: RANGE,
    description: 'period of the resource figures',
  },
  actions_per_minute: {
    path: 'actions_per_minute',
    value: NUMBER,
    operators: RANGE,
    description: 'derived actions per minute',
  },
  pattern_count: {
    path: 'pattern_count',
    value: { kind: 'number', integer: true },
    operators: RANGE,
    description: 'number of entries',
  },
  session_duration_ms: {
    path: 'session_duration_ms',
    value: NUMBER,
    operators: RANGE,
    description: 'session length',
  },
  schema_version: {
    path: 'schema_version',
    value: { kind: 'number', integer: true },
    operators: ['eq', 'ne', 'in', 'nin'],
    description: 'stored format version',
  },
};

/** Short names people type, e.g. `?geo_location=US&behavioral_pattern=high_activity`. */
const ALIASES: Readonly<Record<string, string>> = {
  geo_location: 'geo_location.country',
  country: 'geo_location.country',
  region: 'geo_location.region',
  action: 'actions',
  device: 'device_type',
  cpu_ms: 'resource_intensity.cpu_ms',
  memory_mb: 'resource_intensity.memory_mb',
  network_bytes: 'resource_intensity.network_bytes',
};

/**
 * `behavioral_pattern` is a virtual field: `high_activity` / `medium_activity` /
 * `low_activity` select the derived activity level, an action name selects profiles that use it.
 */
const BEHAVIORAL_PATTERN = 'behavioral_pattern';
const ACTIVITY_PATTERNS: Readonly<Record<string, string>> = {
  high_activity: 'high',
  medium_activity: 'medium',
  low_activity: 'low',
};

export const CRITERIA_KEYS = [...Object.keys(CRITERIA_FIELDS), ...Object.keys(ALIASES), BEHAVIORAL_PATTERN];
const LOGICAL = ['$and', '$or'];
const MAX_LIST = 100;
const MAX_CLAUSES = 20;
const MAX_CONDITIONS = 64;
export const MAX_CRITERIA_TEXT = 8192;

export interface CompiledCriteria {
  filter: Filter<StoredProfile>;
  /** Stable digest of the normalised criteria: binds pagination cursors to their query. */
  digest: string;
}

type Condition = { path: string; operator: Operator; value: unknown };

/** Parses a criteria object (as in `?criteria={...}`) into a whitelisted filter. */
export function parseCriteria(input: unknown, field = 'criteria'): CompiledCriteria {
  const r = new FieldReader();
  const budget = { conditions: 0 };
  const filter = readCriteriaObject(r, input, field, 0, budget);
  r.throwIfAny();
  return compiled(filter ?? {});
}

/** `?criteria=` text: JSON, at most 8 KiB. */
export function parseCriteriaText(text: string, field = 'criteria'): CompiledCriteria {
  if (text.length > MAX_CRITERIA_TEXT)
    throw new ValidationError([{ field, rule: `must be at most ${MAX_CRITERIA_TEXT} characters` }]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ValidationError([{ field, rule: 'must be a JSON object, e.g. {"device_type":"mobile"}' }]);
  }
  return parseCriteria(parsed, field);
}

/**
 * The flat form, `?device_type=mobile,tablet&resource_intensity.cpu_ms=gte:100`: a comma list
 * means `in`, an `op:` prefix picks the operator, a repeated key adds conditions (all must hold),
 * also with the same operator: `?actions=eq:search&actions=eq:checkout` needs both actions.
 */
export function parseFlatCriteria(query: Record<string, string | string[] | undefined>): CompiledCriteria {
  const r = new FieldReader();
  // Layer i holds the i-th occurrence of each key and operator, so each layer is a valid
  // criteria object; a repeated operator goes into the next layer instead of overwriting.
  const layers: { key: string; canonical: string; operators: Record<string, unknown> }[][] = [];
  for (const [key, raw] of Object.entries(query)) {
    if (raw === undefined) continue;
    const canonical = canonicalKey(key);
    if (!canonical) {
      r.fail(key, unknownKeyRule(key));
      continue;
    }
    const spec = canonical === BEHAVIORAL_PATTERN ? undefined : CRITERIA_FIELDS[canonical];
    for (const text of Array.isArray(raw) ? raw : [raw]) {
      const match = /^([a-z]+):(.*)$/s.exec(text);
      const operator =
        match && (OPERATORS as readonly string[]).includes(match[1] as string)
          ? (match[1] as Operator)
          : undefined;
      const body = operator ? (match?.[2] as string) : text;
      const values = body.split(',').map((piece) => flatValue(piece, spec));
      const op: Operator = operator ?? (values.length > 1 ? 'in' : 'eq');
      const value =
        op === 'in' || op === 'nin' || op === 'all' ? values : op === 'exists' ? body === 'true' : values[0];
      let depth = 0;
      for (;;) {
        const layer = (layers[depth] ??= []);
        let entry = layer.find((item) => item.key === key);
        if (!entry) layer.push((entry = { key, canonical, operators: {} }));
        if (!Object.hasOwn(entry.operators, op)) {
          entry.operators[op] = value;
          break;
        }
        depth++;
      }
    }
  }
  r.throwIfAny();
  const conditions: Condition[] = [];
  for (const layer of layers)
    for (const { key, canonical, operators } of layer)
      conditions.push(...readConditions(r, canonical, operators, key));
  if (conditions.length > MAX_CONDITIONS) r.fail('criteria', `has more than ${MAX_CONDITIONS} conditions`);
  r.throwIfAny();
  // Repeated paths become `$and` clauses there, so every condition must hold.
  return compiled(buildFilter(conditions, []));
}

function flatValue(text: string, spec: FieldSpec | undefined): unknown {
  if (spec?.value.kind === 'number') {
    const number = text.trim() === '' ? NaN : Number(text);
    return Number.isFinite(number) ? number : text;
  }
  return text;
}

/** Both forms together: every condition of each must hold. */
export function combineCriteria(parts: CompiledCriteria[]): CompiledCriteria {
  const present = parts.filter((part) => Object.keys(part.filter).length > 0);
  if (present.length === 0) return compiled({});
  if (present.length === 1) return present[0] as CompiledCriteria;
  return compiled({ $and: present.map((part) => part.filter) });
}

function compiled(filter: Filter<StoredProfile>): CompiledCriteria {
  return { filter, digest: createHash('sha256').update(stableJson(filter)).digest('base64url').slice(0, 16) };
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (isPlainObject(value))
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${stableJson(value[key])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

function canonicalKey(key: string): string | undefined {
  if (key === BEHAVIORAL_PATTERN) return key;
  if (Object.hasOwn(CRITERIA_FIELDS, key)) return key;
  if (Object.hasOwn(ALIASES, key)) return ALIASES[key];
  return undefined;
}

function unknownKeyRule(key: string): string {
  if (key === '$where' || key === '$function' || key === '$expr' || key === '$accumulator')
    return 'is not allowed: criteria accept only whitelisted fields and operators, never code or expressions';
  if (key.startsWith('$'))
    return `is not an allowed operator here (allowed at the top level: ${LOGICAL.join(', ')})`;
  return `is not a field criteria can select on (fields: ${CRITERIA_KEYS.join(', ')})`;
}

function readCriteriaObject(
  r: FieldReader,
  input: unknown,
  field: string,
  depth: number,
  budget: { conditions: number },
): Filter<StoredProfile> | undefined {
  const object = r.object(input, field || 'criteria');
  if (!object) return undefined;
  const conditions: Condition[] = [];
  const logical: Filter<StoredProfile>[] = [];
  for (const key of Object.keys(object)) {
    const keyField = join(field, key);
    const value = object[key];
    if (LOGICAL.includes(key)) {
      if (depth > 0) {
        r.fail(keyField, `may only appear at the top level (no nested ${key})`);
        continue;
      }
      if (!Array.isArray(value) || value.length === 0 || value.length > MAX_CLAUSES) {
        r.fail(keyField, `must be a list of 1-${MAX_CLAUSES} criteria objects`);
        continue;
      }
      const clauses = value.map((clause, index) =>
        readCriteriaObject(r, clause, join(keyField, index), depth + 1, budget),
      );
      if (clauses.every((clause) => clause !== undefined)) logical.push({ [key]: clauses });
      continue;
    }
    const canonical = canonicalKey(key);
    if (!canonical) {
      r.fail(keyField, unknownKeyRule(key));
      continue;
    }
    conditions.push(...readConditions(r, canonical, value, keyField));
  }
  budget.conditions += conditions.length;
  if (budget.conditions > MAX_CONDITIONS) {
    r.fail(field || 'criteria', `has more than ${MAX_CONDITIONS} conditions`);
    return undefined;
  }
  return buildFilter(conditions, logical);
}

function readConditions(r: FieldReader, key: string, value: unknown, field: string): Condition[] {
  if (key === BEHAVIORAL_PATTERN) return readBehavioralPattern(r, value, field);
  const spec = CRITERIA_FIELDS[key] as FieldSpec;
  if (!isPlainObject(value)) {
    if (Array.isArray(value)) {
      r.fail(field, 'must be a value or an operator object such as {"in": [...]} (a bare list is ambiguous)');
      return [];
    }
    const checked = readValue(r, spec, value, field);
    return checked === undefined ? [] : [{ path: spec.path, operator: 'eq', value: checked }];
  }
  const entries = Object.entries(value);
  if (entries.length === 0) {
    r.fail(field, 'must name at least one operator');
    return [];
  }
  const conditions: Condition[] = [];
  const seen = new Set<Operator>();
  for (const [rawOperator, operand] of entries) {
    const operatorField = join(field, rawOperator);
    const operator = rawOperator.replace(/^\$/, '') as Operator;
    if (!(OPERATORS as readonly string[]).includes(operator) || !spec.operators.includes(operator)) {
      r.fail(operatorField, `is not an allowed operator for ${key} (allowed: ${spec.operators.join(', ')})`);
      continue;
    }
    if (seen.has(operator)) {
      r.fail(operatorField, `repeats ${operator}`);
      continue;
    }
    seen.add(operator);
    const checked = readOperand(r, spec, operator, operand, operatorField);
    if (checked !== undefined) conditions.push({ path: spec.path, operator, value: checked });
  }
  return conditions;
}

function readOperand(
  r: FieldReader,
  spec: FieldSpec,
  operator: Operator,
  operand: unknown,
  field: string,
): unknown {
  if (operator === 'exists') {
    if (typeof operand !== 'boolean') return r.fail(field, 'must be true or false');
    return operand;
  }
  if (operator === 'in' || operator === 'nin' || operator === 'all') {
    if (!Array.isArray(operand) || operand.length === 0 || operand.length > MAX_LIST)
      return r.fail(field, `must be a list of 1-${MAX_LIST} values`);
    const values = operand.map((item, index) => readValue(r, spec, item, join(field, index)));
    return values.every((item) => item !== undefined) ? values : undefined;
  }
  if (
    (operator === 'gt' || operator === 'gte' || operator === 'lt' || operator === 'lte') &&
    spec.value.kind !== 'number'
  )
    return r.fail(field, 'ranges apply to numeric fields only');
  return readValue(r, spec, operand, field);
}

/** A single value: scalars only, so no operator can hide inside (`{"in": [{"$gt": ""}]}`). */
function readValue(
  r: FieldReader,
  spec: FieldSpec,
  value: unknown,
  field: string,
): string | number | undefined {
  const kind = spec.value;
  if (isPlainObject(value) || Array.isArray(value))
    return r.fail(field, 'must be a single value (objects and lists are not values)');
  switch (kind.kind) {
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value))
        return r.fail(field, 'must be a finite number');
      if (kind.integer && !Number.isInteger(value)) return r.fail(field, 'must be an integer');
      return value;
    case 'enum':
      if (typeof value !== 'string' || !kind.values.includes(value))
        return r.fail(field, `must be one of ${kind.values.join(', ')}`);
      return value;
    case 'string':
      if (typeof value !== 'string' || !kind.pattern.test(value)) return r.fail(field, kind.rule);
      return value;
  }
}

function readBehavioralPattern(r: FieldReader, value: unknown, field: string): Condition[] {
  const describe = `${Object.keys(ACTIVITY_PATTERNS).join(', ')} or an action name`;
  const one = (item: unknown, itemField: string): Condition | undefined => {
    if (typeof item !== 'string') return r.fail(itemField, `must be ${describe}`);
    if (Object.hasOwn(ACTIVITY_PATTERNS, item))
      return { path: 'activity_level', operator: 'eq', value: ACTIVITY_PATTERNS[item] };
    if (ACTION_REGEX.test(item)) return { path: 'actions', operator: 'eq', value: item };
    return r.fail(itemField, `must be ${describe}`);
  };
  if (isPlainObject(value)) {
    const keys = Object.keys(value);
    if (keys.length !== 1 || !['eq', '$eq', 'all', '$all'].includes(keys[0] as string)) {
      r.fail(field, 'accepts a value, {"eq": value} or {"all": [values]} (every listed pattern must hold)');
      return [];
    }
    const operand = value[keys[0] as string];
    if (keys[0]?.endsWith('all')) {
      if (!Array.isArray(operand) || operand.length === 0 || operand.length > MAX_LIST) {
        r.fail(join(field, keys[0]), `must be a list of 1-${MAX_LIST} values`);
        return [];
      }
      return operand
        .map((item, index) => one(item, join(join(field, keys[0] as string), index)))
        .filter((c): c is Condition => !!c);
    }
    const condition = one(operand, join(field, keys[0] as string));
    return condition ? [condition] : [];
  }
  const condition = one(value, field);
  return condition ? [condition] : [];
}

/** Conditions on distinct paths merge into one object; repeated paths go into `$and`. */
function buildFilter(conditions: Condition[], logical: Filter<StoredProfile>[]): Filter<StoredProfile> {
  const byPath = new Map<string, Record<string, unknown>>();
  const extra: Filter<StoredProfile>[] = [];
  for (const { path, operator, value } of conditions) {
    const slot = byPath.get(path);
    const mongoOperator = `$${operator}`;
    if (!slot) byPath.set(path, { [mongoOperator]: value });
    else if (mongoOperator in slot) extra.push({ [path]: { [mongoOperator]: value } });
    else slot[mongoOperator] = value;
  }
  const filter: Record<string, unknown> = {};
  for (const [path, operators] of byPath) {
    const keys = Object.keys(operators);
    // Plain equality keeps the simple shape, which FerretDB pushes down for _id.
    filter[path] = keys.length === 1 && keys[0] === '$eq' ? operators.$eq : operators;
  }
  const and = [...extra, ...logical];
  if (and.length === 0) return filter;
  if (Object.keys(filter).length === 0 && and.length === 1) return and[0] as Filter<StoredProfile>;
  return { ...filter, $and: and };
}
