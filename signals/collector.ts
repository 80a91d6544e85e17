import type { Db } from 'mongodb';
import { bucketCentre, bucketIndex } from '../analysis/histogram';
import { compactSamples, type Sample } from '../analysis/samples';
import type { Logger } from '../platform/logger';
import type { AdapterSpec, RolloutSpec } from '../rollout/spec';
import type { MetricsSummary } from '../rollout/types';
import type { Json } from '../core/validation';
import { isPlainObject } from '../core/validation';
import {
  createSource,
  NoValuesError,
  validateAnalysisOptions,
  type MetricSource,
  type SourceSpec,
} from './index';
import { SampleStore, type SourceOutcome } from './sample-store';
import type { TemplateValues } from './source';
import { messageOf } from '../core/errors';

export interface CollectRequest {
  rolloutId: string;
  tick: number;
  window: { from: number; to: number };
  targets: RolloutSpec['targets'];
  /** Read only by `CollectorDeps.routerVariables`: the collector knows no router. */
  router: AdapterSpec;
  /** Which sources and queries to use (`analysis.options.sources`); absent: the defaults. */
  analysis?: RolloutSpec['analysis'];
}

/** The port the collectMetrics activity calls. */
export interface MetricCollector {
  collect(request: CollectRequest): Promise<MetricsSummary>;
}

export interface CollectorDeps {
  db: Db;
  logger?: Logger;
  /** Builds a source from its spec; the factory by default. */
  sourceFor?: (spec: SourceSpec) => MetricSource;
  /**
   * The template variables the rollout's router gives each target (the worker wires routing's
   * `routerTemplateVariables`); without it, queries have only the sources' own variables.
   */
  routerVariables?: (router: AdapterSpec, targets: RolloutSpec['targets']) => TemplateValues;
}

const NO_VARIABLES: TemplateValues = { baseline: {}, canary: {} };

/**
 * The MetricCollector port: for one rollout tick, asks every configured source for the probe
 * window's samples and stores them, compacted, in `rollout_samples` (idempotent upsert keyed by
 * rollout + tick). A source without data is reported as missing, never as good news.
 */
export class SampleCollector implements MetricCollector {
  readonly store: SampleStore;

  constructor(private readonly deps: CollectorDeps) {
    this.store = new SampleStore(deps.db);
  }

  async collect(request: CollectRequest): Promise<MetricsSummary> {
    const { sources } = validateAnalysisOptions(
      request.analysis?.options ?? {},
      request.analysis?.method,
      request.analysis?.alpha,
    );
    const previous = request.tick > 1 ? await this.store.load(request.rolloutId, request.tick - 1) : null;
    const raw: Sample[] = [];
    const ok: string[] = [];
    const missing: SourceOutcome[] = [];
    /** Parts of a source that gave nothing while the rest of it did. */
    const gaps: SourceOutcome[] = [];
    const carry: Record<string, Json> = {};
    const variables = this.routerVariables(request);
    for (const spec of sources) {
      const source = (this.deps.sourceFor ?? ((s: SourceSpec) => createSource(s, { db: this.deps.db })))(
        spec,
      );
      try {
        const result = await source.collect({
          rolloutId: request.rolloutId,
          tick: request.tick,
          window: request.window,
          targets: request.targets,
          variables,
          previous: isPlainObject(previous?.carry) ? (previous.carry[source.name] ?? null) : null,
        });
        // Sources stamp their own tick; the store's tick is the rollout's.
        raw.push(...result.samples.map((sample) => ({ ...sample, t: request.tick })));
        if (result.carry !== undefined) carry[source.name] = result.carry;
        ok.push(source.name);
        for (const gap of result.gaps ?? []) {
          const what = `${gap.target} ${gap.metric}${gap.action === undefined ? '' : ` (${gap.action})`}`;
          gaps.push({ source: source.name, reason: `${what}: ${gap.reason}` });
          if (gap.failed)
            this.deps.logger?.warn(
              { rolloutId: request.rolloutId, tick: request.tick, source: source.name, err: gap.reason },
              'metric source query failed',
            );
        }
      } catch (error) {
        const reason = messageOf(error);
        missing.push({ source: source.name, reason });
        if (!(error instanceof NoValuesError))
          this.deps.logger?.warn(
            { rolloutId: request.rolloutId, tick: request.tick, source: source.name, err: reason },
            'metric source failed',
          );
      }
    }
    const samples = compactSamples(raw, bucketIndex, bucketCentre);
    await this.store.save({
      rolloutId: request.rolloutId,
      tick: request.tick,
      window: request.window,
      collectedAt: Date.now(),
      samples,
      rawSamples: raw.length,
      sources: ok,
      missing: [...missing, ...gaps],
      carry,
    });
    return { samples: raw.length, sources: ok, missing: missing.map((outcome) => outcome.source) };
  }

  private routerVariables(request: CollectRequest): TemplateValues {
    try {
      return this.deps.routerVariables?.(request.router, request.targets) ?? NO_VARIABLES;
    } catch {
      return NO_VARIABLES; // validated at start; a query needing a router's name then says it has none
    }
  }
}
