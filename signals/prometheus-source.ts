import type { Sample } from '../analysis/samples';
import type { TargetRole } from '../rollout/verdict';
import {
  NoValuesError,
  type MetricSource,
  type SourceGap,
  type SourceRequest,
  type SourceResult,
} from './source';
import { promDuration, renderTemplate, type QuerySpec } from './templates';
import { messageOf } from '../core/errors';
import { DEFAULT_MAX_BODY_BYTES, fetchBounded } from '../platform/http/bounded-fetch';

export interface PrometheusSourceOptions {
  url: string;
  queries: QuerySpec[];
  /** Label value per target for `{{target}}` (default: the role name). */
  labels: Record<TargetRole, string>;
  /** Resolution of range queries for gauges. */
  stepMs: number;
  timeoutMs: number;
  /** Larger answers are a failed query (default 8 MiB). */
  maxBodyBytes?: number;
}

interface PrometheusResponse {
  status: 'success' | 'error';
  error?: string;
  errorType?: string;
  data?: {
    resultType: string;
    result: { metric: Record<string, string>; value?: [number, string]; values?: [number, string][] }[];
  };
}

/**
 * PromQL over the Prometheus HTTP API: gauges with /api/v1/query_range over the probe window,
 * counts with /api/v1/query at its end. Each query and target stands alone: one that returns
 * nothing or NaN is a "no data" gap, one that fails (HTTP, PromQL syntax) a failed gap naming
 * the query, and the other metrics and targets are still returned. Only when nothing at all was
 * collected does collect() throw: NoValuesError if every query was merely empty.
 */
export class PrometheusSource implements MetricSource {
  readonly name = 'prometheus';

  constructor(private readonly options: PrometheusSourceOptions) {}

  async collect(request: SourceRequest): Promise<SourceResult> {
    const samples: Sample[] = [];
    const gaps: SourceGap[] = [];
    for (const target of ['baseline', 'canary'] as const) {
      const values = queryValues(request, target, this.options.labels[target]);
      for (const query of this.options.queries) {
        const base = {
          t: request.tick,
          target,
          metric: query.metric,
          ...(query.action === undefined ? {} : { action: query.action }),
        };
        try {
          samples.push(await this.collectOne(renderQuery(query, values), request.window, base));
        } catch (error) {
          gaps.push({
            ...base,
            reason: messageOf(error),
            failed: !(error instanceof NoValuesError),
          });
        }
      }
    }
    if (samples.length === 0) {
      const reasons = gaps.map((gap) => `${gap.target} ${gap.metric}: ${gap.reason}`).join('; ');
      if (gaps.some((gap) => gap.failed)) throw new Error(reasons);
      throw new NoValuesError(reasons || 'no queries');
    }
    return gaps.length === 0 ? { samples } : { samples, gaps };
  }

  private async collectOne(
    promql: RenderedQuery,
    window: { from: number; to: number },
    base: { t: number; target: TargetRole; metric: string; action?: string },
  ): Promise<Sample> {
    if (promql.kind === 'gauge') {
      const points = await this.range(promql.query, window);
      return { ...base, histogram: { values: points, counts: points.map(() => 1) } };
    }
    const { events: eventsQuery, trials: trialsQuery } = promql;
    const trials = await this.instant(trialsQuery, window.to);
    if (trials === undefined) throw new NoValuesError(`no values for ${trialsQuery}`);
    // An events counter with no series yet (no 5xx ever answered) is 0 events among the trials.
    const events = (await this.instant(eventsQuery, window.to)) ?? 0;
    // increase() extrapolates to fractions; counts are whole and events never exceed trials.
    const wholeTrials = Math.max(0, Math.round(trials));
    return {
      ...base,
      counts: { events: Math.min(wholeTrials, Math.max(0, Math.round(events))), trials: wholeTrials },
    };
  }

  /**
   * Instant query: the sum of the returned series at `atMs`; undefined when no series matched.
   * Series that are all NaN are NoValuesError; a result that is not an instant vector is an error.
   */
  async instant(query: string, atMs: number): Promise<number | undefined> {
    const body = await this.get('/api/v1/query', { query, time: String(atMs / 1000) });
    const result = resultOf(body, 'vector', query);
    if (result.length === 0) return undefined;
    return finiteSum(
      result.map((series) => Number(series.value?.[1])),
      query,
    );
  }

  /** Range query: every finite point of every returned series within the window. */
  async range(query: string, window: { from: number; to: number }): Promise<number[]> {
    const step = Math.max(1, Math.round(this.options.stepMs / 1000));
    const body = await this.get('/api/v1/query_range', {
      query,
      start: String(window.from / 1000),
      end: String(window.to / 1000),
      step: `${step}s`,
    });
    const points = resultOf(body, 'matrix', query).flatMap((series) =>
      (series.values ?? []).map(([, value]) => Number(value)),
    );
    const finite = points.filter((value) => Number.isFinite(value) && value >= 0);
    if (finite.length === 0) throw new NoValuesError(`no values for ${query}`);
    return finite;
  }

  private async get(path: string, parameters: Record<string, string>): Promise<PrometheusResponse> {
    const url = `${this.options.url.replace(/\/+$/, '')}${path}?${new URLSearchParams(parameters).toString()}`;
    const response = await fetchBounded(url, {
      timeoutMs: this.options.timeoutMs,
      maxBodyBytes: this.options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      what: 'prometheus',
    });
    const text = response.text;
    let body: PrometheusResponse;
    try {
      body = JSON.parse(text) as PrometheusResponse;
    } catch {
      throw new Error(`prometheus ${path} answered ${response.status} with a non-JSON body`);
    }
    if (response.status !== 200 || body.status !== 'success')
      throw new Error(
        `prometheus ${path} failed (${response.status} ${body.errorType ?? ''}): ${body.error ?? 'unknown error'} for ${parameters.query ?? ''}`,
      );
    return body;
  }
}

/** A query with its variables filled in: the PromQL sent to Prometheus. */
export type RenderedQuery =
  { kind: 'gauge'; query: string } | { kind: 'counts'; events: string; trials: string };

/**
 * The values of a query's variables for one target: those the router gives it, then the
 * source's own (`label` is the target's `{{target}}`).
 */
export function queryValues(
  request: SourceRequest,
  target: TargetRole,
  label: string,
): Partial<Record<string, string>> {
  return {
    ...request.variables[target],
    target: label,
    window: promDuration(request.window.to - request.window.from),
    instance: new URL(request.targets[target].url).host,
    rolloutId: request.rolloutId,
    tick: String(request.tick),
  };
}

/** Renders a query for one target; a variable without a value is a TemplateError naming both. */
export function renderQuery(query: QuerySpec, values: Partial<Record<string, string>>): RenderedQuery {
  const all = query.action === undefined ? values : { ...values, action: query.action };
  const render = (template: string, part: string) =>
    renderTemplate(template, all, `query ${query.metric}${part}`);
  return query.kind === 'gauge'
    ? { kind: 'gauge', query: render(query.query, '') }
    : { kind: 'counts', events: render(query.events, ' events'), trials: render(query.trials, ' trials') };
}

/** The series of a successful answer, which must be of the expected type. */
function resultOf(
  body: PrometheusResponse,
  expected: 'vector' | 'matrix',
  query: string,
): NonNullable<PrometheusResponse['data']>['result'] {
  const type = body.data?.resultType;
  if (type !== expected || !Array.isArray(body.data?.result))
    throw new Error(
      `prometheus answered a ${type ?? 'missing'} result for ${query}; expected ${expected === 'vector' ? 'an instant vector' : 'a range vector (matrix)'}`,
    );
  return body.data.result;
}

function finiteSum(values: number[], query: string): number {
  const finite = values.filter((value) => Number.isFinite(value));
  if (finite.length === 0) throw new NoValuesError(`no values for ${query}`);
  return finite.reduce((sum, value) => sum + value, 0);
}
