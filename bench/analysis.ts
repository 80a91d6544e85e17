/**
 * `npm run bench:analysis`: the default `betting` method beside today's `sequential` and the
 * Kayenta-like `mann-whitney`, on the same seeded rollouts at realistic probe volumes (see
 * analysis-simulation.ts). Per method and volume (samples per action per tick): the false
 * rollback rate per rollout on A/A canaries and on a +2 % change inside the 5 % tolerance;
 * for late-onset regressions the share found within 20 ticks of the onset, the median ticks
 * from onset to detection and whether the regressed action was named. Beside them the
 * reference a fixed-horizon test needs when it knows onset and horizon, and the price of
 * requiring proof of health before each raise. The last stdout line is one JSON object.
 *
 *   --quick            a smoke run (few rollouts, short horizon) for tests
 *   --runs N           A/A rollouts per volume (default 50); other scenarios --reg-runs (default 25)
 *   --ticks N          horizon (default 32: the latest onset, tick 12, plus 20)
 *   --volumes a,b,c    samples per action per tick (default 20,50,200)
 *   --workers N        worker threads (default 2)
 *   --seed N
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { aggregateListedActions, analyzeAggregatedTick, type TickContext } from '../analysis/engine';
import { comparisonCount, parseAnalysisConfig, type AnalysisConfig } from '../analysis/config';
import { CLIP } from '../analysis/betting';
import { normalQuantile } from '../analysis/stats';
import type { Sample } from '../analysis/samples';
import type { AnalysisMethod } from '../rollout/spec';
import { fnvHash32, seededRandom } from '../core/random';
import {
  ACTIONS,
  REGRESSED_ACTION,
  SCENARIOS,
  simulateTick,
  worldAt,
  type Scenario,
} from './analysis-simulation';

const METHODS: AnalysisMethod[] = ['betting', 'betting-robust', 'sequential', 'mann-whitney'];
const ALPHA = 0.05;
/** Detection counts only within this many ticks of the onset. */
const WITHIN = 20;
/** Regime steps of the policy simulation: the canary's share of real traffic. */
const SHARES = [0.01, 0.05, 0.1, 0.25, 0.5];
/** Real-user requests per tick at 100 %: exposure = share x this while the canary is regressed. */
const REAL_REQUESTS_PER_TICK = 10_000;

interface Options {
  runs: number;
  regRuns: number;
  ticks: number;
  volumes: number[];
  workers: number;
  seed: number;
  quick: boolean;
}

type Task =
  | { kind: 'detect'; scenario: string; volume: number; index: number }
  | { kind: 'policy'; scenario: 'aa' | 'bad'; volume: number; index: number };

interface DetectTrace {
  /** Per method: first anomalous tick (absolute) and the action it named, or null. */
  first: Record<string, { tick: number; action: string | null; severe: boolean } | null>;
  onset: number;
  /** Fixed-horizon oracle: did a one-look test over ticks onset..onset+h-1 reject, for h = 1..WITHIN. */
  oracle: boolean[];
}

interface PolicyTrace {
  /** Per policy: tick promoted (null: not within the horizon), rolled back, exposure. */
  outcome: Record<string, { promoted: number | null; rolledBack: number | null; exposure: number }>;
}

interface WorkerInput {
  options: Options;
  tasks: Task[];
}

type WorkerResult = { task: Task; detect?: DetectTrace; policy?: PolicyTrace };

function parseOptions(argv: string[]): Options {
  const value = (name: string, fallback: number) => {
    const at = argv.indexOf(name);
    if (at < 0) return fallback;
    const parsed = Number(argv[at + 1]);
    if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`${name} must be a positive number`);
    return parsed;
  };
  const quick = argv.includes('--quick');
  const at = argv.indexOf('--volumes');
  const volumes =
    at < 0
      ? quick
        ? [50]
        : [20, 50, 200]
      : String(argv[at + 1])
          .split(',')
          .map(Number);
  if (volumes.some((v) => !Number.isFinite(v) || v <= 0))
    throw new Error('--volumes must be positive numbers');
  return {
    runs: value('--runs', quick ? 10 : 50),
    regRuns: value('--reg-runs', quick ? 6 : 25),
    ticks: value('--ticks', quick ? 20 : 32),
    volumes,
    workers: value('--workers', 2),
    seed: value('--seed', 20261206),
    quick,
  };
}

const actionNames = ACTIONS.map((action) => action.name);

function configFor(method: AnalysisMethod): AnalysisConfig {
  return parseAnalysisConfig(
    { actions: actionNames, metrics: [{ name: 'latency_ms' }, { name: 'error' }] },
    method,
    ALPHA,
  );
}

function onsetOf(scenario: Scenario, random: () => number): number {
  if (!scenario.onset) return 1;
  const [from, to] = scenario.onset;
  return from + Math.floor(random() * (to - from + 1));
}

/** Winsorised log-ratios of random pairs of the regressed action this tick (the oracle's data). */
function oraclePairs(samples: Sample[], random: () => number): number[] {
  const values = (target: string) =>
    samples
      .filter((s) => s.metric === 'latency_ms' && s.action === REGRESSED_ACTION && s.target === target)
      .flatMap((s) => s.histogram?.values ?? []);
  const xs = values('baseline').sort(() => random() - 0.5);
  const ys = values('canary').sort(() => random() - 0.5);
  const n = Math.min(xs.length, ys.length);
  return Array.from({ length: n }, (_, i) =>
    Math.max(-CLIP, Math.min(CLIP, Math.log(ys[i] as number) - Math.log(xs[i] as number))),
  );
}

function runDetect(options: Options, task: Extract<Task, { kind: 'detect' }>): DetectTrace {
  const scenario = SCENARIOS.find((s) => s.id === task.scenario) as Scenario;
  const random = seededRandom(options.seed ^ fnvHash32(`${task.scenario}|${task.volume}|${task.index}`));
  const onset = onsetOf(scenario, random);
  const phase = Math.floor(random() * 120);
  const configs = METHODS.map(configFor);
  const states: unknown[] = METHODS.map(() => null);
  const first: DetectTrace['first'] = Object.fromEntries(METHODS.map((m) => [m, null]));
  const oracleData: number[][] = [];
  for (let t = 1; t <= options.ticks; t += 1) {
    const samples = simulateTick(random, scenario, t, task.volume, worldAt(random, t, phase), t >= onset);
    const aggregate = aggregateListedActions(configs[0] as AnalysisConfig, samples);
    METHODS.forEach((method, k) => {
      const result = analyzeAggregatedTick(configs[k] as AnalysisConfig, states[k], t, aggregate);
      states[k] = result.state;
      if (first[method] === null && result.verdict.status === 'anomalous') {
        const anomaly = result.verdict.anomalies[0];
        first[method] = { tick: t, action: anomaly?.action ?? null, severe: anomaly?.severe === true };
      }
    });
    if (scenario.latencyScale && scenario.regression && t >= onset && oracleData.length < WITHIN)
      oracleData.push(oraclePairs(samples, random));
  }
  return { first, onset, oracle: oracleVerdicts(oracleData) };
}

/**
 * The fixed-horizon reference: one look after h ticks of data since the (known) onset, a
 * one-sided z-test of the winsorised log-ratio against log(1 + tolerance) at the same family-wise
 * alpha and the same Bonferroni split as the betting method.
 */
function oracleVerdicts(ticks: number[][]): boolean[] {
  const comparisons = comparisonCount(configFor('betting'));
  const z = normalQuantile(1 - ALPHA / comparisons);
  const boundary = Math.log(1.05);
  const out: boolean[] = [];
  let n = 0;
  let sum = 0;
  let squares = 0;
  for (const tick of ticks) {
    for (const r of tick) {
      n += 1;
      sum += r;
      squares += r * r;
    }
    const mean = n > 0 ? sum / n : 0;
    const sd = n > 1 ? Math.sqrt(Math.max(1e-12, (squares - n * mean * mean) / (n - 1))) : Infinity;
    out.push(n > 1 && (mean - boundary) / (sd / Math.sqrt(n)) > z);
  }
  return out;
}

/**
 * A simple stepping policy over SHARES: each raise starts a regime; an anomaly rolls back. Policy
 * `absence` raises after a healthy tick, `proof` only when the verdict proves health.
 */
function runPolicy(options: Options, task: Extract<Task, { kind: 'policy' }>): PolicyTrace {
  const scenario: Scenario =
    task.scenario === 'aa'
      ? { id: 'aa', title: 'A/A', regression: false }
      : { id: 'bad', title: '+30 %', regression: true, latencyScale: 1.3 };
  // `carried`: the share is given, so raises keep the evidence; `fresh`: every regime starts afresh.
  const policies: { name: string; method: AnalysisMethod; proof: boolean; share: boolean | null }[] = [
    { name: 'betting carried/absence', method: 'betting', proof: false, share: true },
    { name: 'betting carried/proof', method: 'betting', proof: true, share: true },
    { name: 'betting fresh/absence', method: 'betting', proof: false, share: false },
    { name: 'sequential/absence (today)', method: 'sequential', proof: false, share: null },
  ];
  const random = seededRandom(
    options.seed ^ fnvHash32(`policy|${task.scenario}|${task.volume}|${task.index}`),
  );
  const phase = Math.floor(random() * 120);
  const horizon = options.quick ? 20 : 60;
  const ticks: Sample[][] = [];
  for (let t = 1; t <= horizon; t += 1)
    ticks.push(simulateTick(random, scenario, t, task.volume, worldAt(random, t, phase), true));
  const outcome: PolicyTrace['outcome'] = {};
  for (const policy of policies) {
    const config = configFor(policy.method);
    let state: unknown = null;
    let step = 0;
    let regime = { index: 1, sinceTick: 1 };
    let exposure = 0;
    let promoted: number | null = null;
    let rolledBack: number | null = null;
    for (let t = 1; t <= horizon && promoted === null && rolledBack === null; t += 1) {
      const share = SHARES[step] as number;
      if (scenario.regression) exposure += share * REAL_REQUESTS_PER_TICK;
      const context: TickContext =
        policy.share === null ? {} : { regime: policy.share ? { ...regime, share } : regime };
      const result = analyzeAggregatedTick(
        config,
        state,
        t,
        aggregateListedActions(config, ticks[t - 1] as Sample[]),
        context,
      );
      state = result.state;
      const verdict = result.verdict;
      if (verdict.status === 'anomalous') rolledBack = t;
      else if (verdict.status === 'healthy' && (!policy.proof || verdict.healthProven === true)) {
        if (step === SHARES.length - 1) promoted = t;
        else {
          step += 1;
          regime = { index: regime.index + 1, sinceTick: t + 1 };
        }
      }
    }
    outcome[policy.name] = { promoted, rolledBack, exposure };
  }
  return { outcome };
}

function simulate(input: WorkerInput): WorkerResult[] {
  return input.tasks.map((task) =>
    task.kind === 'detect'
      ? { task, detect: runDetect(input.options, task) }
      : { task, policy: runPolicy(input.options, task) },
  );
}

async function runWorkers(options: Options, tasks: Task[]): Promise<WorkerResult[]> {
  const count = Math.max(1, Math.min(options.workers, tasks.length));
  if (count === 1) return simulate({ options, tasks });
  const chunks: Task[][] = Array.from({ length: count }, () => []);
  tasks.forEach((task, i) => chunks[i % count]?.push(task));
  const outputs = await Promise.all(
    chunks.map(
      (chunk) =>
        new Promise<WorkerResult[]>((resolve, reject) => {
          // Workers do not inherit tsx's loader hooks: register its CommonJS hook, then load this file.
          const bootstrap = `require('tsx/cjs'); require(${JSON.stringify(__filename)});`;
          const worker = new Worker(bootstrap, {
            eval: true,
            workerData: { options, tasks: chunk } satisfies WorkerInput,
          });
          worker.once('message', (message: WorkerResult[]) => resolve(message));
          worker.once('error', reject);
          worker.once('exit', (code) => {
            if (code !== 0) reject(new Error(`simulation worker exited with ${code}`));
          });
        }),
    ),
  );
  return outputs.flat();
}

// ------------------------------------------------------------------------------ summary

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] as number;
}

function percent(x: number | null): string {
  return x === null ? '-' : `${(x * 100).toFixed(x < 0.1 && x > 0 ? 1 : 0)}%`;
}

interface DetectCell {
  /** Share of runs with an anomaly (any tick): false rollbacks for non-regressions. */
  fired: number;
  /** Regressions: found within WITHIN ticks of the onset, not before it. */
  found: number;
  early: number;
  /** Median ticks from onset to detection, undetected counted as never (null past WITHIN). */
  medianTicks: number | null;
  rightAction: number | null;
}

function summariseDetect(traces: DetectTrace[], method: string): DetectCell {
  const delays: number[] = [];
  let fired = 0;
  let found = 0;
  let early = 0;
  let right = 0;
  for (const trace of traces) {
    const first = trace.first[method];
    if (first) fired += 1;
    if (first && first.tick < trace.onset) early += 1;
    const delay = first && first.tick >= trace.onset ? first.tick - trace.onset + 1 : Infinity;
    if (delay <= WITHIN) {
      found += 1;
      if (first?.action === REGRESSED_ACTION) right += 1;
    }
    delays.push(delay);
  }
  const mid = median(delays);
  return {
    fired: fired / traces.length,
    found: found / traces.length,
    early: early / traces.length,
    medianTicks: mid === null || !Number.isFinite(mid) || mid > WITHIN ? null : mid,
    rightAction: found === 0 ? null : right / found,
  };
}

/** The smallest horizon at which the fixed-horizon test rejects in at least half of the runs. */
function oracleHorizon(traces: DetectTrace[]): number | null {
  for (let h = 1; h <= WITHIN; h += 1) {
    const rejected = traces.filter((trace) => trace.oracle[h - 1] === true).length;
    if (rejected >= traces.length / 2) return h;
  }
  return null;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)];
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const started = Date.now();
  const tasks: Task[] = [];
  for (const volume of options.volumes) {
    for (const scenario of SCENARIOS) {
      const count = scenario.id === 'aa' ? options.runs : options.regRuns;
      for (let index = 0; index < count; index += 1)
        tasks.push({ kind: 'detect', scenario: scenario.id, volume, index });
    }
  }
  const policyVolume = options.volumes.includes(50) ? 50 : (options.volumes[0] as number);
  for (const scenario of ['aa', 'bad'] as const)
    for (let index = 0; index < options.regRuns; index += 1)
      tasks.push({ kind: 'policy', scenario, volume: policyVolume, index });
  const results = await runWorkers(options, tasks);

  const detect = (scenario: string, volume: number) =>
    results
      .filter((r) => r.task.kind === 'detect' && r.task.scenario === scenario && r.task.volume === volume)
      .map((r) => r.detect as DetectTrace);

  console.log(
    `analysis benchmark: alpha ${ALPHA}, ${options.runs} A/A and ${options.regRuns} rollouts per other scenario and volume, ` +
      `${options.ticks} ticks; ${ACTIONS.length} actions (probe weights ${ACTIONS.map((a) => `${a.name} ${a.weight}`).join(', ')}); ` +
      `volume = samples per tick per target of the regressed action "${REGRESSED_ACTION}"; daily drift and spikes hit both targets`,
  );
  console.log(
    `FRR = share of rollouts with any anomaly; found = detected within ${WITHIN} ticks of the onset (onsets at ticks 3-12); ` +
      'early = flagged before the onset; med = median ticks from onset to detection (onset tick = 1); right = named the regressed action',
  );
  const regressions = SCENARIOS.filter((s) => s.regression);
  const header = [
    'method @ volume',
    ...SCENARIOS.filter((s) => !s.regression).map((s) => `${s.id} FRR`),
    ...regressions.map((s) => `${s.id} found/early/med/right`),
  ];
  const rows: string[][] = [];
  const cells = new Map<string, DetectCell>();
  for (const volume of options.volumes) {
    for (const method of METHODS) {
      const row = [`${method} @${volume}`];
      for (const scenario of SCENARIOS) {
        const cell = summariseDetect(detect(scenario.id, volume), method);
        cells.set(`${method}|${volume}|${scenario.id}`, cell);
        row.push(
          scenario.regression
            ? `${percent(cell.found)}/${percent(cell.early)}/${cell.medianTicks ?? `>${WITHIN}`}/${percent(cell.rightAction)}`
            : percent(cell.fired),
        );
      }
      rows.push(row);
    }
  }
  for (const line of table(header, rows)) console.log(line);
  const oracle = Object.fromEntries(options.volumes.map((v) => [v, oracleHorizon(detect('lat30', v))]));
  console.log(
    `fixed-horizon reference (knows onset and horizon; one-sided z-test of winsorised log-ratios at alpha/${comparisonCount(configFor('betting'))}): ` +
      `median ticks for lat30 ${options.volumes.map((v) => `@${v}: ${oracle[v] ?? `>${WITHIN}`}`).join(', ')}`,
  );

  const policyResults = results.filter((r) => r.task.kind === 'policy');
  const policyNames = Object.keys(policyResults[0]?.policy?.outcome ?? {});
  const policyRows = policyNames.map((name) => {
    const of = (scenario: string) =>
      policyResults
        .filter((r) => r.task.kind === 'policy' && r.task.scenario === scenario)
        .map((r) => r.policy?.outcome[name] as PolicyTrace['outcome'][string]);
    const healthy = of('aa');
    const bad = of('bad');
    const promotedTicks = healthy.map((o) => o.promoted ?? Infinity);
    const mid = median(promotedTicks);
    return {
      name,
      promotedHealthy: healthy.filter((o) => o.promoted !== null).length / healthy.length,
      medianPromotion: mid !== null && Number.isFinite(mid) ? mid : null,
      falseRollback: healthy.filter((o) => o.rolledBack !== null).length / healthy.length,
      promotedBad: bad.filter((o) => o.promoted !== null).length / bad.length,
      medianExposure: median(bad.map((o) => o.exposure)) ?? 0,
    };
  });
  console.log(
    `policy price at ${policyVolume} samples per action per tick (shares ${SHARES.map((s) => `${s * 100}%`).join(' -> ')} -> promote; ` +
      `anomaly -> roll back; exposure = real requests served by a +30 % canary at ${REAL_REQUESTS_PER_TICK}/tick at 100 %):`,
  );
  for (const line of table(
    [
      'policy',
      'healthy promoted',
      'median ticks to promote',
      'healthy rolled back',
      'bad promoted',
      'median exposure (bad)',
    ],
    policyRows.map((row) => [
      row.name,
      percent(row.promotedHealthy),
      String(row.medianPromotion ?? '-'),
      percent(row.falseRollback),
      percent(row.promotedBad),
      String(Math.round(row.medianExposure)),
    ]),
  ))
    console.log(line);

  const at50 = options.volumes.includes(50) ? 50 : (options.volumes[0] as number);
  const cell = (method: string, volume: number, scenario: string) =>
    cells.get(`${method}|${volume}|${scenario}`) as DetectCell;
  const ticksOf = (method: string) => cell(method, at50, 'lat30').medianTicks ?? WITHIN + 1;
  const summary = {
    bench: 'analysis',
    ratio: Number((ticksOf('betting') / ticksOf('sequential')).toFixed(3)),
    ratio_definition: `median ticks from onset to detection of +30 % on one action at ${at50} samples per action per tick: betting / sequential (lower is better)`,
    median_ticks: Object.fromEntries(METHODS.map((m) => [m, cell(m, at50, 'lat30').medianTicks])),
    fixed_horizon_ticks: oracle[at50] ?? null,
    found_within_20: Object.fromEntries(METHODS.map((m) => [m, cell(m, at50, 'lat30').found])),
    right_action: Object.fromEntries(METHODS.map((m) => [m, cell(m, at50, 'lat30').rightAction])),
    false_rollback: Object.fromEntries(
      METHODS.map((m) => [m, Object.fromEntries(options.volumes.map((v) => [v, cell(m, v, 'aa').fired]))]),
    ),
    false_rollback_with_tick_effects: Object.fromEntries(
      METHODS.map((m) => [m, Object.fromEntries(options.volumes.map((v) => [v, cell(m, v, 'aa15').fired]))]),
    ),
    within_tolerance_flagged: Object.fromEntries(
      METHODS.map((m) => [
        m,
        Object.fromEntries(options.volumes.map((v) => [v, cell(m, v, 'within').fired])),
      ]),
    ),
    policy: Object.fromEntries(policyRows.map((row) => [row.name, row])),
    runs_aa: options.runs,
    runs_per_scenario: options.regRuns,
    ticks: options.ticks,
    volumes: options.volumes,
    seconds: Math.round((Date.now() - started) / 1000),
  };
  console.log(JSON.stringify(summary));
}

if (isMainThread) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
} else {
  parentPort?.postMessage(simulate(workerData as WorkerInput));
}
