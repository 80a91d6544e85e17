/**
 * Where a rollout's samples come from: `analysis.options.sources`, validated field by field.
 * Pure: the factory in index.ts builds the sources from what this returns.
 */
import { RESOURCE_METRICS } from '../analysis/config';
import type { TargetRole } from '../rollout/verdict';
import { type FieldReader, isPlainObject, join } from '../core/validation';
import { TEMPLATE_SETS, TEMPLATE_VARIABLES, templateVariables, type QuerySpec } from './templates';

export type SourceSpec =
  | { kind: 'probe-results' }
  | {
      kind: 'prometheus';
      url: string;
      queries: QuerySpec[];
      labels: Record<TargetRole, string>;
      stepMs: number;
      timeoutMs: number;
      maxBodyBytes?: number;
    }
  | { kind: 'scrape'; path: string; timeoutMs: number; maxBodyBytes?: number };

export const SOURCE_KINDS = ['probe-results', 'prometheus', 'scrape'] as const;
const URL_PATTERN = /^https?:\/\/[^\s/?#]+(\/[^\s]*)?$/;
const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$/;

/**
 * Reads `analysis.sources`. Without it: probe results, plus a direct /metrics scrape when the
 * analysis compares a resource metric (RESOURCE_METRICS; there is no Prometheus to ask).
 */
export function readSources(
  r: FieldReader,
  value: unknown,
  metricNames: readonly string[],
): SourceSpec[] | undefined {
  if (value === undefined) {
    const sources: SourceSpec[] = [{ kind: 'probe-results' }];
    if (metricNames.some((name) => RESOURCE_METRICS.includes(name)))
      sources.push({ kind: 'scrape', path: '/metrics', timeoutMs: 5000 });
    return sources;
  }
  if (!Array.isArray(value) || value.length === 0 || value.length > 8)
    return r.fail('analysis.sources', 'must be a list of 1 to 8 sources');
  const sources: SourceSpec[] = [];
  value.forEach((entry, index) => {
    const source = readSource(r, entry, `analysis.sources[${index}]`);
    if (source) sources.push(source);
  });
  const kinds = sources.map((source) => source.kind);
  const repeated = kinds.find((kind, index) => kinds.indexOf(kind) !== index);
  if (repeated) r.fail('analysis.sources', `must not list ${repeated} twice`);
  return sources;
}

function readSource(r: FieldReader, input: unknown, field: string): SourceSpec | undefined {
  const object = r.object(input, field);
  if (!object) return undefined;
  const kind = r.oneOf(object.kind, `${field}.kind`, SOURCE_KINDS);
  const timeoutMs = r.duration(object.timeout, `${field}.timeout`, { minMs: 100, maxMs: 120_000 }, 10_000);
  const maxBodyBytes =
    object.maxBodyBytes === undefined
      ? undefined
      : r.number(object.maxBodyBytes, `${field}.maxBodyBytes`, {
          min: 1024,
          max: 256 * 1024 * 1024,
          integer: true,
        });
  const bodyLimit = maxBodyBytes === undefined ? {} : { maxBodyBytes };
  switch (kind) {
    case 'probe-results':
      r.onlyKeys(object, ['kind'], field);
      return { kind };
    case 'scrape': {
      r.onlyKeys(object, ['kind', 'path', 'timeout', 'maxBodyBytes'], field);
      const path =
        object.path === undefined
          ? '/metrics'
          : r.string(object.path, `${field}.path`, /^\/\S*$/, 'must be a path starting with /');
      if (path === undefined || timeoutMs === undefined) return undefined;
      return { kind, path, timeoutMs, ...bodyLimit };
    }
    case 'prometheus': {
      r.onlyKeys(
        object,
        ['kind', 'url', 'templates', 'queries', 'labels', 'step', 'timeout', 'maxBodyBytes'],
        field,
      );
      let url = r.string(object.url, `${field}.url`, URL_PATTERN, 'must be an http:// or https:// URL');
      // Credentials in the URL would end up in every error message and log line naming it.
      if (url !== undefined && (!URL.canParse(url) || /^https?:\/\/[^/?#]*@/.test(url))) {
        url = r.fail(
          `${field}.url`,
          URL.canParse(url)
            ? 'must not contain user:password@ (credentials would leak into errors and logs)'
            : 'must be an http:// or https:// URL',
        );
      }
      const queries: QuerySpec[] = [];
      const sets =
        object.templates === undefined
          ? []
          : Array.isArray(object.templates)
            ? object.templates
            : [object.templates];
      sets.forEach((name, index) => {
        const setField = Array.isArray(object.templates)
          ? join(`${field}.templates`, index)
          : `${field}.templates`;
        const known = Object.keys(TEMPLATE_SETS);
        if (typeof name !== 'string' || !known.includes(name))
          r.fail(setField, `must be one of ${known.join(', ')}`);
        else queries.push(...(TEMPLATE_SETS[name] ?? []));
      });
      if (object.queries !== undefined) {
        if (!Array.isArray(object.queries) || object.queries.length > 32)
          r.fail(`${field}.queries`, 'must be a list of at most 32 queries');
        else
          object.queries.forEach((query, index) => {
            const spec = readQuery(r, query, `${field}.queries[${index}]`);
            if (spec) queries.push(spec);
          });
      }
      const listed = Array.isArray(object.queries) ? object.queries.length : 0;
      if (sets.length === 0 && listed === 0)
        r.fail(`${field}.queries`, 'must name at least one query (or templates)');
      const labels = readLabels(r, object.labels, `${field}.labels`);
      const stepMs = r.duration(object.step, `${field}.step`, { minMs: 1000, maxMs: 3_600_000 }, 5000);
      if (url === undefined || !labels || stepMs === undefined || timeoutMs === undefined) return undefined;
      return { kind, url: url.replace(/\/+$/, ''), queries, labels, stepMs, timeoutMs, ...bodyLimit };
    }
    default:
      return undefined;
  }
}

function readQuery(r: FieldReader, input: unknown, field: string): QuerySpec | undefined {
  const object = r.object(input, field);
  if (!object) return undefined;
  const kind = r.oneOf(object.kind, `${field}.kind`, ['gauge', 'counts'] as const, 'gauge');
  r.onlyKeys(
    object,
    kind === 'counts'
      ? ['metric', 'kind', 'events', 'trials', 'action']
      : ['metric', 'kind', 'query', 'action'],
    field,
  );
  const metric = r.string(
    object.metric,
    `${field}.metric`,
    NAME_PATTERN,
    'must be a metric name: letters, digits, _ . : -',
  );
  const action =
    object.action === undefined
      ? undefined
      : r.string(object.action, `${field}.action`, NAME_PATTERN, 'must be an action name');
  const template = (key: string) => {
    const text = r.string(object[key], `${field}.${key}`);
    if (text === undefined) return undefined;
    const unknown = templateVariables(text).filter(
      (name) => !(TEMPLATE_VARIABLES as readonly string[]).includes(name),
    );
    if (unknown.length > 0)
      return r.fail(
        `${field}.${key}`,
        `uses unknown template variable {{${unknown[0]}}} (known: ${TEMPLATE_VARIABLES.join(', ')})`,
      );
    if (templateVariables(text).includes('action') && action === undefined)
      return r.fail(`${field}.${key}`, 'uses {{action}} but the query names no action');
    return text;
  };
  if (metric === undefined || kind === undefined) return undefined;
  const extra = action === undefined ? {} : { action };
  if (kind === 'gauge') {
    const query = template('query');
    return query === undefined ? undefined : { metric, kind, query, ...extra };
  }
  const events = template('events');
  const trials = template('trials');
  return events === undefined || trials === undefined
    ? undefined
    : { metric, kind, events, trials, ...extra };
}

function readLabels(r: FieldReader, input: unknown, field: string): Record<TargetRole, string> | undefined {
  if (input === undefined) return { baseline: 'baseline', canary: 'canary' };
  if (!isPlainObject(input)) return r.fail(field, 'must be an object { baseline, canary }');
  r.onlyKeys(input, ['baseline', 'canary'], field);
  const baseline = r.string(
    input.baseline,
    `${field}.baseline`,
    /^[^"\\\n]+$/,
    'must be a label value without quotes or backslashes',
  );
  const canary = r.string(
    input.canary,
    `${field}.canary`,
    /^[^"\\\n]+$/,
    'must be a label value without quotes or backslashes',
  );
  return baseline === undefined || canary === undefined ? undefined : { baseline, canary };
}
