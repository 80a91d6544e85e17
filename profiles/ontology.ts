/**
 * The action ontology: the standard action names and how each becomes an HTTP request.
 * Loading validates a user-supplied file field by field; rendering is a pure function that the
 * traffic generator calls for every profile entry, so it never guesses: a missing or ill-typed
 * parameter is a ValidationError naming `data.<param>`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { hasJsonField } from '../core/json';
import {
  FieldReader,
  isPlainObject,
  join,
  ValidationError,
  type FieldIssue,
  type Json,
} from '../core/validation';

export type Scalar = string | number | boolean | null;
export type ParamType = 'string' | 'integer' | 'number' | 'boolean' | 'id';
export const PARAM_TYPES: readonly ParamType[] = ['string', 'integer', 'number', 'boolean', 'id'];
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export const ACTION_NAME_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;
export const PARAM_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const HEADER_NAME_PATTERN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;
const VERSION_PATTERN = /^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$/;
/** An `id` parameter: what fits in one path segment without encoding, or a non-negative integer. */
const ID_PATTERN = /^[A-Za-z0-9._~-]{1,128}$/;
const MAX_BODY_BYTES = 10 * 1024 * 1024;

export interface ParamSpec {
  type: ParamType;
  /** Absent and no default: a template that uses it makes it required. */
  default?: Scalar;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  min?: number;
  max?: number;
  description?: string;
}

export type BodySpec =
  | { kind: 'json'; template: Json }
  /** A payload of `size` bytes (template of an integer parameter), e.g. an upload. */
  | { kind: 'bytes'; size: string; contentType: string };

export interface ResponseExpectation {
  /** Any of these status codes passes. */
  status: number[];
  /** A dotted path that must exist in the JSON response body, e.g. `order_id` or `cart.items`. */
  json?: string;
}

export interface ActionSpec {
  name: string;
  description: string;
  request: {
    method: HttpMethod;
    path: string;
    query: Record<string, string>;
    headers: Record<string, string>;
    body?: BodySpec;
  };
  params: Record<string, ParamSpec>;
  expect: ResponseExpectation;
}

export interface Ontology {
  name: string;
  version: string;
  description: string;
  /** Headers sent with every request (an action's own headers win). */
  headers: Record<string, string>;
  actions: Record<string, ActionSpec>;
}

export interface RenderedRequest {
  action: string;
  method: HttpMethod;
  /** Path and query string, e.g. `/search?q=red%20shoes`; the caller prefixes the target's base URL. */
  path: string;
  headers: Record<string, string>;
  body?: string;
  expect: ResponseExpectation;
}

export const DEFAULT_ONTOLOGY_FILE = path.join(__dirname, 'ontology', 'default.yaml');

// ---------------------------------------------------------------------------------------------
// Templates

interface Placeholder {
  name: string;
  /** `{+name}`: keeps `/` (reserved expansion, RFC 6570 style). */
  reserved: boolean;
}

const PLACEHOLDER = /\{(\+?)([^{}]*)\}/g;

function placeholdersOf(template: string): Placeholder[] {
  return [...template.matchAll(PLACEHOLDER)].map((match) => ({
    name: match[2] as string,
    reserved: match[1] === '+',
  }));
}

/** `"{name}"` alone: the JSON body keeps the parameter's type (a number stays a number). */
function wholePlaceholder(template: string): string | undefined {
  const match = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(template);
  return match?.[1];
}

function templateStrings(value: Json, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) value.forEach((item) => templateStrings(item, out));
  else if (isPlainObject(value)) Object.values(value).forEach((item) => templateStrings(item, out));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Loading

/** Reads and validates an ontology file (JSON or YAML, by extension; YAML otherwise). */
export function loadOntology(file: string): Ontology {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ValidationError([
      { field: 'ontology', rule: `cannot read ${file}: ${(error as Error).message}` },
    ]);
  }
  let document: unknown;
  try {
    document = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new ValidationError([
      {
        field: 'ontology',
        rule: `${file} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message}`,
      },
    ]);
  }
  return parseOntology(document);
}

let defaultOntologyCache: Ontology | undefined;

export function defaultOntology(): Ontology {
  defaultOntologyCache ??= loadOntology(DEFAULT_ONTOLOGY_FILE);
  return defaultOntologyCache;
}

/** Validates an ontology document; every issue names its field, e.g. `actions.search.request.path`. */
export function parseOntology(input: unknown): Ontology {
  const r = new FieldReader();
  const root = r.object(input, 'ontology');
  if (!root) throw new ValidationError(r.issues);
  r.onlyKeys(root, ['name', 'version', 'description', 'headers', 'actions'], '');
  const name = r.string(
    root.name,
    'name',
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
    'must be 1-64 of A-Z a-z 0-9 . _ -',
  );
  const version = r.string(
    root.version,
    'version',
    VERSION_PATTERN,
    'must be a semantic version such as 1.0.0',
  );
  const description = root.description === undefined ? '' : (r.string(root.description, 'description') ?? '');
  const headers = readHeaders(r, root.headers, 'headers', new Set());
  const actionsIn = r.object(root.actions, 'actions');
  const actions: Record<string, ActionSpec> = {};
  if (actionsIn) {
    if (Object.keys(actionsIn).length === 0) r.fail('actions', 'must define at least one action');
    for (const [actionName, spec] of Object.entries(actionsIn)) {
      const field = join('actions', actionName);
      if (!ACTION_NAME_PATTERN.test(actionName)) {
        r.fail(field, 'action names must match ^[a-z][a-z0-9_]{0,63}$');
        continue;
      }
      const action = readAction(r, actionName, spec, field);
      if (action) actions[actionName] = action;
    }
  }
  r.throwIfAny();
  return { name: name!, version: version!, description, headers, actions };
}

function readHeaders(
  r: FieldReader,
  value: unknown,
  field: string,
  params: Set<string> | undefined,
): Record<string, string> {
  if (value === undefined) return {};
  const object = r.object(value, field);
  const headers: Record<string, string> = {};
  for (const [name, template] of Object.entries(object ?? {})) {
    const headerField = join(field, name);
    if (!HEADER_NAME_PATTERN.test(name)) r.fail(headerField, 'is not a valid HTTP header name');
    else if (typeof template !== 'string' || /[\r\n\0]/.test(template))
      r.fail(headerField, 'must be a string without line breaks');
    else headers[name.toLowerCase()] = template;
    if (params && typeof template === 'string') checkPlaceholders(r, template, headerField, params);
  }
  return headers;
}

function readAction(r: FieldReader, name: string, value: unknown, field: string): ActionSpec | undefined {
  const spec = r.object(value, field);
  if (!spec) return undefined;
  r.onlyKeys(spec, ['description', 'request', 'params', 'expect'], field);
  const description =
    spec.description === undefined ? '' : (r.string(spec.description, join(field, 'description')) ?? '');

  const params: Record<string, ParamSpec> = {};
  const paramsIn = spec.params === undefined ? {} : r.object(spec.params, join(field, 'params'));
  for (const [paramName, paramSpec] of Object.entries(paramsIn ?? {})) {
    const paramField = join(join(field, 'params'), paramName);
    if (!PARAM_NAME_PATTERN.test(paramName)) {
      r.fail(paramField, 'parameter names must match ^[A-Za-z_][A-Za-z0-9_]{0,63}$');
      continue;
    }
    const param = readParam(r, paramSpec, paramField);
    if (param) params[paramName] = param;
  }
  const declared = new Set(Object.keys(params));

  const requestField = join(field, 'request');
  const request = r.object(spec.request, requestField);
  let rendered: ActionSpec['request'] | undefined;
  if (request) {
    r.onlyKeys(request, ['method', 'path', 'query', 'headers', 'body'], requestField);
    const method = r.oneOf(request.method, join(requestField, 'method'), HTTP_METHODS);
    const pathTemplate = r.string(request.path, join(requestField, 'path'));
    if (pathTemplate !== undefined) {
      if (!pathTemplate.startsWith('/') && !pathTemplate.startsWith('{+'))
        r.fail(join(requestField, 'path'), 'must start with / (or with a {+param} that holds a path)');
      if (/[?#\s]/.test(pathTemplate.replace(PLACEHOLDER, '')))
        r.fail(
          join(requestField, 'path'),
          'must not contain ?, # or spaces: put query parameters under query',
        );
      checkPlaceholders(r, pathTemplate, join(requestField, 'path'), declared);
    }
    const query: Record<string, string> = {};
    const queryIn = request.query === undefined ? {} : r.object(request.query, join(requestField, 'query'));
    for (const [key, template] of Object.entries(queryIn ?? {})) {
      const queryField = join(join(requestField, 'query'), key);
      if (typeof template !== 'string') r.fail(queryField, 'must be a string template');
      else {
        checkPlaceholders(r, template, queryField, declared);
        query[key] = template;
      }
    }
    const headers = readHeaders(r, request.headers, join(requestField, 'headers'), declared);
    const body =
      request.body === undefined ? undefined : readBody(r, request.body, join(requestField, 'body'), params);
    if (body && (method === 'GET' || method === 'HEAD'))
      r.fail(join(requestField, 'body'), `must be absent for ${method} requests`);
    if (method && pathTemplate)
      rendered = { method, path: pathTemplate, query, headers, ...(body ? { body } : {}) };
  }

  const expect = readExpect(r, spec.expect, join(field, 'expect'));
  if (!rendered || !expect) return undefined;
  return { name, description, request: rendered, params, expect };
}

function readParam(r: FieldReader, value: unknown, field: string): ParamSpec | undefined {
  const spec = r.object(value, field);
  if (!spec) return undefined;
  r.onlyKeys(
    spec,
    ['type', 'default', 'pattern', 'minLength', 'maxLength', 'min', 'max', 'description'],
    field,
  );
  const type = r.oneOf(spec.type, join(field, 'type'), PARAM_TYPES);
  const param: ParamSpec = { type: type ?? 'string' };
  if (spec.pattern !== undefined) {
    const pattern = r.string(spec.pattern, join(field, 'pattern'));
    if (pattern !== undefined) {
      try {
        new RegExp(pattern, 'u');
        param.pattern = pattern;
      } catch {
        r.fail(join(field, 'pattern'), 'must be a valid regular expression');
      }
    }
  }
  for (const key of ['minLength', 'maxLength'] as const) {
    if (spec[key] !== undefined)
      param[key] = r.number(spec[key], join(field, key), { min: 0, max: 1_000_000, integer: true });
  }
  for (const key of ['min', 'max'] as const) {
    if (spec[key] !== undefined) param[key] = r.number(spec[key], join(field, key), {});
  }
  if (spec.description !== undefined)
    param.description = r.string(spec.description, join(field, 'description'));
  if (spec.default !== undefined) {
    const issues = checkParamValue(param, spec.default, join(field, 'default'));
    for (const issue of issues) r.fail(issue.field, issue.rule);
    if (issues.length === 0) param.default = spec.default as Scalar;
  }
  return type ? param : undefined;
}

function readBody(
  r: FieldReader,
  value: unknown,
  field: string,
  params: Record<string, ParamSpec>,
): BodySpec | undefined {
  const body = r.object(value, field);
  if (!body) return undefined;
  const declared = new Set(Object.keys(params));
  if ('json' in body) {
    r.onlyKeys(body, ['json'], field);
    const template = body.json as Json;
    for (const text of templateStrings(template)) {
      // A whole-value placeholder keeps the parameter's type in the JSON body.
      const whole = wholePlaceholder(text);
      if (whole !== undefined) {
        if (!declared.has(whole))
          r.fail(join(field, 'json'), `uses {${whole}} which is not a declared param`);
      } else checkPlaceholders(r, text, join(field, 'json'), declared);
    }
    return { kind: 'json', template };
  }
  if ('bytes' in body) {
    r.onlyKeys(body, ['bytes', 'content_type'], field);
    const size = r.string(body.bytes, join(field, 'bytes'));
    const whole = size === undefined ? undefined : wholePlaceholder(size);
    if (size !== undefined && whole === undefined && !/^\d+$/.test(size))
      r.fail(join(field, 'bytes'), 'must be a byte count or a single {param} of type integer');
    if (whole !== undefined && params[whole]?.type !== 'integer')
      r.fail(join(field, 'bytes'), `uses {${whole}} which must be a declared param of type integer`);
    const contentType =
      body.content_type === undefined
        ? 'application/octet-stream'
        : r.string(body.content_type, join(field, 'content_type'));
    if (size === undefined || contentType === undefined) return undefined;
    return { kind: 'bytes', size, contentType };
  }
  r.fail(field, 'must have either json (a JSON template) or bytes (a payload size)');
  return undefined;
}

function readExpect(r: FieldReader, value: unknown, field: string): ResponseExpectation | undefined {
  const expect = r.object(value, field);
  if (!expect) return undefined;
  r.onlyKeys(expect, ['status', 'json'], field);
  const statusIn = expect.status;
  const status: number[] = [];
  if (!Array.isArray(statusIn) || statusIn.length === 0)
    r.fail(join(field, 'status'), 'must be a non-empty list of HTTP status codes');
  else
    statusIn.forEach((code, index) => {
      const value = r.number(code, join(join(field, 'status'), index), { min: 100, max: 599, integer: true });
      if (value !== undefined) status.push(value);
    });
  const json =
    expect.json === undefined
      ? undefined
      : r.string(
          expect.json,
          join(field, 'json'),
          /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/,
          'must be a dotted field path such as order_id or cart.items',
        );
  return { status, ...(json ? { json } : {}) };
}

/** Every placeholder must name a declared param (required or defaulted is decided per use). */
function checkPlaceholders(r: FieldReader, template: string, field: string, declared: Set<string>): void {
  const unbalanced = template.replace(PLACEHOLDER, '');
  if (/[{}]/.test(unbalanced)) r.fail(field, 'has an unbalanced { or }');
  for (const placeholder of placeholdersOf(template)) {
    if (!PARAM_NAME_PATTERN.test(placeholder.name))
      r.fail(field, `has an invalid placeholder {${placeholder.name}}`);
    else if (!declared.has(placeholder.name))
      r.fail(field, `uses {${placeholder.name}} which is not a declared param`);
  }
}

// ---------------------------------------------------------------------------------------------
// Checking data and rendering requests

/** Issues with one parameter value; `field` is where the value came from, e.g. `data.quantity`. */
export function checkParamValue(param: ParamSpec, value: unknown, field: string): FieldIssue[] {
  const fail = (rule: string): FieldIssue[] => [{ field, rule }];
  switch (param.type) {
    case 'string':
      if (typeof value !== 'string') return fail('must be a string');
      break;
    case 'id':
      if (typeof value === 'number') {
        if (!Number.isSafeInteger(value) || value < 0)
          return fail('must be a non-negative integer or an id string');
        return [];
      }
      if (typeof value !== 'string' || !ID_PATTERN.test(value))
        return fail('must be an id: 1-128 of A-Z a-z 0-9 . _ ~ - (or a non-negative integer)');
      break;
    case 'integer':
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) return fail('must be an integer');
      break;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) return fail('must be a finite number');
      break;
    case 'boolean':
      if (typeof value !== 'boolean') return fail('must be true or false');
      break;
  }
  if (typeof value === 'string') {
    if (param.minLength !== undefined && value.length < param.minLength)
      return fail(`must be at least ${param.minLength} characters`);
    if (param.maxLength !== undefined && value.length > param.maxLength)
      return fail(`must be at most ${param.maxLength} characters`);
    if (param.pattern !== undefined && !new RegExp(param.pattern, 'u').test(value))
      return fail(`must match ${param.pattern}`);
  }
  if (typeof value === 'number') {
    if (param.min !== undefined && value < param.min) return fail(`must be >= ${param.min}`);
    if (param.max !== undefined && value > param.max) return fail(`must be <= ${param.max}`);
  }
  return [];
}

export function actionNames(ontology: Ontology): string[] {
  return Object.keys(ontology.actions);
}

/**
 * Issues with a profile entry's `data` for `action` (unknown action, missing required or
 * ill-typed parameters, unknown keys). `field` prefixes the issue fields, e.g.
 * `behavioral_patterns[3]`.
 */
/** The action's spec; undefined for a name the ontology lacks, `constructor` and the like included. */
export function actionSpec(ontology: Ontology, action: string): ActionSpec | undefined {
  return Object.hasOwn(ontology.actions, action) ? ontology.actions[action] : undefined;
}

export function checkActionData(
  ontology: Ontology,
  action: string,
  data: Record<string, unknown> | undefined,
  field = '',
): FieldIssue[] {
  const spec = actionSpec(ontology, action);
  if (!spec) {
    return [
      {
        field: join(field, 'action'),
        rule: `must be an action of ontology ${ontology.name}@${ontology.version} (${actionNames(ontology).join(', ')})`,
      },
    ];
  }
  const issues: FieldIssue[] = [];
  const dataField = join(field, 'data');
  const values = data ?? {};
  for (const key of Object.keys(values)) {
    if (!Object.hasOwn(spec.params, key))
      issues.push({
        field: join(dataField, key),
        rule: `is not a parameter of action ${action} (known: ${Object.keys(spec.params).join(', ') || 'none'})`,
      });
  }
  for (const [name, param] of Object.entries(spec.params)) {
    const value = values[name];
    if (value === undefined) {
      if (param.default === undefined && isRequired(spec, name))
        issues.push({
          field: join(dataField, name),
          rule: `is required by action ${action} (${describeUse(spec, name)})`,
        });
      continue;
    }
    issues.push(...checkParamValue(param, value, join(dataField, name)));
  }
  if (issues.length === 0) {
    const pathname = renderPath(spec, valuesOf(spec, values));
    if (pathname.split('/').some((segment) => segment === '..' || segment === '.'))
      issues.push({
        field: dataField,
        rule: `renders the path ${pathname}, which contains . or .. segments`,
      });
  }
  return issues;
}

function valuesOf(spec: ActionSpec, data: Record<string, unknown>): Record<string, Scalar> {
  const values: Record<string, Scalar> = {};
  for (const [name, param] of Object.entries(spec.params)) {
    const value = data[name] ?? param.default;
    if (value !== undefined) values[name] = value as Scalar;
  }
  return values;
}

function renderPath(spec: ActionSpec, values: Record<string, Scalar>): string {
  const pathname = spec.request.path.replace(PLACEHOLDER, (_match, plus: string, name: string) =>
    plus === '+' ? encodeReserved(String(values[name])) : encodeURIComponent(String(values[name])),
  );
  return pathname.startsWith('/') ? pathname : `/${pathname}`;
}

/** A param without a default is required wherever a template uses it: a request is never sent with a hole in it. */
function isRequired(spec: ActionSpec, name: string): boolean {
  const uses = (template: string) =>
    placeholdersOf(template).some((placeholder) => placeholder.name === name);
  const body = spec.request.body;
  return (
    uses(spec.request.path) ||
    Object.values(spec.request.query).some(uses) ||
    Object.values(spec.request.headers).some(uses) ||
    (body?.kind === 'bytes' && uses(body.size)) ||
    (body?.kind === 'json' && templateStrings(body.template).some(uses))
  );
}

function describeUse(spec: ActionSpec, name: string): string {
  if (spec.request.path.includes(`{${name}}`) || spec.request.path.includes(`{+${name}}`))
    return `path ${spec.request.path}`;
  return `${spec.request.method} ${spec.request.path}`;
}

/**
 * Turns one profile entry into an HTTP request. Pure and total: returns the request or throws a
 * ValidationError naming the offending `data.<param>` (or `action`).
 */
export function renderRequest(
  ontology: Ontology,
  action: string,
  data: Record<string, unknown> | undefined = {},
): RenderedRequest {
  const issues = checkActionData(ontology, action, data);
  if (issues.length > 0) throw new ValidationError(issues);
  const spec = actionSpec(ontology, action) as ActionSpec;
  const values = valuesOf(spec, data);
  const text = (name: string) => String(values[name]);

  const fill = (template: string, encode: (value: string, reserved: boolean) => string) =>
    template.replace(PLACEHOLDER, (_match, plus: string, name: string) => encode(text(name), plus === '+'));

  const pathname = renderPath(spec, values);

  const query = new URLSearchParams();
  for (const [key, template] of Object.entries(spec.request.query)) {
    const whole = wholePlaceholder(template);
    if (whole !== undefined && values[whole] === undefined) continue;
    if (placeholdersOf(template).some((placeholder) => values[placeholder.name] === undefined)) continue;
    query.append(
      key,
      fill(template, (value) => value),
    );
  }
  const queryString = query.toString();

  const headers: Record<string, string> = { ...ontology.headers };
  for (const [name, template] of Object.entries(spec.request.headers)) {
    const value = fill(template, (piece) => piece);
    if (/[\r\n\0]/.test(value))
      throw new ValidationError([{ field: 'data', rule: `renders header ${name} with a line break` }]);
    headers[name] = value;
  }

  let body: string | undefined;
  if (spec.request.body?.kind === 'json') {
    body = JSON.stringify(
      fillJson(spec.request.body.template, values, (template) => fill(template, (piece) => piece)),
    );
    headers['content-type'] ??= 'application/json';
  } else if (spec.request.body?.kind === 'bytes') {
    const sizeText = fill(spec.request.body.size, (piece) => piece);
    const size = Math.min(Number(sizeText), MAX_BODY_BYTES);
    body = filler(size);
    headers['content-type'] ??= spec.request.body.contentType;
  }

  return {
    action,
    method: spec.request.method,
    path: queryString ? `${pathname}?${queryString}` : pathname,
    headers,
    ...(body !== undefined ? { body } : {}),
    expect: spec.expect,
  };
}

/** `/` stays, everything else that is not unreserved is percent-encoded. */
function encodeReserved(value: string): string {
  return value
    .split('/')
    .map((segment) => encodeURIComponent(segment))
    .join('/');
}

function fillJson(
  template: Json,
  values: Record<string, Scalar>,
  fill: (template: string) => string,
): Json | undefined {
  if (typeof template === 'string') {
    const whole = wholePlaceholder(template);
    if (whole !== undefined) return values[whole];
    return fill(template);
  }
  if (Array.isArray(template)) {
    return template
      .map((item) => fillJson(item, values, fill))
      .filter((item): item is Json => item !== undefined);
  }
  if (isPlainObject(template)) {
    const out: Record<string, Json> = {};
    for (const [key, item] of Object.entries(template)) {
      const value = fillJson(item, values, fill);
      if (value !== undefined) out[key] = value;
    }
    return out;
  }
  return template;
}

const FILLER_BLOCK = 'canary-upload-payload-'.repeat(64);

/** Deterministic payload of exactly `size` bytes (ASCII). */
function filler(size: number): string {
  if (size <= 0) return '';
  return FILLER_BLOCK.repeat(Math.ceil(size / FILLER_BLOCK.length)).slice(0, size);
}

export interface ResponseCheck {
  ok: boolean;
  /** Why it failed, e.g. `status 500 not in [200, 201]` or `JSON field order_id is missing`. */
  reason?: string;
}

/** The check an action's response must pass: an expected status and, optionally, a JSON field. */
export function checkResponse(
  expect: ResponseExpectation,
  response: { status: number; body?: string },
): ResponseCheck {
  if (!expect.status.includes(response.status))
    return { ok: false, reason: `status ${response.status} not in [${expect.status.join(', ')}]` };
  if (!expect.json) return { ok: true };
  let document: unknown;
  try {
    document = JSON.parse(response.body ?? '');
  } catch {
    return { ok: false, reason: `body is not JSON (expected field ${expect.json})` };
  }
  if (!hasJsonField(document, expect.json.split('.')))
    return { ok: false, reason: `JSON field ${expect.json} is missing` };
  return { ok: true };
}
