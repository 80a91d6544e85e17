/**
 * One interface for every metric source (probe results, Prometheus, direct /metrics scrape),
 * one file per source, a factory switching on `kind` (index.ts). A source turns one tick's
 * window into normalised samples (analysis/samples.ts) for both targets.
 */
import type { Sample } from '../analysis/samples';
import type { TargetRole } from '../rollout/verdict';
import type { Json } from '../core/validation';

export interface SourceRequest {
  rolloutId: string;
  tick: number;
  /** The probe window, ms since epoch. */
  window: { from: number; to: number };
  targets: Record<TargetRole, { url: string }>;
  /**
   * Template variables the rollout's router gives each target: label values its own metrics
   * carry (`{{backend}}`, ...), empty where it gives none. Sources add their own variables.
   */
  variables: TemplateValues;
  /** What this source kept from the previous tick (e.g. counter readings), null on the first. */
  previous: Json;
}

/** Per target, the values of template variables by name. */
export type TemplateValues = Record<TargetRole, Partial<Record<string, string>>>;

export interface SourceResult {
  samples: Sample[];
  /** Kept for the next tick's `previous`; small. */
  carry?: Json;
  /**
   * Queries or targets that gave nothing this tick while others did: the rest of the samples
   * still count. `failed` is an error (HTTP, PromQL) rather than an empty window.
   */
  gaps?: SourceGap[];
}

export interface SourceGap {
  target: TargetRole;
  metric: string;
  action?: string;
  reason: string;
  failed: boolean;
}

export interface MetricSource {
  /** Stable name for summaries and logs, e.g. `prometheus` or `scrape`. */
  readonly name: string;
  /** Throws NoValuesError when the window has no data; other errors are failures. */
  collect(request: SourceRequest): Promise<SourceResult>;
}

/** The window had no data for this source (empty result, NaN): the tick is inconclusive, not good. */
export class NoValuesError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoValuesError';
  }
}
