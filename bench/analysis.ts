/**
 * `npm run bench:analysis`: the three analysis methods side by side on the same seeded,
 * simulated rollouts (see analysis-simulation.ts). Reports per method and scenario the false
 * rollback rate (A/A, and a regression inside the tolerance), detection rate within the
 * horizon, median ticks to detect, whether the regressed action was named, the same at equal
 * false-rollback rates (per-look thresholds calibrated on the A/A runs), and the analysis cost
 * per tick at 10 000 samples per target. The last stdout line is one JSON object.
 *
 *   --quick            a smoke run (few rollouts, short horizon) for tests
 *   --rollouts N       A/A rollouts (default 1000); regression scenarios get N/10 each (--ab-rollouts)
 *   --ticks N          horizon (default 60)
 *   --workers N        worker threads (default 2)
 *   --seed N
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { analyzeTick } from '../analysis/engine';
import type { Sample } from '../analysis/samples';
import { ANALYSIS_METHODS, type AnalysisMethod } from '../rollout/spec';
import {
  ACTIONS,
  buildTables,
  configFor,
  REGRESSED_ACTION,
  runRollouts,
  scenarioTruth,
  SCENARIOS,
  simulateTick,
  type RolloutTrace,
} from './analysis-simulation';
import { seededRandom } from '../core/random';

interface Options {
  rollouts: number;
  abRollouts: number;
  ticks: number;
  workers: number;
  seed: number;
  perTarget: number;
  quick: boolean;
}

interface Task {
  scenario: string;
  index: number;
}

type Traces = Record<AnalysisMethod, RolloutTrace>;

interface WorkerInput {
  options: Options;
  tasks: Task[];
}

interface WorkerOutput {
  results: { task: Task; traces: Traces }[];
}

function parseOptions(argv: string[]): Options {
  const value = (name: string, fallback: number) => {
    const at = argv.indexOf(name);
    if (at < 0) return fallback;
    const parsed = Number(argv[at + 1]);
    if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`${name} must be a positive number`);
    return parsed;
  };
  const quick = argv.includes('--quick');
  const rollouts = value('--rollouts', quick ? 40 : 1000);
  return {
    rollouts,
    abRollouts: Math.max(5, Math.round(value('--ab-rollouts', rollouts / 10))),
    ticks: value('--ticks', quick ? 20 : 60),
    workers: value('--workers', 2),
    seed: value('--seed', 20240601),
    perTarget: value('--per-target', 4000),
    quick,
  };
}

function simulate(input: WorkerInput): WorkerOutput {
  const { options } = input;
  const tables = buildTables(options.seed, SCENARIOS, options.quick ? 100_000 : 400_000);
  const configs = Object.fromEntries(ANALYSIS_METHODS.map((method) => [method, configFor(method)]));
  const results = input.tasks.map((task) => {
    const scenario = SCENARIOS.find((s) => s.id === task.scenario);
    if (!scenario) throw new Error(`unknown scenario ${task.scenario}`);
    const random = seededRandom(options.seed ^ (hashText(task.scenario) + task.index * 7919));
    const ticks: Sample[][] = [];
    for (let t = 1; t <= options.ticks; t += 1)
      ticks.push(simulateTick(random, tables, scenario, t, options.perTarget));
    const all = runRollouts(
      ANALYSIS_METHODS.map((method) => configs[method] as ReturnType<typeof configFor>),
      ticks,
    );
    const traces = Object.fromEntries(ANALYSIS_METHODS.map((method, k) => [method, all[k]])) as Traces;
    return { task, traces };
  });
  return { results };
}

function hashText(text: string): number {
  let hash = 2166136261;
  for (let i = 0; i < text.length; i += 1) hash = Math.imul(hash ^ text.charCodeAt(i), 16777619);
  return hash >>> 0;
}

async function runWorkers(options: Options, tasks: Task[]): Promise<WorkerOutput['results']> {
  const count = Math.max(1, Math.min(options.workers, tasks.length));
  const chunks: Task[][] = Array.from({ length: count }, () => []);
  tasks.forEach((task, i) => chunks[i % count]?.push(task));
  if (count === 1) return simulate({ options, tasks }).results;
  const outputs = await Promise.all(
    chunks.map(
      (chunk) =>
        new Promise<WorkerOutput>((resolve, reject) => {
          // Workers do not inherit tsx's loader hooks: register its CommonJS hook, then load this file.
          const bootstrap = `require('tsx/cjs'); require(${JSON.stringify(__filename)});`;
          const worker = new Worker(bootstrap, {
            eval: true,
            workerData: { options, tasks: chunk } satisfies WorkerInput,
          });
          worker.once('message', (message: WorkerOutput) => resolve(message));
          worker.once('error', reject);
          worker.once('exit', (code) => {
            if (code !== 0) reject(new Error(`simulation worker exited with ${code}`));
          });
        }),
    ),
  );
  return outputs.flatMap((output) => output.results);
}

// ------------------------------------------------------------------------------ summary

interface Cell {
  rate: number;
  medianTicks: number | null;
  rightAction: number | null;
}

function firstFire(trace: RolloutTrace, alpha: number): number | null {
  const at = trace.minP.findIndex((p) => p <= alpha);
  return at < 0 ? null : at + 1;
}

function summarise(traces: RolloutTrace[], alpha: number, horizon: number): Cell {
  const regressed = ACTIONS.findIndex((a) => a.name === REGRESSED_ACTION);
  const fires = traces.map((trace) => firstFire(trace, alpha));
  const detected = fires.filter((tick): tick is number => tick !== null);
  const censored = fires.map((tick) => tick ?? horizon + 1).sort((a, b) => a - b);
  const median = censored[Math.floor((censored.length - 1) / 2)] as number;
  const right = traces.filter((trace, i) => {
    const tick = fires[i];
    return tick !== null && tick !== undefined && trace.action[tick - 1] === regressed;
  }).length;
  return {
    rate: detected.length / traces.length,
    medianTicks: median > horizon ? null : median,
    rightAction: detected.length === 0 ? null : right / detected.length,
  };
}

/**
 * Per-look threshold at which the A/A false rollback rate is at most `target`: just below the
 * (k+1)-th smallest per-rollout minimum, so ties never push the rate above the target.
 */
function calibrate(aa: RolloutTrace[], target: number): number {
  const minima = aa.map((trace) => Math.min(...trace.minP)).sort((a, b) => a - b);
  const allowed = Math.floor(target * minima.length + 1e-9);
  if (allowed >= minima.length) return 1;
  const next = minima[allowed] as number;
  // NaN: more A/A rollouts than allowed fire at p = 0 (a degenerate band), so no threshold works.
  return next > 0 ? next * (1 - 1e-9) : NaN;
}

function percent(x: number | null): string {
  return x === null ? '-' : `${(x * 100).toFixed(x < 0.1 && x > 0 ? 1 : 0)}%`;
}

function costPerTick(method: AnalysisMethod, seed: number, samplesPerTarget: number, ticks: number): number {
  // Raw values, one sample per request: the full cost of ingest, bucketing and tests.
  const random = seededRandom(seed);
  const tables = buildTables(seed, [], 50_000);
  const config = configFor(method);
  const tickSamples = (t: number): Sample[] => {
    const samples: Sample[] = [];
    for (const sample of simulateTick(
      random,
      tables,
      { id: 'aa', title: 'A/A', regression: false },
      t,
      samplesPerTarget,
    )) {
      if (sample.histogram) {
        const { values, counts } = sample.histogram;
        values.forEach((value, i) => {
          for (let k = 0; k < (counts[i] as number); k += 1)
            samples.push({
              t,
              target: sample.target,
              metric: sample.metric,
              action: sample.action as string,
              value: value * (1 + (random() - 0.5) * 0.02),
            });
        });
      } else samples.push(sample);
    }
    return samples;
  };
  let state: unknown = null;
  for (let t = 1; t <= 5; t += 1) state = analyzeTick(config, state, t, tickSamples(t)).state;
  let elapsed = 0n;
  for (let t = 6; t < 6 + ticks; t += 1) {
    const samples = tickSamples(t);
    const started = process.hrtime.bigint();
    state = JSON.parse(JSON.stringify(analyzeTick(config, state, t, samples).state));
    elapsed += process.hrtime.bigint() - started;
  }
  return Number(elapsed / 1000n) / ticks;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const started = Date.now();
  const tasks: Task[] = [];
  for (const scenario of SCENARIOS) {
    const count = scenario.id === 'aa' ? options.rollouts : options.abRollouts;
    for (let index = 0; index < count; index += 1) tasks.push({ scenario: scenario.id, index });
  }
  const results = await runWorkers(options, tasks);
  const traces = (method: AnalysisMethod, scenario: string) =>
    results.filter((r) => r.task.scenario === scenario).map((r) => r.traces[method]);

  const sequentialFrr = summarise(traces('sequential', 'aa'), 0.05, options.ticks).rate;
  const matched = Math.max(sequentialFrr, 1 / options.rollouts);
  const settings: { method: AnalysisMethod; label: string; alpha: number }[] = [];
  for (const method of ANALYSIS_METHODS) {
    settings.push({ method, label: `${method} a=0.05`, alpha: 0.05 });
    settings.push({ method, label: `${method} a=0.01`, alpha: 0.01 });
    if (method !== 'sequential')
      settings.push({ method, label: `${method} @FRR=seq`, alpha: calibrate(traces(method, 'aa'), matched) });
    settings.push({ method, label: `${method} @FRR=5%`, alpha: calibrate(traces(method, 'aa'), 0.05) });
  }

  const table = settings.map((setting) => ({
    ...setting,
    cells: Object.fromEntries(
      SCENARIOS.map((s) => [s.id, summarise(traces(setting.method, s.id), setting.alpha, options.ticks)]),
    ),
  }));

  const header = [
    'method / setting',
    ...SCENARIOS.map((s) => (s.regression ? `${s.id} det/med/right` : `${s.id} FRR`)),
  ];
  const rows = table.map((row) => [
    Number.isNaN(row.alpha) ? `${row.label} (none)` : row.label,
    ...SCENARIOS.map((s) => {
      const cell = row.cells[s.id] as Cell;
      if (!s.regression) return percent(cell.rate);
      return `${percent(cell.rate)}/${cell.medianTicks ?? `>${options.ticks}`}/${percent(cell.rightAction)}`;
    }),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ');
  console.log(
    `analysis benchmark: ${options.rollouts} A/A and ${options.abRollouts} per regression scenario, ${options.ticks} ticks, ` +
      `~${options.perTarget} probe requests per target per tick over ${ACTIONS.length} actions; regressions in "${REGRESSED_ACTION}" (${ACTIONS.find((a) => a.name === REGRESSED_ACTION)?.volume ?? 0} of traffic)`,
  );
  console.log(
    'FRR = false rollback rate (any anomalous tick within the horizon); det = detected within the horizon; med = median tick of first detection (undetected count as never); right = first anomaly named the regressed action',
  );
  console.log(
    `@FRR=seq: per-look threshold calibrated on the A/A runs to the sequential method's A/A rate at a=0.05 (${percent(matched)}); @FRR=5%: calibrated to 5 %`,
  );
  const truthTables = buildTables(options.seed, SCENARIOS, options.quick ? 100_000 : 400_000);
  for (const scenario of SCENARIOS.filter((s) => s.latencyScale || s.slowTail)) {
    const truth = scenarioTruth(truthTables, scenario);
    console.log(
      `  ${scenario.id}: true change of ${REGRESSED_ACTION} latency ` +
        Object.entries(truth)
          .map(([q, x]) => `${q} ${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`)
          .join(', '),
    );
  }
  for (const method of ANALYSIS_METHODS) {
    const certain =
      traces(method, 'aa').filter((trace) => Math.min(...trace.minP) === 0).length / options.rollouts;
    if (certain > 0)
      console.log(
        `  ${method}: ${percent(certain)} of A/A rollouts have a tick at p = 0 (e.g. a band with sd = 0), a false rollback at any threshold; (none) rows cannot be calibrated below that`,
      );
  }
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const row of rows) console.log(line(row));

  const costTicks = options.quick ? 3 : 20;
  const costPerTarget = options.quick ? 2000 : 10_000;
  // Once untimed to warm the JIT up for every method, then the measurement.
  for (const method of ANALYSIS_METHODS) costPerTick(method, options.seed + 5, costPerTarget, 1);
  const cost = Object.fromEntries(
    ANALYSIS_METHODS.map((method) => [
      method,
      costPerTick(method, options.seed + 5, costPerTarget, costTicks),
    ]),
  );
  console.log(
    `analysis cost per tick at ${costPerTarget} samples per target (raw values, ${ACTIONS.length} actions x 2 metrics): ` +
      ANALYSIS_METHODS.map((m) => `${m} ${Math.round(cost[m] as number)} us`).join(', '),
  );

  const regressionIds = SCENARIOS.filter((s) => s.regression).map((s) => s.id);
  const ratioOf = (a: string, b: string) => {
    const rowA = table.find((r) => r.label === a);
    const rowB = table.find((r) => r.label === b);
    const logs = regressionIds.map((id) => {
      const x = (rowA?.cells[id] as Cell).medianTicks ?? options.ticks + 1;
      const y = (rowB?.cells[id] as Cell).medianTicks ?? options.ticks + 1;
      return Math.log(x / y);
    });
    return Math.exp(logs.reduce((s, x) => s + x, 0) / logs.length);
  };
  const ratio = ratioOf('sequential a=0.05', 'mann-whitney @FRR=seq');
  const cell = (label: string, id: string) => table.find((r) => r.label === label)?.cells[id] as Cell;
  const summary = {
    bench: 'analysis',
    ratio: Number(ratio.toFixed(3)),
    ratio_definition:
      'geometric mean over regression scenarios of median ticks-to-detect: sequential (a=0.05, anytime-valid) / mann-whitney calibrated to the same A/A false rollback rate; < 1 means sequential detects sooner',
    ratio_at_5pct_frr: Number(ratioOf('sequential @FRR=5%', 'mann-whitney @FRR=5%').toFixed(3)),
    false_rollback_sequential: cell('sequential a=0.05', 'aa').rate,
    false_rollback_mann_whitney: cell('mann-whitney a=0.05', 'aa').rate,
    false_rollback_seed: cell('seed a=0.05', 'aa').rate,
    false_rollback_sequential_alpha_0_01: cell('sequential a=0.01', 'aa').rate,
    false_rollback_mann_whitney_alpha_0_01: cell('mann-whitney a=0.01', 'aa').rate,
    false_rollback_seed_alpha_0_01: cell('seed a=0.01', 'aa').rate,
    within_tolerance_flagged_sequential: cell('sequential a=0.05', 'p90+4').rate,
    within_tolerance_flagged_mann_whitney: cell('mann-whitney a=0.05', 'p90+4').rate,
    cost_us_per_tick: Object.fromEntries(Object.entries(cost).map(([m, us]) => [m, Math.round(us)])),
    cost_samples_per_target: costPerTarget,
    rollouts_aa: options.rollouts,
    rollouts_per_regression: options.abRollouts,
    ticks: options.ticks,
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
