/**
 * The rollout spec: what a pipeline hands over for one deployment, validated at the edge
 * (CLI, API) and again by the workflow's update validators. Pure: runs in the workflow sandbox.
 */
import { asJson, FieldReader, isPlainObject, join, ValidationError, type Json } from '../core/validation';

export interface TrafficPolicy {
  /** Canary share when real traffic starts, after probing (percent). */
  initialShare: number;
  /** Raise per clean tick (percent points). */
  stepUp: number;
  /** Cut per anomalous tick, applied at once (percent points). */
  stepDown: number;
  /** Reaching this share promotes the canary (it then gets 100 %). */
  promoteAt: number;
  /** Consecutive clean ticks at 0 % real traffic before any real traffic moves; 0 skips probing. */
  probingTicks: number;
  /** Hysteresis: after a cut, this many consecutive clean ticks hold the share before it rises. */
  recoveryTicks: number;
  /** Cooldown: for this many ticks after a cut, the share stays below the level that was cut. */
  cooldownTicks: number;
  /** This many anomalous ticks within `anomalyWindowTicks` roll the canary back. */
  maxAnomalies: number;
  anomalyWindowTicks: number;
  /** This many inconclusive ticks in a row pause the rollout for a person. */
  maxInconclusiveTicks: number;
  // The fields below are optional in the type because rollouts started before they existed carry
  // policies without them; the policy then behaves as it did. parseRolloutSpec always sets them.
  /** What an ordinary raise needs: a clean tick (no evidence of harm) or proof of health. */
  raiseRequires?: RaiseRequirement;
  /** After a cut, this many ticks without proof of health pause the rollout for a person. */
  maxRecoveryTicks?: number;
  /** This many cuts at one share (the canary fails under that load) pause or roll back. */
  maxCutsAtLevel?: number;
  onRepeatedCuts?: RepeatedCutsAction;
}

export const RAISE_REQUIREMENTS = ['clean', 'proof'] as const;
export type RaiseRequirement = (typeof RAISE_REQUIREMENTS)[number];
export const REPEATED_CUTS_ACTIONS = ['pause', 'rollback'] as const;
export type RepeatedCutsAction = (typeof REPEATED_CUTS_ACTIONS)[number];

export const DEFAULT_POLICY: Readonly<TrafficPolicy> = Object.freeze({
  initialShare: 5,
  stepUp: 1,
  stepDown: 5,
  promoteAt: 100,
  probingTicks: 3,
  recoveryTicks: 3,
  cooldownTicks: 5,
  maxAnomalies: 3,
  anomalyWindowTicks: 10,
  maxInconclusiveTicks: 10,
  raiseRequires: 'clean',
  maxRecoveryTicks: 10,
  maxCutsAtLevel: 2,
  onRepeatedCuts: 'pause',
});

const POLICY_KEYS = Object.keys(DEFAULT_POLICY) as (keyof TrafficPolicy)[];
/** Fields a policy carried before the evidence-following policy existed; newer ones may be absent. */
const REQUIRED_POLICY_KEYS = POLICY_KEYS.filter(
  (key) => !['raiseRequires', 'maxRecoveryTicks', 'maxCutsAtLevel', 'onRepeatedCuts'].includes(key),
);

export interface TargetSpec {
  url: string;
}

/** Adapter configuration chosen by `kind`; the adapter's factory validates the rest. */
export interface AdapterSpec {
  kind: string;
  [option: string]: Json;
}

/**
 * Names a router may give metric query templates (`{{backend}}`): label values its own metrics
 * carry for a target. The contract between routing/, where each router says which it gives, and
 * signals/, which checks queries against it and fills in what it is handed, knowing no router.
 */
export const ROUTER_TEMPLATE_VARIABLES = ['backend', 'server', 'upstream'] as const;
export type RouterTemplateVariable = (typeof ROUTER_TEMPLATE_VARIABLES)[number];

export interface RolloutSpec {
  service: string;
  version: string;
  targets: { baseline: TargetSpec; canary: TargetSpec };
  router: AdapterSpec;
  profiles: { criteria: Record<string, Json>; sampleSize: number; seed: number };
  /**
   * `shards` > 1 splits each probe into that many activities (same seeded workload, results
   * merged exactly); `taskQueue` sends probes to dedicated load-generation workers.
   */
  probe: {
    durationMs: number;
    concurrency: number;
    /** Optional: workflow inputs recorded before fan-out existed do not have it (means 1). */
    shards?: number;
    taskQueue?: string;
    /** Multiplies the profiles' recorded think times (0.01 replays sessions 100x faster). */
    timeScale?: number;
  };
  analysis: { method: AnalysisMethod; alpha: number; options: Record<string, Json> };
  alerts: { sinks: AdapterSpec[] };
  policy: TrafficPolicy;
  intervalMs: number;
  onAnomaly: 'reduce' | 'reduce-and-pause';
  links: { dashboardUrl?: string; temporalUiUrl?: string };
  /** Continue-as-new once the history holds this many events, well before Temporal suggests it. */
  maxHistoryEvents: number;
}

export const ANALYSIS_METHODS = ['betting', 'betting-robust', 'sequential', 'mann-whitney', 'seed'] as const;
export type AnalysisMethod = (typeof ANALYSIS_METHODS)[number];

const MAX_PROBED_PROFILE_IDS = 40_000;
const SERVICE_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;
const URL_PATTERN = /^https?:\/\/[^\s/?#]+(\/[^\s]*)?$/;
const SPEC_KEYS = [
  'service',
  'version',
  'targets',
  'router',
  'profiles',
  'probe',
  'analysis',
  'alerts',
  'policy',
  'interval',
  'onAnomaly',
  'links',
  'maxHistoryEvents',
];

/** One workflow per deployment: the id is derived so that starting the same one twice is refused. */
export function rolloutIdFor(service: string, version: string): string {
  return `rollout-${service}-${version}`;
}

/**
 * Reads an untrusted rollout spec (parsed YAML or JSON), applies defaults and returns it
 * normalised, or throws a ValidationError listing every offending field.
 */
export function parseRolloutSpec(input: unknown): RolloutSpec {
  const r = new FieldReader();
  const root = r.object(input, 'spec');
  if (!root) throw new ValidationError(r.issues);
  r.onlyKeys(root, SPEC_KEYS, '');

  const service = r.string(
    root.service,
    'service',
    SERVICE_PATTERN,
    'must be a DNS label: lowercase letters, digits and -, at most 63',
  );
  const version = r.string(
    root.version,
    'version',
    VERSION_PATTERN,
    'must be 1-128 of A-Z a-z 0-9 . _ + -, starting with a letter or digit',
  );

  const targets = r.object(root.targets, 'targets');
  const readTarget = (role: 'baseline' | 'canary'): TargetSpec | undefined => {
    const target = targets ? r.object(targets[role], `targets.${role}`) : undefined;
    if (!target) return undefined;
    r.onlyKeys(target, ['url'], `targets.${role}`);
    const url = r.string(
      target.url,
      `targets.${role}.url`,
      URL_PATTERN,
      'must be an http:// or https:// URL',
    );
    return url === undefined ? undefined : { url: url.replace(/\/+$/, '') };
  };
  if (targets) r.onlyKeys(targets, ['baseline', 'canary'], 'targets');
  const baseline = readTarget('baseline');
  const canary = readTarget('canary');
  if (baseline && canary && baseline.url === canary.url)
    r.fail('targets.canary.url', 'must differ from targets.baseline.url');

  const router = readAdapter(r, root.router, 'router');

  const profilesIn = r.optionalObject(root.profiles, 'profiles');
  if (profilesIn) r.onlyKeys(profilesIn, ['criteria', 'sampleSize', 'seed'], 'profiles');
  const criteria =
    profilesIn?.criteria === undefined ? {} : asJson(profilesIn.criteria, 'profiles.criteria', r);
  if (criteria !== undefined && !isPlainObject(criteria)) r.fail('profiles.criteria', 'must be an object');
  const sampleSize = r.number(
    profilesIn?.sampleSize,
    'profiles.sampleSize',
    { min: 1, max: 10_000, integer: true },
    50,
  );
  const seed = r.number(profilesIn?.seed, 'profiles.seed', { min: 0, max: 2 ** 31 - 1, integer: true }, 1);

  const intervalMs = r.duration(root.interval, 'interval', { minMs: 200, maxMs: 3_600_000 }, 60_000);

  const probeIn = r.optionalObject(root.probe, 'probe');
  if (probeIn) r.onlyKeys(probeIn, ['duration', 'concurrency', 'shards', 'taskQueue', 'timeScale'], 'probe');
  const defaultProbeMs = intervalMs === undefined ? undefined : Math.max(100, Math.round(intervalMs * 0.75));
  // Without a valid interval there is no default to fall back on; interval's own issue says why.
  const probeDurationMs =
    probeIn?.duration === undefined && defaultProbeMs === undefined
      ? undefined
      : r.duration(probeIn?.duration, 'probe.duration', { minMs: 100, maxMs: 3_600_000 }, defaultProbeMs);
  if (probeDurationMs !== undefined && intervalMs !== undefined && probeDurationMs > intervalMs) {
    r.fail('probe.duration', `must not exceed interval (${intervalMs} ms)`);
  }
  const concurrency = r.number(
    probeIn?.concurrency,
    'probe.concurrency',
    { min: 1, max: 1000, integer: true },
    10,
  );
  const shards = r.number(probeIn?.shards, 'probe.shards', { min: 1, max: 64, integer: true }, 1);
  const timeScale = r.number(probeIn?.timeScale, 'probe.timeScale', { min: 0, max: 100 }, 1);
  const probeTaskQueue =
    probeIn?.taskQueue === undefined
      ? undefined
      : r.string(
          probeIn.taskQueue,
          'probe.taskQueue',
          /^[A-Za-z0-9._-]{1,200}$/,
          'must be a task queue name',
        );
  // Every shard's activity input carries the sampled profile ids: keep one tick's probe
  // commands well under Temporal's 4 MB limit for a workflow task's result.
  if (shards !== undefined && sampleSize !== undefined && shards * sampleSize > MAX_PROBED_PROFILE_IDS) {
    r.fail(
      'probe.shards',
      `times profiles.sampleSize (${sampleSize}) must be at most ${MAX_PROBED_PROFILE_IDS} (profile ids sent per tick)`,
    );
  }
  if (shards !== undefined && concurrency !== undefined && shards > concurrency) {
    r.fail(
      'probe.shards',
      `must not exceed probe.concurrency (${concurrency}): each shard runs at least one user`,
    );
  }

  const analysisIn = r.optionalObject(root.analysis, 'analysis');
  const method = r.oneOf(analysisIn?.method, 'analysis.method', ANALYSIS_METHODS, 'betting');
  const alpha = r.number(analysisIn?.alpha, 'analysis.alpha', { exclusiveMin: 0, max: 0.5 }, 0.05);
  const analysisOptions: Record<string, Json> = {};
  for (const [key, value] of Object.entries(analysisIn ?? {})) {
    if (key === 'method' || key === 'alpha') continue;
    const copy = asJson(value, join('analysis', key), r);
    if (copy !== undefined) analysisOptions[key] = copy;
  }

  const alertsIn = r.optionalObject(root.alerts, 'alerts');
  if (alertsIn) r.onlyKeys(alertsIn, ['sinks'], 'alerts');
  const sinks: AdapterSpec[] = [];
  if (alertsIn?.sinks !== undefined) {
    if (!Array.isArray(alertsIn.sinks)) r.fail('alerts.sinks', 'must be a list');
    else {
      alertsIn.sinks.forEach((sink, index) => {
        const adapter = readAdapter(r, sink, `alerts.sinks[${index}]`);
        if (adapter) sinks.push(adapter);
      });
    }
  }

  const policy = readPolicy(r, root.policy, 'policy', DEFAULT_POLICY);
  const onAnomaly = r.oneOf(root.onAnomaly, 'onAnomaly', ['reduce', 'reduce-and-pause'] as const, 'reduce');

  const linksIn = r.optionalObject(root.links, 'links');
  if (linksIn) r.onlyKeys(linksIn, ['dashboardUrl', 'temporalUiUrl'], 'links');
  const links: RolloutSpec['links'] = {};
  for (const key of ['dashboardUrl', 'temporalUiUrl'] as const) {
    if (linksIn?.[key] === undefined) continue;
    const url = r.string(linksIn[key], `links.${key}`, URL_PATTERN, 'must be an http:// or https:// URL');
    if (url) links[key] = url.replace(/\/+$/, '');
  }
  const maxHistoryEvents = r.number(
    root.maxHistoryEvents,
    'maxHistoryEvents',
    { min: 100, max: 40_000, integer: true },
    4000,
  );

  r.throwIfAny();
  // Every field below was checked above; the reader returned undefined only alongside an issue.
  return {
    service: service!,
    version: version!,
    targets: { baseline: baseline!, canary: canary! },
    router: router!,
    profiles: { criteria: criteria as Record<string, Json>, sampleSize: sampleSize!, seed: seed! },
    probe: {
      durationMs: probeDurationMs!,
      concurrency: concurrency!,
      shards: shards!,
      timeScale: timeScale!,
      ...(probeTaskQueue ? { taskQueue: probeTaskQueue } : {}),
    },
    analysis: { method: method!, alpha: alpha!, options: analysisOptions },
    alerts: { sinks },
    policy: policy!,
    intervalMs: intervalMs!,
    onAnomaly: onAnomaly!,
    links,
    maxHistoryEvents: maxHistoryEvents!,
  };
}

function readAdapter(r: FieldReader, value: unknown, field: string): AdapterSpec | undefined {
  const object = r.object(value, field);
  if (!object) return undefined;
  const kind = r.string(
    object.kind,
    `${field}.kind`,
    /^[a-z][a-z0-9-]*$/,
    'must be a lowercase adapter name',
  );
  const options = asJson(object, field, r);
  if (kind === undefined || !isPlainObject(options)) return undefined;
  return { ...options, kind };
}

function readPolicy(
  r: FieldReader,
  value: unknown,
  field: string,
  base: Readonly<TrafficPolicy>,
): TrafficPolicy | undefined {
  const input = r.optionalObject(value, field);
  if (!input) return undefined;
  r.onlyKeys(input, POLICY_KEYS, field);
  const share = { exclusiveMin: 0, max: 100 };
  const ticks = (max: number) => ({ min: 0, max, integer: true });
  const policy: Partial<TrafficPolicy> = {
    initialShare: r.number(input.initialShare, `${field}.initialShare`, share, base.initialShare),
    stepUp: r.number(input.stepUp, `${field}.stepUp`, share, base.stepUp),
    stepDown: r.number(input.stepDown, `${field}.stepDown`, share, base.stepDown),
    promoteAt: r.number(input.promoteAt, `${field}.promoteAt`, share, base.promoteAt),
    probingTicks: r.number(input.probingTicks, `${field}.probingTicks`, ticks(1000), base.probingTicks),
    recoveryTicks: r.number(input.recoveryTicks, `${field}.recoveryTicks`, ticks(1000), base.recoveryTicks),
    cooldownTicks: r.number(input.cooldownTicks, `${field}.cooldownTicks`, ticks(10_000), base.cooldownTicks),
    maxAnomalies: r.number(
      input.maxAnomalies,
      `${field}.maxAnomalies`,
      { min: 1, max: 1000, integer: true },
      base.maxAnomalies,
    ),
    anomalyWindowTicks: r.number(
      input.anomalyWindowTicks,
      `${field}.anomalyWindowTicks`,
      { min: 1, max: 10_000, integer: true },
      base.anomalyWindowTicks,
    ),
    maxInconclusiveTicks: r.number(
      input.maxInconclusiveTicks,
      `${field}.maxInconclusiveTicks`,
      { min: 1, max: 10_000, integer: true },
      base.maxInconclusiveTicks,
    ),
  };
  // A policy that predates these fields keeps them absent unless the patch sets them.
  const raiseRequires = optionalField(input.raiseRequires, base.raiseRequires, (value, fallback) =>
    r.oneOf(value, `${field}.raiseRequires`, RAISE_REQUIREMENTS, fallback),
  );
  const maxRecoveryTicks = optionalField(input.maxRecoveryTicks, base.maxRecoveryTicks, (value, fallback) =>
    r.number(value, `${field}.maxRecoveryTicks`, { min: 1, max: 10_000, integer: true }, fallback),
  );
  const maxCutsAtLevel = optionalField(input.maxCutsAtLevel, base.maxCutsAtLevel, (value, fallback) =>
    r.number(value, `${field}.maxCutsAtLevel`, { min: 1, max: 1000, integer: true }, fallback),
  );
  const onRepeatedCuts = optionalField(input.onRepeatedCuts, base.onRepeatedCuts, (value, fallback) =>
    r.oneOf(value, `${field}.onRepeatedCuts`, REPEATED_CUTS_ACTIONS, fallback),
  );
  if (REQUIRED_POLICY_KEYS.some((key) => policy[key] === undefined)) return undefined;
  if ([raiseRequires, maxRecoveryTicks, maxCutsAtLevel, onRepeatedCuts].some((read) => !read.valid))
    return undefined;
  const complete = policy as TrafficPolicy;
  if (raiseRequires.value !== undefined) complete.raiseRequires = raiseRequires.value;
  if (maxRecoveryTicks.value !== undefined) complete.maxRecoveryTicks = maxRecoveryTicks.value;
  if (maxCutsAtLevel.value !== undefined) complete.maxCutsAtLevel = maxCutsAtLevel.value;
  if (onRepeatedCuts.value !== undefined) complete.onRepeatedCuts = onRepeatedCuts.value;
  if (complete.initialShare > complete.promoteAt) {
    r.fail(`${field}.initialShare`, `must not exceed ${field}.promoteAt (${complete.promoteAt})`);
    return undefined;
  }
  if (complete.maxAnomalies > complete.anomalyWindowTicks) {
    r.fail(
      `${field}.maxAnomalies`,
      `must not exceed ${field}.anomalyWindowTicks (${complete.anomalyWindowTicks})`,
    );
    return undefined;
  }
  return complete;
}

/**
 * Reads a field that older policies lack: absent in both the input and the base stays absent
 * (valid); otherwise `read` validates the input, falling back on the base's value.
 */
function optionalField<T>(
  value: unknown,
  base: T | undefined,
  read: (value: unknown, fallback: T | undefined) => T | undefined,
): { valid: boolean; value: T | undefined } {
  if (value === undefined && base === undefined) return { valid: true, value: undefined };
  const result = read(value, base);
  return { valid: result !== undefined, value: result };
}

/** Applies a partial policy change to the current policy; throws a ValidationError naming the field. */
export function mergePolicy(current: Readonly<TrafficPolicy>, patch: unknown): TrafficPolicy {
  const r = new FieldReader();
  const policy = readPolicy(r, patch, 'policy', current);
  if (isPlainObject(patch) && Object.keys(patch).length === 0)
    r.fail('policy', 'must change at least one field');
  r.throwIfAny();
  return policy!;
}
