import type { Sample } from '../analysis/samples';
import type { TargetRole } from '../rollout/verdict';
import { isPlainObject, type Json } from '../core/validation';
import { firstValue, parseExposition, type ExpositionSample } from './prometheus-text';
import {
  NoValuesError,
  type MetricSource,
  type SourceGap,
  type SourceRequest,
  type SourceResult,
} from './source';
import { messageOf } from '../core/errors';
import { DEFAULT_MAX_BODY_BYTES, fetchBounded } from '../platform/http/bounded-fetch';

export interface ScrapeSourceOptions {
  /** Path of the exposition endpoint on each target. */
  path: string;
  timeoutMs: number;
  /** Larger answers are a failed read (default 8 MiB). */
  maxBodyBytes?: number;
}

interface Reading {
  cpuSeconds: number;
  at: number;
  /** Requests the target had answered, when it exposes a request counter. */
  requests?: number;
}

/**
 * Request counters by common convention (prom-client's and most frameworks' names): the first one
 * a target exposes, summed over its series, turns CPU into CPU per request.
 */
export const REQUEST_COUNTERS = [
  'http_requests_total',
  'http_request_duration_seconds_count',
  'http_server_requests_seconds_count',
] as const;

/**
 * When no Prometheus is configured: read each target's own /metrics once per tick.
 * `memory_bytes` is process_resident_memory_bytes now; `cpu_cores` is the increase of
 * process_cpu_seconds_total since the previous tick's reading (carried) over the wall time
 * between them, so the first tick has memory only. `cpu_ms_per_request` is that CPU increase over
 * the increase of the target's request counter (REQUEST_COUNTERS), when it has one: baseline and
 * canary serve different shares of real traffic, so only CPU per request compares them fairly.
 */
export class ScrapeSource implements MetricSource {
  readonly name = 'scrape';

  constructor(private readonly options: ScrapeSourceOptions) {}

  async collect(request: SourceRequest): Promise<SourceResult> {
    const previous = isPlainObject(request.previous) ? request.previous : {};
    const samples: Sample[] = [];
    const gaps: SourceGap[] = [];
    const carry: Record<string, Json> = {};
    for (const target of ['baseline', 'canary'] as const) {
      const at = Date.now();
      let text: string;
      try {
        text = await this.fetchMetrics(request.targets[target].url, target);
      } catch (error) {
        // One target that cannot be read leaves the other's samples standing.
        const reason = messageOf(error);
        const failed = !(error instanceof NoValuesError);
        for (const metric of ['memory_bytes', 'cpu_cores']) gaps.push({ target, metric, reason, failed });
        continue;
      }
      const exposition = parseExposition(text);
      const memory = firstValue(exposition, 'process_resident_memory_bytes');
      const cpu = firstValue(exposition, 'process_cpu_seconds_total');
      if (memory !== undefined)
        samples.push({ t: request.tick, target, metric: 'memory_bytes', value: memory });
      else
        gaps.push({
          target,
          metric: 'memory_bytes',
          reason: 'no process_resident_memory_bytes',
          failed: false,
        });
      if (cpu !== undefined) {
        const requests = requestCount(exposition);
        carry[target] = requests === undefined ? { cpuSeconds: cpu, at } : { cpuSeconds: cpu, at, requests };
        const before = readingOf(previous[target]);
        if (before && at > before.at && cpu >= before.cpuSeconds) {
          samples.push({
            t: request.tick,
            target,
            metric: 'cpu_cores',
            value: (cpu - before.cpuSeconds) / ((at - before.at) / 1000),
          });
          const served =
            requests !== undefined && before.requests !== undefined ? requests - before.requests : 0;
          if (served > 0)
            samples.push({
              t: request.tick,
              target,
              metric: 'cpu_ms_per_request',
              value: ((cpu - before.cpuSeconds) * 1000) / served,
            });
        }
      } else {
        gaps.push({ target, metric: 'cpu_cores', reason: 'no process_cpu_seconds_total', failed: false });
      }
    }
    if (samples.length === 0) {
      const failures = gaps.filter((gap) => gap.failed);
      if (failures.length > 0) throw new Error([...new Set(failures.map((gap) => gap.reason))].join('; '));
      throw new NoValuesError(
        gaps.length > 0
          ? [...new Set(gaps.map((gap) => `${gap.target}: ${gap.reason}`))].join('; ')
          : 'no process_resident_memory_bytes or process_cpu_seconds_total on the targets',
      );
    }
    return gaps.length === 0 ? { samples, carry } : { samples, carry, gaps };
  }

  private async fetchMetrics(baseUrl: string, target: TargetRole): Promise<string> {
    const url = `${baseUrl.replace(/\/+$/, '')}${this.options.path}`;
    const { status, text } = await fetchBounded(url, {
      timeoutMs: this.options.timeoutMs,
      maxBodyBytes: this.options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
      what: `scraping ${target}`,
    });
    if (status === 404) throw new NoValuesError(`${target} has no ${this.options.path} (404)`);
    if (status < 200 || status > 299)
      throw new Error(`scraping ${target} ${new URL(url).host}${this.options.path} answered ${status}`);
    return text;
  }
}

function readingOf(value: unknown): Reading | undefined {
  if (!isPlainObject(value)) return undefined;
  const { cpuSeconds, at, requests } = value;
  if (typeof cpuSeconds !== 'number' || typeof at !== 'number') return undefined;
  return typeof requests === 'number' ? { cpuSeconds, at, requests } : { cpuSeconds, at };
}

/** The first conventional request counter the target exposes, summed over its series. */
function requestCount(exposition: readonly ExpositionSample[]): number | undefined {
  for (const name of REQUEST_COUNTERS) {
    const series = exposition.filter((sample) => sample.name === name && Number.isFinite(sample.value));
    if (series.length > 0) return series.reduce((sum, sample) => sum + sample.value, 0);
  }
  return undefined;
}
