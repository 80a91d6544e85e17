/**
 * PromQL templates: *what* to measure, kept apart from *where* (the Prometheus source). Variables
 * are written `{{name}}`; rendering with a variable that has no value is an error, never an
 * empty string. Built-in sets per router or app; a rollout can bring its own queries.
 * Pure.
 */
import { ROUTER_TEMPLATE_VARIABLES } from '../rollout/spec';

/** Variables the source fills in for each target (`action` only in a query that names one). */
const SOURCE_VARIABLES = ['target', 'window', 'instance', 'rolloutId', 'tick', 'action'] as const;

/**
 * Variables a query may use: the source's own, and those a router may give (label values its
 * own metrics carry); each router gives some or none, so those have values only with that router.
 */
export const TEMPLATE_VARIABLES = [...SOURCE_VARIABLES, ...ROUTER_TEMPLATE_VARIABLES] as const;
export type TemplateVariable = (typeof TEMPLATE_VARIABLES)[number];

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

const VARIABLE = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

export function templateVariables(template: string): string[] {
  return [...template.matchAll(VARIABLE)].map((match) => match[1] as string);
}

/**
 * Fills in `{{name}}` from `values`; a name without a value throws a TemplateError naming the
 * template (`what`, e.g. `query status_5xx events`), the variable and the names it does have.
 */
export function renderTemplate(
  template: string,
  values: Partial<Record<string, string>>,
  what = 'template',
): string {
  return template.replace(VARIABLE, (_match, name: string) => {
    const value = values[name];
    if (value === undefined) {
      const given = Object.keys(values).filter((key) => values[key] !== undefined);
      throw new TemplateError(
        `${what} uses {{${name}}}, which has no value for this rollout (it has: ${given.join(', ') || 'none'}): ${template}`,
      );
    }
    return value;
  });
}

/** PromQL duration for a window in ms, whole seconds, at least 1s. */
export function promDuration(ms: number): string {
  return `${Math.max(1, Math.round(ms / 1000))}s`;
}

/**
 * One query. `gauge`: each point of the range (or the instant value) is one observation of a
 * distribution metric. `counts`: two instant queries, events and trials over the window, for a
 * rate metric (e.g. 5xx among responses).
 */
export type QuerySpec =
  | { metric: string; kind: 'gauge'; query: string; action?: string }
  | { metric: string; kind: 'counts'; events: string; trials: string; action?: string };

/**
 * Built-in sets. `{{target}}` is the target's label value (by default its role, `baseline` or
 * `canary`; a source maps it with `labels`), `{{instance}}` its host:port.
 */
export const TEMPLATE_SETS: Record<string, QuerySpec[]> = {
  /** Any Node.js app with prom-client's default metrics (and most other client libraries). */
  process: [
    {
      metric: 'cpu_cores',
      kind: 'gauge',
      query: 'rate(process_cpu_seconds_total{job="{{target}}"}[{{window}}])',
    },
    { metric: 'memory_bytes', kind: 'gauge', query: 'process_resident_memory_bytes{job="{{target}}"}' },
  ],
  /**
   * HAProxy's built-in exporter (promex), per-server series: `{{backend}}` and `{{server}}` come
   * from a router whose metrics carry them. Default text: a rollout's own `queries` replace it.
   */
  haproxy: [
    {
      metric: 'status_5xx',
      kind: 'counts',
      events:
        'sum(increase(haproxy_server_http_responses_total{proxy="{{backend}}",server="{{server}}",code="5xx"}[{{window}}]))',
      trials:
        'sum(increase(haproxy_server_http_responses_total{proxy="{{backend}}",server="{{server}}"}[{{window}}]))',
    },
  ],
  /** NGINX through nginx-prometheus-exporter (stub status has no per-upstream codes: only CPU-side gauges). */
  nginx: [
    { metric: 'connections_active', kind: 'gauge', query: 'nginx_connections_active{job="{{target}}"}' },
  ],
};
