/**
 * The metric source factory (switches on `kind`, throws on an unknown one) and the validation
 * of a rollout's whole `analysis` block, which the CLI and API call before starting a rollout.
 */
import type { Db } from 'mongodb';
import { readAnalysisConfig, type AnalysisConfig } from '../analysis/config';
import { ANALYSIS_METHODS, type AnalysisMethod } from '../rollout/spec';
import { FieldReader, ValidationError } from '../core/validation';
import { readSources, type SourceSpec } from './config';
import { ProbeResultsSource } from './probe-results-source';
import { PrometheusSource } from './prometheus-source';
import { ScrapeSource } from './scrape-source';
import type { MetricSource } from './source';

export type { MetricSource, SourceRequest, SourceResult } from './source';
export { NoValuesError } from './source';
export type { SourceSpec } from './config';

export interface AnalysisOptions {
  config: AnalysisConfig;
  sources: SourceSpec[];
}

/**
 * Validates `analysis.options` (metrics, actions, sources, queries) for a method and alpha;
 * throws a ValidationError whose issues read `analysis.<field>: <rule>`.
 */
export function validateAnalysisOptions(
  options: unknown,
  method: AnalysisMethod = 'betting',
  alpha = 0.05,
): AnalysisOptions {
  const r = new FieldReader();
  if (!(ANALYSIS_METHODS as readonly string[]).includes(method))
    r.fail('analysis.method', `must be one of ${ANALYSIS_METHODS.join(', ')}`);
  r.number(alpha, 'analysis.alpha', { exclusiveMin: 0, max: 0.5 });
  const config = readAnalysisConfig(r, options, method, alpha);
  const raw =
    options !== null && typeof options === 'object'
      ? (options as Record<string, unknown>).sources
      : undefined;
  const sources = readSources(r, raw, config?.metrics.map((metric) => metric.name) ?? []);
  r.throwIfAny();
  return { config: config as AnalysisConfig, sources: sources as SourceSpec[] };
}

export interface SourceDeps {
  db: Db;
}

export function createSource(spec: SourceSpec, deps: SourceDeps): MetricSource {
  switch (spec.kind) {
    case 'probe-results':
      return new ProbeResultsSource(deps.db);
    case 'prometheus':
      return new PrometheusSource(spec);
    case 'scrape':
      return new ScrapeSource(spec);
    default:
      throw new ValidationError([
        { field: 'analysis.sources.kind', rule: `unknown source kind ${(spec as { kind: string }).kind}` },
      ]);
  }
}
