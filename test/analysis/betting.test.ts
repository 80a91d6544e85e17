import fc from 'fast-check';
import { analyzeTick, type TickContext } from '../../analysis/engine';
import { parseAnalysisConfig, type AnalysisConfig } from '../../analysis/config';
import {
  betOnScores,
  betOnTickMeans,
  freshMoments,
  freshTickSpread,
  learnTickSpread,
  meanScore,
  relativeLogRatios,
  tickScale,
  gridEstimate,
  regimeShare,
  startLogWeight,
  tailScore,
  testGrid,
  trendScore,
} from '../../analysis/betting';
import type { Sample } from '../../analysis/samples';
import { packState } from '../../signals/analyzer';
import type { Json } from '../../core/validation';
import type { Verdict } from '../../rollout/verdict';
import { seededRandom, type RandomStream } from '../../core/random';

function gaussian(random: RandomStream): number {
  return Math.sqrt(-2 * Math.log(Math.max(random(), 1e-12))) * Math.cos(2 * Math.PI * random());
}

/** Heavy-tailed latency: a log-normal body (p99 ~4x the median) and a 2 % Pareto tail. */
function latency(random: RandomStream, median: number): number {
  const body = median * Math.exp(0.6 * gaussian(random));
  return random() < 0.02 ? body * Math.max(random(), 1e-9) ** (-1 / 1.3) : body;
}

interface Plan {
  actions: string[];
  perAction: number;
  /** Canary latency factor per action this tick. */
  slowdown?: Record<string, number>;
  /** This share of one action's canary requests is `factor` times slower. */
  slowTail?: { action: string; share: number; factor: number };
  errorRate?: { baseline: number; canary: number };
  memory?: { baseline: number; canary: number };
}

/** One tick: a drift and an occasional spike hit both targets alike. */
function tick(random: RandomStream, t: number, plan: Plan): Sample[] {
  const drift = Math.exp(0.3 * Math.sin(t / 7)) * (random() < 0.1 ? 2.5 : 1);
  const samples: Sample[] = [];
  for (const target of ['baseline', 'canary'] as const) {
    for (const action of plan.actions) {
      const factor = target === 'canary' ? (plan.slowdown?.[action] ?? 1) : 1;
      const tail = target === 'canary' && plan.slowTail?.action === action ? plan.slowTail : null;
      const values = Array.from(
        { length: plan.perAction },
        () => latency(random, 40) * drift * factor * (tail && random() < tail.share ? tail.factor : 1),
      );
      samples.push({
        t,
        target,
        metric: 'latency_ms',
        action,
        histogram: { values, counts: values.map(() => 1) },
      });
      const rate = plan.errorRate?.[target] ?? 0.005;
      let events = 0;
      for (let i = 0; i < plan.perAction; i += 1) if (random() < rate) events += 1;
      samples.push({ t, target, metric: 'error', action, counts: { events, trials: plan.perAction } });
    }
    if (plan.memory) samples.push({ t, target, metric: 'memory_bytes', value: plan.memory[target] });
  }
  return samples;
}

const actions = ['browse', 'search', 'cart', 'checkout', 'login', 'account'];

function config(
  alpha = 0.05,
  options: Record<string, unknown> = {},
  method: 'betting' | 'betting-robust' = 'betting',
): AnalysisConfig {
  return parseAnalysisConfig(
    { actions, metrics: [{ name: 'latency_ms' }, { name: 'error' }], ...options },
    method,
    alpha,
  );
}

/** A/A rollouts (3 actions) in which each target is slower or faster as a whole for a tick. */
function falseRollbacksWithTickEffects(cfg: AnalysisConfig, perAction: number, ticks: number): number {
  let falseRollbacks = 0;
  for (let r = 0; r < 10; r += 1) {
    const random = seededRandom(1000 + r);
    let state: unknown = null;
    let flagged = false;
    for (let t = 1; t <= ticks && !flagged; t += 1) {
      const samples = tick(random, t, { actions: actions.slice(0, 3), perAction });
      for (const target of ['baseline', 'canary'] as const) {
        const processEffect = Math.exp(0.15 * gaussian(random));
        for (const sample of samples)
          if (sample.target === target && sample.histogram)
            sample.histogram.values = sample.histogram.values.map((value) => value * processEffect);
      }
      const result = analyzeTick(cfg, state, t, samples, { actions: actions.slice(0, 3) });
      state = JSON.parse(JSON.stringify(result.state));
      flagged = result.verdict.status === 'anomalous';
    }
    if (flagged) falseRollbacks += 1;
  }
  return falseRollbacks;
}

/** Runs ticks 1..n through the engine with a JSON round trip of the state, as a rollout carries it. */
function run(
  cfg: AnalysisConfig,
  ticks: number,
  planAt: (t: number) => Plan,
  seed: number,
  contextAt: (t: number) => TickContext = () => ({}),
): Verdict[] {
  const random = seededRandom(seed);
  let state: unknown = null;
  const verdicts: Verdict[] = [];
  for (let t = 1; t <= ticks; t += 1) {
    const result = analyzeTick(cfg, state, t, tick(random, t, planAt(t)), contextAt(t));
    state = JSON.parse(JSON.stringify(result.state));
    verdicts.push(result.verdict);
  }
  return verdicts;
}

const firstAnomaly = (verdicts: Verdict[]) => verdicts.findIndex((v) => v.status === 'anomalous') + 1;

/** Checkout 3x slower from the first tick, 50 samples per action: severe, named, within two ticks. */
function expectSevereWithinTwoTicks(cfg: AnalysisConfig): void {
  const verdicts = run(cfg, 3, () => ({ actions, perAction: 50, slowdown: { checkout: 3 } }), 5);
  const first = firstAnomaly(verdicts);
  expect(first).toBeGreaterThan(0);
  expect(first).toBeLessThanOrEqual(2);
  expect(verdicts[first - 1]?.anomalies[0]).toMatchObject({ action: 'checkout', severe: true });
}

describe('betting statistics', () => {
  it('spends at most alpha over regimes and start times', () => {
    let regimes = 0;
    for (let k = 1; k <= 100_000; k += 1) regimes += regimeShare(k);
    expect(regimes).toBeLessThanOrEqual(1);
    expect(regimes).toBeGreaterThan(0.9999);
    let starts = 0;
    for (let j = 1; j <= 100_000; j += 1) starts += Math.exp(startLogWeight(j));
    expect(starts).toBeLessThanOrEqual(1);
  });

  it('keeps the exact decision boundaries on the grid', () => {
    const grid = testGrid(0.05, 1.5);
    for (const s of [Math.log(1.05), -Math.log(1.05), Math.log(1.5), -Math.log(1.5)])
      expect(grid).toContain(s);
    expect([...grid].sort((a, b) => a - b)).toEqual(grid);
  });

  it('bets lose under the null: wealth crosses 1/alpha in at most alpha of the runs', () => {
    // Scores of a canary exactly at the tolerance boundary (the least favourable null).
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), (seed) => {
        const random = seededRandom(seed);
        const grid = testGrid(0.05, 1.5);
        const at = grid.indexOf(Math.log(1.05));
        let crossed = 0;
        const runs = 30;
        for (let r = 0; r < runs; r += 1) {
          const moments = freshMoments(grid.length);
          const wealth = {
            up: new Array<number>(grid.length).fill(0),
            down: new Array<number>(grid.length).fill(0),
          };
          let max = 0;
          for (let t = 0; t < 20; t += 1) {
            const ratios = Array.from(
              { length: 25 },
              () => Math.log(1.05) + 0.8 * gaussian(random) - 0.8 * gaussian(random),
            );
            betOnScores(grid, ratios, moments, [wealth], []);
            max = Math.max(max, wealth.up[at] as number);
          }
          if (max >= Math.log(1 / 0.2)) crossed += 1;
        }
        expect(crossed / runs).toBeLessThanOrEqual(0.2 + 0.1);
      }),
      { numRuns: 3 },
    );
  });

  it('scores tails below zero on average when the canary is within tolerance, whatever the thresholds', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.double({ min: 0.2, max: 1.2, noNaN: true }),
        fc.double({ min: 0.8, max: 1.05, noNaN: true }),
        fc.array(fc.double({ min: 2, max: 6, noNaN: true }), { minLength: 1, maxLength: 3 }),
        (seed, sigma, factor, thresholds) => {
          const random = seededRandom(seed);
          const draw = () => 3 + sigma * gaussian(random) + (random() < 0.03 ? 1.5 : 0);
          let sum = 0;
          const pairs = 20_000;
          for (let i = 0; i < pairs; i += 1)
            sum += tailScore(draw(), draw() + Math.log(factor), thresholds, Math.log(1.05));
          // The mean is <= 0 under the null; 20 000 pairs of scores in [-1, 1]: 4 standard errors.
          expect(sum / pairs).toBeLessThanOrEqual(4 * Math.sqrt(1 / pairs));
        },
      ),
      { numRuns: 20 },
    );
  });

  it('reads the effect from the wealths the interval comes from, and keeps it inside', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.double({ min: -30, max: 30 }), fc.double({ min: -30, max: 30 })), {
          minLength: 2,
          maxLength: 40,
        }),
        fc.double({ min: 0, max: 20, noNaN: true }),
        (points, threshold) => {
          const grid = points.map((_, k) => (k - points.length / 2) * 0.05);
          const wealth = { up: points.map(([up]) => up), down: points.map(([, down]) => down) };
          const { low, high, estimate } = gridEstimate(grid, wealth, threshold);
          expect(low).toBeLessThanOrEqual(estimate);
          expect(estimate).toBeLessThanOrEqual(high);
        },
      ),
    );
  });

  it('scores growth, not level: a constant offset scores 0 on average, steady growth near 1', () => {
    const random = seededRandom(7);
    let offset = 0;
    let growth = 0;
    const earlierOffset: number[] = [];
    const earlierGrowth: number[] = [];
    for (let t = 0; t < 200; t += 1) {
      const flat = 0.3 + 0.02 * gaussian(random);
      offset += trendScore(earlierOffset, flat, 0.05, random);
      earlierOffset.push(flat);
      const rising = 0.02 * t + 0.02 * gaussian(random);
      growth += trendScore(earlierGrowth.slice(-20), rising, 0.05, random);
      earlierGrowth.push(rising);
    }
    // The tolerance shift makes "no growth" score below 0: conservative, never in the leak's favour.
    expect(offset / 200).toBeLessThan(0.05);
    expect(growth / 200).toBeGreaterThan(0.6);
  });
});

describe('betting method', () => {
  it('keeps A/A false rollbacks below alpha at realistic volumes (20 to 50 per action and tick)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.integer({ min: 20, max: 50 }),
        (seed, perAction) => {
          const cfg = config(0.2, { actions: actions.slice(0, 3) });
          const runs = 12;
          let falseRollbacks = 0;
          for (let r = 0; r < runs; r += 1) {
            const verdicts = run(cfg, 12, () => ({ actions: actions.slice(0, 3), perAction }), seed + r);
            if (firstAnomaly(verdicts) > 0) falseRollbacks += 1;
          }
          // alpha 0.2 over 12 rollouts: more than 6 would be far outside the binomial spread.
          expect(falseRollbacks).toBeLessThanOrEqual(6);
        },
      ),
      { numRuns: 4 },
    );
  });

  // Known invalid: on the shared 2-core stack each target's process is slower or faster as a whole
  // for a tick (its CPU share, its GC): the per-tick median ratio of an A/A run spreads by 10-30 %
  // and one tick read +54..+227 % on every action. Pairs of one tick are then not exchangeable,
  // and the per-pair bets compound a single tick's offset into an anomaly. Marked failing: the
  // same rollouts pass under `betting-robust` (below), whose unit of evidence such a tick cannot move.
  it.failing(
    'keeps A/A false rollbacks below alpha when each target is slower or faster as a whole for a tick',
    () => {
      const cfg = config(0.05, { actions: actions.slice(0, 3) });
      // alpha 0.05 over 10 rollouts: more than 2 is far outside the binomial spread.
      expect(falseRollbacksWithTickEffects(cfg, 150, 24)).toBeLessThanOrEqual(2);
    },
  );

  it('finds +30 % on one action at 50 samples per tick, names it, and says what the evidence rests on', () => {
    const detected: number[] = [];
    for (const seed of [1, 2, 3]) {
      const verdicts = run(config(), 20, () => ({ actions, perAction: 50, slowdown: { cart: 1.3 } }), seed);
      const first = firstAnomaly(verdicts);
      expect(first).toBeGreaterThan(0);
      const anomaly = verdicts[first - 1]?.anomalies[0];
      expect(anomaly).toMatchObject({ metric: 'latency_ms', action: 'cart', severe: false });
      expect(anomaly?.evidence).toMatchObject({ regime: 1, fromTick: 1 });
      expect(anomaly?.evidence?.samples.canary).toBeGreaterThanOrEqual(50 * (first - 1));
      detected.push(first);
    }
    expect(Math.max(...detected)).toBeLessThanOrEqual(20);
  });

  it("reports every check's effect inside its own interval, also after the canary changed", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.integer({ min: 2, max: 10 }),
        fc.double({ min: 1.2, max: 3, noNaN: true }),
        fc.double({ min: 0.4, max: 1, noNaN: true }),
        (seed, change, before, after) => {
          const verdicts = run(
            config(),
            14,
            (t) => ({
              actions: actions.slice(2, 4),
              perAction: 40,
              slowdown: { cart: t < change ? before : after },
              errorRate: { baseline: 0.01, canary: t < change ? 0.05 * before : 0.01 * after },
            }),
            seed,
          );
          for (const anomaly of verdicts.flatMap((v) => v.anomalies)) {
            expect(anomaly.interval[0]).toBeLessThanOrEqual(anomaly.effect + 1e-12);
            expect(anomaly.effect).toBeLessThanOrEqual(anomaly.interval[1] + 1e-12);
          }
        },
      ),
      // The seed that found the tail check's effect below its interval, then fresh ones.
      { numRuns: 12, examples: [[651038, 5, 1.8077900609896247, 0.4]] },
    );
  });

  it('dates a late onset: the evidence starts near it, not at tick 1', () => {
    const verdicts = run(
      config(),
      24,
      (t) => ({ actions, perAction: 50, slowdown: { cart: t >= 8 ? 1.5 : 1 } }),
      11,
    );
    const first = firstAnomaly(verdicts);
    expect(first).toBeGreaterThanOrEqual(8);
    expect(first).toBeLessThanOrEqual(16);
    const evidence = verdicts[first - 1]?.anomalies[0]?.evidence;
    expect(evidence?.fromTick).toBeGreaterThanOrEqual(6);
  });

  it('flags a gross regression as severe within a tick or two', () => {
    expectSevereWithinTwoTicks(config());
  });

  it('forgets a regression that went away after a cut, and keeps it across a raise', () => {
    // Regime 1 at 10 %: regressed. Tick 9 the policy cuts to 5 % (regime 2) and the fault is gone.
    const regimeAt = (t: number) =>
      t < 9 ? { index: 1, sinceTick: 1, share: 0.1 } : { index: 2, sinceTick: 9, share: 0.05 };
    const cut = run(
      config(),
      14,
      (t) => ({ actions, perAction: 50, slowdown: { cart: t < 9 ? 1.6 : 1 } }),
      21,
      (t) => ({ regime: regimeAt(t) }),
    );
    expect(cut.slice(0, 8).some((v) => v.status === 'anomalous')).toBe(true);
    expect(cut.slice(8).every((v) => v.status !== 'anomalous')).toBe(true);
    // The same data without regimes: the old evidence keeps the anomaly.
    const whole = run(
      config(),
      14,
      (t) => ({ actions, perAction: 50, slowdown: { cart: t < 9 ? 1.6 : 1 } }),
      21,
    );
    expect(whole.at(-1)?.status).toBe('anomalous');
    // A raise to 25 % keeps gathering: the regression stays proven in the new regime at once.
    const raised = run(
      config(),
      14,
      () => ({ actions, perAction: 50, slowdown: { cart: 1.6 } }),
      21,
      (t) => ({
        regime: t < 9 ? { index: 1, sinceTick: 1, share: 0.1 } : { index: 2, sinceTick: 9, share: 0.25 },
      }),
    );
    const before = raised[7]?.status;
    expect(before).toBe('anomalous');
    expect(raised[8]?.status).toBe('anomalous');
  });

  it('proves health only within tolerance, and asks for it again in a new regime', () => {
    const cfg = config(0.05, { metrics: [{ name: 'latency_ms', tolerance: 0.2 }] });
    const regimeAt = (t: number) =>
      t < 9 ? { index: 1, sinceTick: 1, share: 0.05 } : { index: 2, sinceTick: 9, share: 0.1 };
    const healthy = run(
      cfg,
      14,
      () => ({ actions, perAction: 100 }),
      31,
      (t) => ({ regime: regimeAt(t) }),
    );
    const proven = healthy.map((v) => v.healthProven);
    expect(proven[0]).toBe(false);
    expect(proven[7]).toBe(true);
    expect(proven[8]).toBe(false); // first tick of regime 2: not proven there yet
    expect(proven[13]).toBe(true);
    const slower = run(cfg, 14, () => ({ actions, perAction: 60, slowdown: { cart: 1.3 } }), 31);
    expect(slower.some((v) => v.healthProven === true)).toBe(false);
  });

  it('compares error rates exactly, scoped to the regime', () => {
    const verdicts = run(
      config(),
      12,
      (t) => ({ actions, perAction: 200, errorRate: { baseline: 0.005, canary: t >= 4 ? 0.05 : 0.005 } }),
      41,
    );
    const first = firstAnomaly(verdicts);
    expect(first).toBeGreaterThanOrEqual(4);
    expect(verdicts[first - 1]?.anomalies.some((a) => a.metric === 'error')).toBe(true);
  });

  it('catches a memory leak as growth and leaves a canary that merely starts higher alone', () => {
    const cfg = parseAnalysisConfig({ actions }, 'betting', 0.05);
    expect(cfg.metrics.map((m) => `${m.name}:${m.kind}`)).toEqual([
      'latency_ms:distribution',
      'error:rate',
      'cpu_ms_per_request:distribution',
      'memory_bytes:trend',
    ]);
    const leak = run(
      cfg,
      30,
      (t) => ({
        actions,
        perAction: 30,
        memory: { baseline: 200e6 * (1 + 0.01 * Math.sin(t)), canary: 200e6 * (1 + 0.03 * t) },
      }),
      51,
    );
    const first = firstAnomaly(leak);
    expect(first).toBeGreaterThan(0);
    expect(leak[first - 1]?.anomalies[0]).toMatchObject({ metric: 'memory_bytes' });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.double({ min: 1, max: 1.5, noNaN: true }),
        (seed, level) => {
          const random = seededRandom(seed);
          const flat = run(
            cfg,
            25,
            () => ({
              actions: actions.slice(0, 1),
              perAction: 20,
              memory: {
                baseline: 200e6 * (1 + 0.02 * gaussian(random)),
                canary: 200e6 * level * (1 + 0.02 * gaussian(random)),
              },
            }),
            seed,
          );
          expect(flat.some((v) => v.anomalies.some((a) => a.metric === 'memory_bytes'))).toBe(false);
        },
      ),
      { numRuns: 6 },
    );
  });

  it('keeps the tail test valid under the null at realistic volumes: a +4 % slowdown inside the tolerance', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.integer({ min: 20, max: 50 }),
        (seed, perAction) => {
          const names = actions.slice(0, 3);
          const cfg = config(0.2, { actions: names, metrics: [{ name: 'latency_ms' }] });
          const runs = 12;
          let tailAlarms = 0;
          for (let r = 0; r < runs; r += 1) {
            const slowdown = Object.fromEntries(names.map((name) => [name, 1.04]));
            const verdicts = run(cfg, 10, () => ({ actions: names, perAction, slowdown }), seed + r);
            const tailFlagged = verdicts.some((v) =>
              v.anomalies.some((a) => a.statistic.includes('tail exceedances')),
            );
            if (tailFlagged) tailAlarms += 1;
          }
          // alpha 0.2 over 12 rollouts: more than 6 would be far outside the binomial spread.
          expect(tailAlarms).toBeLessThanOrEqual(6);
        },
      ),
      { numRuns: 2 },
    );
  });

  it('finds a slow tail (8 % of one action 4x slower) that barely moves the median, and names it', () => {
    const found: number[] = [];
    for (const seed of [1, 2]) {
      const onset = 4;
      const verdicts = run(
        config(0.05, { actions: actions.slice(0, 3) }),
        20,
        (t) => ({
          actions: actions.slice(0, 3),
          perAction: 200,
          ...(t >= onset ? { slowTail: { action: 'cart', share: 0.08, factor: 4 } } : {}),
        }),
        seed,
      );
      const first = firstAnomaly(verdicts);
      expect(first).toBeGreaterThanOrEqual(onset);
      const anomaly = verdicts[first - 1]?.anomalies[0];
      expect(anomaly).toMatchObject({ metric: 'latency_ms', action: 'cart', severe: false });
      expect(anomaly?.quantile).toBeGreaterThan(0.5);
      expect(anomaly?.statistic).toMatch(/tail exceedances/);
      expect(anomaly?.evidence?.fromTick).toBeGreaterThanOrEqual(onset - 1);
      found.push(first - onset + 1);
    }
    expect(Math.max(...found)).toBeLessThanOrEqual(20);
  });

  it('fixes the multiplicity by the actions known before the first look', () => {
    const cfg = parseAnalysisConfig({ metrics: [{ name: 'latency_ms' }] }, 'betting', 0.05);
    const samples = tick(seededRandom(61), 1, {
      actions: actions.slice(0, 3),
      perAction: 60,
      slowdown: { cart: 2 },
    });
    const known = analyzeTick(cfg, null, 1, samples, { actions: actions.slice(0, 3) });
    const unknown = analyzeTick(cfg, null, 1, samples);
    const pOf = (checks: typeof known.checks) => checks.find((c) => c.action === 'cart')?.pFire ?? 1;
    // Three actions plus the service slot against maxActions (20) plus it.
    expect(pOf(unknown.checks) / pOf(known.checks)).toBeCloseTo(21 / 4, 5);
    // An action outside the sampled profiles' gets no slot.
    const stray = analyzeTick(cfg, known.state, 2, [
      ...tick(seededRandom(62), 2, { actions: ['admin'], perAction: 60 }),
      ...tick(seededRandom(63), 2, { actions: actions.slice(0, 3), perAction: 60 }),
    ]);
    expect(stray.verdict.reasons.join(' ')).toMatch(/admin: not analysed/);
  });
});

describe('betting method, whole-service samples', () => {
  it("keeps a service cell's tail and its part in the proof across a tick without samples", () => {
    const cfg = parseAnalysisConfig({ metrics: [{ name: 'latency_ms', tolerance: 0.5 }] }, 'betting', 0.05);
    const random = seededRandom(3);
    let state: unknown = null;
    let proven: boolean | undefined;
    for (let t = 1; t <= 8; t += 1) {
      const samples: Sample[] = [];
      if (t !== 7)
        for (const target of ['baseline', 'canary'] as const) {
          const values = Array.from({ length: 400 }, () => latency(random, 40));
          samples.push({
            t,
            target,
            metric: 'latency_ms',
            histogram: { values, counts: values.map(() => 1) },
          });
        }
      const result = analyzeTick(cfg, state, t, samples);
      state = JSON.parse(JSON.stringify(result.state));
      const service = (state as { cells: Record<string, Record<string, { t?: unknown }>> }).cells
        .latency_ms?.['*'];
      expect(service?.t).toBeDefined();
      if (t === 7) proven = result.checks.find((check) => check.quantile === undefined)?.healthProven;
    }
    // Proven by tick 6 at 400 samples a tick; a tick without samples does not take it away.
    expect(proven).toBe(true);
  });
});

describe('betting-robust method', () => {
  const robust = (options: Record<string, unknown> = {}) => config(0.05, options, 'betting-robust');

  it('cancels an offset common to every action of a target in the quadruples, exactly', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 1, maxLength: 200 }),
        fc.double({ min: -2, max: 2, noNaN: true }),
        fc.integer({ min: 1, max: 1_000_000 }),
        (own, peers, offset, seed) => {
          const plain = relativeLogRatios(own, peers, seededRandom(seed));
          const shifted = relativeLogRatios(
            own.map((r) => r + offset),
            peers.map((r) => r + offset),
            seededRandom(seed),
          );
          expect(shifted.length).toBe(Math.min(own.length, peers.length));
          shifted.forEach((value, i) => expect(value).toBeCloseTo(plain[i] as number, 9));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('bets once per tick lose under the null whatever the tick does to a whole target', () => {
    // Every pair of a tick shares one offset (the target slower or faster as a whole), symmetric.
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.double({ min: 0, max: 0.5 }), (seed, effect) => {
        const random = seededRandom(seed);
        const grid = testGrid(0.05, 1.5);
        const at = grid.indexOf(Math.log(1.05));
        let crossed = 0;
        const runs = 30;
        for (let r = 0; r < runs; r += 1) {
          const moments = freshMoments(grid.length);
          const spread = freshTickSpread();
          const wealth = {
            up: new Array<number>(grid.length).fill(0),
            down: new Array<number>(grid.length).fill(0),
          };
          let max = 0;
          for (let t = 0; t < 20; t += 1) {
            const offset = effect * gaussian(random);
            const ratios = Array.from(
              { length: 40 },
              () => Math.log(1.05) + offset + 0.8 * gaussian(random) - 0.8 * gaussian(random),
            );
            betOnTickMeans(grid, ratios, tickScale(spread, ratios.length), moments, [wealth], []);
            const { mean, variance } = meanScore(ratios, grid[at] as number);
            learnTickSpread(spread, mean, variance, ratios.length);
            max = Math.max(max, wealth.up[at] as number);
          }
          if (max >= Math.log(1 / 0.2)) crossed += 1;
        }
        expect(crossed / runs).toBeLessThanOrEqual(0.2 + 0.1);
      }),
      { numRuns: 4 },
    );
  });

  it('keeps A/A false rollbacks below alpha when each target is slower or faster as a whole for a tick', () => {
    // The rollouts `betting` flags (the failing test above), 150 samples per action, 24 ticks.
    expect(
      falseRollbacksWithTickEffects(robust({ actions: actions.slice(0, 3) }), 150, 24),
    ).toBeLessThanOrEqual(2);
  });

  it('finds +30 % on one action at 50 samples per tick against the other actions, and names it', () => {
    const detected: number[] = [];
    for (const seed of [1, 2, 3]) {
      const verdicts = run(robust(), 30, () => ({ actions, perAction: 50, slowdown: { cart: 1.3 } }), seed);
      const first = firstAnomaly(verdicts);
      expect(first).toBeGreaterThan(0);
      const anomaly = verdicts[first - 1]?.anomalies[0];
      expect(anomaly).toMatchObject({ metric: 'latency_ms', action: 'cart', severe: false });
      expect(anomaly?.statistic).toMatch(/against the other actions of each tick/);
      detected.push(first);
    }
    // The reference adds a share of a pair's variance: these seeds take 4, 22 and 13 ticks
    // (`betting`: within 20); 16 seeds in the median 10 against 7.5.
    expect(Math.max(...detected)).toBeLessThanOrEqual(24);
  });

  it('finds every action slower alike through the whole-service check, one bet per tick', () => {
    // Each action against the others sees nothing; the actions' pairs pooled do, a tick at a time.
    for (const seed of [1, 2]) {
      const slowdown = Object.fromEntries(actions.map((name) => [name, 1.5]));
      const verdicts = run(robust(), 20, () => ({ actions, perAction: 50, slowdown }), seed);
      const first = firstAnomaly(verdicts);
      expect(first).toBeGreaterThan(0);
      expect(first).toBeLessThanOrEqual(16);
      const anomaly = verdicts[first - 1]?.anomalies[0];
      expect(anomaly).toMatchObject({ metric: 'latency_ms' });
      expect(anomaly?.action).toBeUndefined();
      expect(anomaly?.statistic).toMatch(/one bet per tick/);
    }
  });

  it('flags a gross regression of one action as severe within a tick or two', () => {
    expectSevereWithinTwoTicks(robust());
  });

  it('finds a slow tail once per tick, more slowly: 8 % of one action 4x slower at 400 per tick', () => {
    const onset = 4;
    const verdicts = run(
      robust({ actions: actions.slice(0, 3) }),
      26,
      (t) => ({
        actions: actions.slice(0, 3),
        perAction: 400,
        ...(t >= onset ? { slowTail: { action: 'cart', share: 0.08, factor: 4 } } : {}),
      }),
      1,
    );
    const first = firstAnomaly(verdicts);
    expect(first).toBeGreaterThanOrEqual(onset);
    expect(first - onset + 1).toBeLessThanOrEqual(22);
    expect(verdicts[first - 1]?.anomalies[0]).toMatchObject({ metric: 'latency_ms', action: 'cart' });
    expect(verdicts[first - 1]?.anomalies[0]?.statistic).toMatch(/tail exceedances/);
  });
});

describe('betting state', () => {
  it('keeps 10 actions x 4 metrics under 80 KB of JSON (30 KB deflated) after 60 ticks in 6 regimes', () => {
    const names = Array.from({ length: 10 }, (_, i) => `action-${i}`);
    const cfg = parseAnalysisConfig({ actions: names }, 'betting', 0.05);
    expect(cfg.metrics).toHaveLength(4);
    const random = seededRandom(71);
    let state: unknown = null;
    for (let t = 1; t <= 60; t += 1) {
      const samples = tick(random, t, {
        actions: names,
        perAction: 50,
        memory: { baseline: 1e8, canary: 1.1e8 },
      });
      for (const target of ['baseline', 'canary'] as const)
        samples.push({ t, target, metric: 'cpu_cores', value: 0.5 + 0.1 * random() });
      const index = Math.ceil(t / 10);
      state = analyzeTick(cfg, state, t, samples, {
        regime: { index, sinceTick: (index - 1) * 10 + 1, share: index / 10 },
      }).state;
    }
    expect(Buffer.byteLength(JSON.stringify(state))).toBeLessThan(80_000); // ~70 KB measured
    expect(Buffer.byteLength(JSON.stringify(packState(state as Json)))).toBeLessThan(35_000); // ~30 KB measured
  });
});
