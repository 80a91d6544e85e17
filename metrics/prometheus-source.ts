import type { Sample } from '../analysis/samples';
import type { TargetRole } from '../analysis/verdict';
import { NoValuesError, type MetricSource, type SourceRequest, type SourceResult } from './source';
import { promDuration, renderTemplate, type QuerySpec } from './templates';

export interface PrometheusSourceOptions {
  url: string;
  queries: QuerySpec[];
  /** Label value per target for `{{target}}` (default: the role name). */
  labels: Record<TargetRole, string>;
  /** Resolution of range queries for gauges. */
  stepMs: number;
  timeoutMs: number;
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
 * counts with /api/v1/query at its end. A query that returns nothing or NaN raises
 * NoValuesError; any other failure (HTTP, PromQL syntax) is an error that names the query.
 */
export class PrometheusSource implements MetricSource {
  readonly name = 'prometheus';

  constructor(private readonly options: PrometheusSourceOptions) {}

  async collect(request: SourceRequest): Promise<SourceResult> {
    const samples: Sample[] = [];
    const window = promDuration(request.window.to - request.window.from);
    for (const target of ['baseline', 'canary'] as const) {
      const variables = {
        target: this.options.labels[target],
        window,
        instance: new URL(request.targets[target].url).host,
        rolloutId: request.rolloutId,
        tick: String(request.tick),
      };
      for (const query of this.options.queries) {
        const values = { ...variables, ...(query.action === undefined ? {} : { action: query.action }) };
        const base = {
          t: request.tick,
          target,
          metric: query.metric,
          ...(query.action === undefined ? {} : { action: query.action }),
        };
        if (query.kind === 'gauge') {
          const points = await this.range(renderTemplate(query.query, values), request.window);
          samples.push({ ...base, histogram: { values: points, counts: points.map(() => 1) } });
        } else {
          const events = await this.instant(renderTemplate(query.events, values), request.window.to);
          const trials = await this.instant(renderTemplate(query.trials, values), request.window.to);
          // increase() extrapolates to fractions; counts are whole and events never exceed trials.
          const wholeTrials = Math.max(0, Math.round(trials));
          samples.push({
            ...base,
            counts: { events: Math.min(wholeTrials, Math.max(0, Math.round(events))), trials: wholeTrials },
          });
        }
      }
    }
    return { samples };
  }

  /** Instant query: the sum of the returned series at `atMs`. */
  async instant(query: string, atMs: number): Promise<number> {
    const body = await this.get('/api/v1/query', { query, time: String(atMs / 1000) });
    const values = (body.data?.result ?? []).map((series) => Number(series.value?.[1]));
    return finiteSum(values, query);
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
    const points = (body.data?.result ?? []).flatMap((series) =>
      (series.values ?? []).map(([, value]) => Number(value)),
    );
    const finite = points.filter((value) => Number.isFinite(value) && value >= 0);
    if (finite.length === 0) throw new NoValuesError(`no values for ${query}`);
    return finite;
  }

  private async get(path: string, parameters: Record<string, string>): Promise<PrometheusResponse> {
    const url = `${this.options.url.replace(/\/+$/, '')}${path}?${new URLSearchParams(parameters).toString()}`;
    const response = await fetch(url, { signal: AbortSignal.timeout(this.options.timeoutMs) });
    const text = await response.text();
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

function finiteSum(values: number[], query: string): number {
  const finite = values.filter((value) => Number.isFinite(value));
  if (finite.length === 0) throw new NoValuesError(`no values for ${query}`);
  return finite.reduce((sum, value) => sum + value, 0);
}
