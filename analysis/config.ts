/**
 * What the analysis compares and how strictly: per metric the kind of data, the direction that
 * counts as bad, the practical tolerance, the minimum sample count and whether one failure is
 * critical. Read from a rollout spec's `analysis.options` (or built by the offline replay).
 * Pure: validation with FieldReader, no I/O.
 */
import type { AnalysisMethod } from '../rollout/spec';
import { FieldReader, join } from '../core/validation';
import { maxRateTolerance } from './stats';
import { tailLevelsOf } from './betting';

/**
 * `distribution`: values compared per request; `rate`: events among trials; `trend`: a level
 * (e.g. memory) whose growth over time, canary relative to baseline, is the regression.
 */
export type MetricKind = 'distribution' | 'rate' | 'trend';
export type Direction = 'increase' | 'decrease' | 'either';

export interface MetricConfig {
  /** Name the samples carry, e.g. `latency_ms`, `error`, `status_5xx`, `cpu_seconds`. */
  name: string;
  /** `distribution`: values or histograms compared at quantiles; `rate`: events among trials. */
  kind: MetricKind;
  /** Which change is a regression: latency `increase`, throughput `decrease`. */
  direction: Direction;
  /** Relative change that is still fine: 0.05 means +5 % is not an anomaly. */
  tolerance: number;
  /** Quantiles compared for a distribution metric (e.g. 0.5, 0.9, 0.99). */
  quantiles: number[];
  /** Per target (and action): values for a distribution, trials for a rate. */
  minSamples: number;
  /** One failure of this metric rolls the canary back at once. */
  critical: boolean;
  /**
   * An anomaly whose lower confidence bound is beyond this ratio of canary to baseline is severe
   * (the policy rolls back at once): e.g. 1.5 for latency, 3 for error rates.
   */
  severeRatio: number;
}

export interface AnalysisConfig {
  method: AnalysisMethod;
  alpha: number;
  metrics: MetricConfig[];
  /**
   * Fixed in advance so the multiplicity correction does not depend on the data: at most this
   * many actions are analysed per metric (the first ones seen, or exactly `actions` when given).
   */
  maxActions: number;
  actions: string[] | null;
  /** `seed` method: baseline ticks in the moving window. */
  seedWindow: number;
}

export const DEFAULT_MAX_ACTIONS = 20;
export const DEFAULT_SEED_WINDOW = 10;

export const DEFAULT_LATENCY: Readonly<MetricConfig> = Object.freeze({
  name: 'latency_ms',
  kind: 'distribution',
  direction: 'increase',
  tolerance: 0.05,
  quantiles: [0.5, 0.9, 0.99],
  minSamples: 50,
  critical: false,
  severeRatio: 1.5,
});

export const DEFAULT_ERRORS: Readonly<MetricConfig> = Object.freeze({
  name: 'error',
  kind: 'rate',
  direction: 'increase',
  tolerance: 0.05,
  quantiles: [],
  minSamples: 100,
  critical: false,
  severeRatio: 3,
});

/** Resource gauges the targets may expose (a direct /metrics scrape reads them). */
export const RESOURCE_METRICS: readonly string[] = ['cpu_cores', 'cpu_ms_per_request', 'memory_bytes'];

/**
 * Compared by default. CPU per request, not cores: baseline and canary serve different shares of
 * real traffic, so above 50 % the canary would look heavier by cores alone.
 */
export const DEFAULT_RESOURCE_METRICS: readonly string[] = ['cpu_ms_per_request', 'memory_bytes'];

/** The kind a metric has unless configured: memory leaks are trends, errors rates. */
export function defaultKind(name: string): MetricKind {
  return name === 'error' ? 'rate' : name === 'memory_bytes' ? 'trend' : 'distribution';
}

/** Defaults for a metric name when the configuration does not describe it. */
export function defaultMetric(name: string, kind: MetricKind): MetricConfig {
  if (name === DEFAULT_LATENCY.name && kind === 'distribution')
    return { ...DEFAULT_LATENCY, quantiles: [...DEFAULT_LATENCY.quantiles] };
  if (kind === 'rate') return { ...DEFAULT_ERRORS, name, quantiles: [] };
  if (kind === 'trend') return { ...DEFAULT_LATENCY, name, kind, quantiles: [], minSamples: 5 };
  return { ...DEFAULT_LATENCY, name, quantiles: [0.5, 0.9], minSamples: name.endsWith('_ms') ? 50 : 5 };
}

const METRIC_KEYS = [
  'name',
  'kind',
  'direction',
  'tolerance',
  'quantiles',
  'minSamples',
  'critical',
  'severeRatio',
];
/** Past this ratio a severe anomaly could never be declared within the tests' ranges. */
export const MAX_SEVERE_RATIO = 100;
export const ANALYSIS_OPTION_KEYS = ['metrics', 'maxActions', 'actions', 'seedWindow', 'sources'];
const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$/;

/** Reads one metric; `field` is e.g. `analysis.metrics[2]`. */
export function readMetricConfig(r: FieldReader, input: unknown, field: string): MetricConfig | undefined {
  const object = r.object(input, field);
  if (!object) return undefined;
  r.onlyKeys(object, METRIC_KEYS, field);
  const name = r.string(
    object.name,
    `${field}.name`,
    NAME_PATTERN,
    'must be a metric name: letters, digits, _ . : -',
  );
  const kind = r.oneOf(
    object.kind,
    `${field}.kind`,
    ['distribution', 'rate', 'trend'] as const,
    name === undefined ? 'distribution' : defaultKind(name),
  );
  if (name === undefined || kind === undefined) return undefined;
  const base = defaultMetric(name, kind);
  const direction = r.oneOf(
    object.direction,
    `${field}.direction`,
    ['increase', 'decrease', 'either'] as const,
    base.direction,
  );
  const tolerance = r.number(object.tolerance, `${field}.tolerance`, { min: 0, max: 10 }, base.tolerance);
  const minSamples = r.number(
    object.minSamples,
    `${field}.minSamples`,
    { min: 1, max: 1e9, integer: true },
    base.minSamples,
  );
  let critical = base.critical;
  if (object.critical !== undefined) {
    if (typeof object.critical !== 'boolean') r.fail(`${field}.critical`, 'must be true or false');
    else critical = object.critical;
  }
  let quantiles = base.quantiles;
  if (object.quantiles !== undefined) {
    if (kind !== 'distribution') r.fail(`${field}.quantiles`, 'applies only to kind distribution');
    else if (!Array.isArray(object.quantiles) || object.quantiles.length === 0 || object.quantiles.length > 8)
      r.fail(`${field}.quantiles`, 'must be a list of 1 to 8 numbers in (0, 1)');
    else {
      const list: number[] = [];
      object.quantiles.forEach((q, index) => {
        const value = r.number(q, join(`${field}.quantiles`, index), { exclusiveMin: 0, max: 0.999 });
        if (value !== undefined) list.push(value);
      });
      if (new Set(list).size !== list.length) r.fail(`${field}.quantiles`, 'must not repeat a quantile');
      quantiles = [...list].sort((a, b) => a - b);
    }
  }
  // Unset beside a wide tolerance: that many times beyond the tolerance, so old specs stay valid.
  const defaultSevere =
    tolerance !== undefined && base.severeRatio <= 1 + tolerance
      ? Math.min(MAX_SEVERE_RATIO, base.severeRatio * (1 + tolerance))
      : base.severeRatio;
  const severeRatio = r.number(
    object.severeRatio,
    `${field}.severeRatio`,
    { exclusiveMin: 1, max: MAX_SEVERE_RATIO },
    defaultSevere,
  );
  // A severe ratio inside the tolerance would make every tolerated change severe.
  if (
    object.severeRatio !== undefined &&
    severeRatio !== undefined &&
    tolerance !== undefined &&
    severeRatio <= 1 + tolerance
  )
    r.fail(`${field}.severeRatio`, `must be greater than 1 + tolerance (${1 + tolerance})`);
  if (
    direction === undefined ||
    tolerance === undefined ||
    minSamples === undefined ||
    severeRatio === undefined
  )
    return undefined;
  return { name, kind, direction, tolerance, quantiles, minSamples, critical, severeRatio };
}

/**
 * Reads the statistics part of `analysis.options` (metrics, actions, maxActions, seedWindow).
 * `sources` belongs to metric collection and is checked there (signals/config.ts).
 */
export function readAnalysisConfig(
  r: FieldReader,
  options: unknown,
  method: AnalysisMethod,
  alpha: number,
): AnalysisConfig | undefined {
  const object = options === undefined || options === null ? {} : r.object(options, 'analysis');
  if (!object) return undefined;
  r.onlyKeys(object, ANALYSIS_OPTION_KEYS, 'analysis');
  let metrics: MetricConfig[] = [
    { ...DEFAULT_LATENCY, quantiles: [...DEFAULT_LATENCY.quantiles] },
    { ...DEFAULT_ERRORS },
    // Resources wherever the targets expose them (a target without them does not blind the tick).
    ...(isBettingMethod(method)
      ? DEFAULT_RESOURCE_METRICS.map((name) => defaultMetric(name, defaultKind(name)))
      : []),
  ];
  if (object.metrics !== undefined) {
    if (!Array.isArray(object.metrics) || object.metrics.length === 0 || object.metrics.length > 16) {
      r.fail('analysis.metrics', 'must be a list of 1 to 16 metrics');
    } else {
      metrics = [];
      object.metrics.forEach((entry, index) => {
        const metric = readMetricConfig(r, entry, `analysis.metrics[${index}]`);
        if (metric) metrics.push(metric);
        // The sequential rate test works on a bounded grid of rate ratios: a tolerance past its
        // end leaves no ratio to test, so the metric could silently never be flagged.
        const max = metric && maxRateTolerance(metric.direction);
        const gridded = method === 'sequential' || isBettingMethod(method);
        if (gridded && metric?.kind === 'rate' && max !== undefined && metric.tolerance > max)
          r.fail(
            `analysis.metrics[${index}].tolerance`,
            `must be at most ${max} for a rate metric with direction ${metric.direction} under method ${method} (beyond that its rate-ratio grid has nothing left to test)`,
          );
      });
      const names = metrics.map((metric) => metric.name);
      const duplicate = names.find((name, index) => names.indexOf(name) !== index);
      if (duplicate) r.fail('analysis.metrics', `must not name ${duplicate} twice`);
    }
  }
  let actions: string[] | null = null;
  if (object.actions !== undefined) {
    if (!Array.isArray(object.actions) || object.actions.length === 0 || object.actions.length > 100)
      r.fail('analysis.actions', 'must be a list of 1 to 100 action names');
    else {
      actions = [];
      object.actions.forEach((entry, index) => {
        const name = r.string(entry, `analysis.actions[${index}]`, NAME_PATTERN, 'must be an action name');
        if (name) actions?.push(name);
      });
    }
  }
  const maxActions = r.number(
    object.maxActions,
    'analysis.maxActions',
    { min: 1, max: 100, integer: true },
    actions?.length ?? DEFAULT_MAX_ACTIONS,
  );
  if (actions && maxActions !== undefined && maxActions < actions.length)
    r.fail('analysis.maxActions', `must be at least the number of analysis.actions (${actions.length})`);
  const seedWindow = r.number(
    object.seedWindow,
    'analysis.seedWindow',
    { min: 3, max: 100, integer: true },
    DEFAULT_SEED_WINDOW,
  );
  if (maxActions === undefined || seedWindow === undefined) return undefined;
  return { method, alpha, metrics, maxActions, actions, seedWindow };
}

export function parseAnalysisConfig(options: unknown, method: AnalysisMethod, alpha: number): AnalysisConfig {
  const r = new FieldReader();
  const config = readAnalysisConfig(r, options, method, alpha);
  r.throwIfAny();
  return config as AnalysisConfig;
}

/** `betting` and its variant robust to whole-target tick effects share their comparisons and defaults. */
export function isBettingMethod(method: AnalysisMethod): boolean {
  return method === 'betting' || method === 'betting-robust';
}

/** Number of comparisons one action slot contributes (quantiles of a distribution, or 1). */
export function checksPerSlot(metric: MetricConfig, method: AnalysisMethod): number {
  // The betting method tests one location per slot, and the tail of latency-like distributions;
  // the others each quantile, and the sequential method its paired stochastic-order test besides.
  if (isBettingMethod(method)) return tailLevelsOf(metric).length > 0 ? 2 : 1;
  if (metric.kind === 'rate') return 1;
  return metric.quantiles.length + 1;
}

/**
 * Comparisons the family-wise error is split over (Bonferroni): every metric, quantile and
 * action slot, plus one whole-service slot per metric. Fixed before the first look: by the
 * actions known then (`analysis.actions`, or the sampled profiles' actions) when given, else
 * by `maxActions` slots.
 */
export function comparisonCount(config: AnalysisConfig, knownActions?: number): number {
  const slots =
    (isBettingMethod(config.method)
      ? (knownActions ?? config.actions?.length ?? config.maxActions)
      : config.maxActions) + 1;
  return config.metrics.reduce((sum, metric) => sum + checksPerSlot(metric, config.method) * slots, 0);
}

/**
 * A stable fingerprint: the carried state is reset when the configuration it was built for changes.
 * The severe ratio only classifies evidence, it does not shape it: states from before it existed stay valid.
 */
export function configFingerprint(config: AnalysisConfig): string {
  const text = JSON.stringify([
    config.method,
    config.metrics.map((metric) => ({ ...metric, severeRatio: undefined })),
    config.maxActions,
    config.actions,
    config.seedWindow,
  ]);
  let hash = 2166136261;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 16777619);
  }
  return (hash >>> 0).toString(36);
}
