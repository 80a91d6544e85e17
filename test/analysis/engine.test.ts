import fc from 'fast-check';
import { analyzeTick, initialState } from '../../analysis/engine';
import { parseAnalysisConfig, type AnalysisConfig } from '../../analysis/config';
import type { Sample } from '../../analysis/samples';
import { logRateEvidence, updateRateLikelihood } from '../../analysis/stats';
import { packState } from '../../signals/analyzer';
import { ValidationError, type Json } from '../../core/validation';
import { seededRandom, type RandomStream } from '../../core/random';

function logNormal(random: RandomStream, median: number, sigma: number): number {
  const z = Math.sqrt(-2 * Math.log(Math.max(random(), 1e-12))) * Math.cos(2 * Math.PI * random());
  return median * Math.exp(sigma * z);
}

interface TickPlan {
  actions: string[];
  perAction: number;
  slowdown?: { action: string; factor: number };
  errorRate?: (target: string, action: string) => number;
}

function tickSamples(random: RandomStream, t: number, plan: TickPlan): Sample[] {
  const samples: Sample[] = [];
  for (const target of ['baseline', 'canary'] as const) {
    for (const action of plan.actions) {
      const factor = target === 'canary' && plan.slowdown?.action === action ? plan.slowdown.factor : 1;
      const values = Array.from({ length: plan.perAction }, () => logNormal(random, 40, 0.4) * factor);
      samples.push({
        t,
        target,
        metric: 'latency_ms',
        action,
        histogram: { values, counts: values.map(() => 1) },
      });
      const rate = plan.errorRate?.(target, action) ?? 0.005;
      let events = 0;
      for (let i = 0; i < plan.perAction; i += 1) if (random() < rate) events += 1;
      samples.push({ t, target, metric: 'error', action, counts: { events, trials: plan.perAction } });
    }
  }
  return samples;
}

function run(config: AnalysisConfig, ticks: number, plan: TickPlan, seed = 1) {
  const random = seededRandom(seed);
  let state: unknown = null;
  const results = [];
  for (let t = 1; t <= ticks; t += 1) {
    const result = analyzeTick(config, state, t, tickSamples(random, t, plan));
    state = JSON.parse(JSON.stringify(result.state));
    results.push(result);
  }
  return results;
}

const sequential = parseAnalysisConfig({}, 'sequential', 0.05);
const actions = ['browse', 'search', 'checkout'];

describe('analysis engine', () => {
  it('analyses actions named constructor, __proto__ and toString like any other', () => {
    const named = ['constructor', '__proto__', 'toString'];
    const results = run(sequential, 8, {
      actions: named,
      perAction: 400,
      slowdown: { action: '__proto__', factor: 1.4 },
    });
    const last = results[results.length - 1];
    for (const action of named)
      expect(last?.checks.some((check) => check.action === action && check.metric === 'latency_ms')).toBe(
        true,
      );
    // Each action's evidence is carried to the next tick, in the state's JSON like any key.
    const carried = JSON.parse(JSON.stringify(last?.state)) as { cells: Record<string, object> };
    expect(Object.keys(carried.cells.latency_ms ?? {}).sort()).toEqual([...named].sort());
    const anomalous = results.find((r) => r.verdict.status === 'anomalous');
    expect(anomalous?.verdict.anomalies.map((anomaly) => anomaly.action)).toContain('__proto__');
    expect(anomalous?.verdict.anomalies.every((anomaly) => anomaly.action === '__proto__')).toBe(true);
  });

  it('rolls back when checkout latency regresses by 40 %, naming checkout', () => {
    const results = run(sequential, 8, {
      actions,
      perAction: 400,
      slowdown: { action: 'checkout', factor: 1.4 },
    });
    const anomalous = results.find((r) => r.verdict.status === 'anomalous');
    expect(anomalous).toBeDefined();
    const anomaly = anomalous?.verdict.anomalies[0];
    expect(anomaly?.action).toBe('checkout');
    expect(anomaly?.metric).toBe('latency_ms');
    expect(anomaly?.summary).toMatch(/^checkout (p\d+ )?latency \+\d+ % \[\+\d+ %, \+\d+ %\]$/);
    expect(anomaly?.interval[0]).toBeGreaterThan(0.05);
    expect(anomaly?.interval[0]).toBeLessThanOrEqual(anomaly?.effect ?? 0);
    expect(anomalous?.verdict.anomalies.every((a) => a.action === 'checkout')).toBe(true);
  });

  it('names the quantile of a regression that lives only in the tail', () => {
    const random = seededRandom(31);
    let state: unknown = null;
    let found: string | undefined;
    for (let t = 1; t <= 20 && !found; t += 1) {
      const samples: Sample[] = [];
      for (const target of ['baseline', 'canary'] as const) {
        // 3 % of canary requests hit a slow dependency: p99 about triples, p50 and p90 do not move.
        const values = Array.from(
          { length: 1500 },
          () => logNormal(random, 40, 0.3) * (target === 'canary' && random() < 0.03 ? 4 : 1),
        );
        samples.push({
          t,
          target,
          metric: 'latency_ms',
          action: 'search',
          histogram: { values, counts: values.map(() => 1) },
        });
      }
      const result = analyzeTick(
        parseAnalysisConfig({ metrics: [{ name: 'latency_ms' }] }, 'sequential', 0.05),
        state,
        t,
        samples,
      );
      state = result.state;
      found = result.verdict.anomalies[0]?.summary;
    }
    expect(found).toMatch(/^search p99 latency \+\d+ %/);
  });

  it('stays healthy when both targets drift alike over the day', () => {
    const random = seededRandom(41);
    let state: unknown = null;
    for (let t = 1; t <= 30; t += 1) {
      const load = 1 + 0.8 * Math.sin(t / 4); // rush hour for baseline and canary together
      const samples: Sample[] = [];
      for (const target of ['baseline', 'canary'] as const) {
        const values = Array.from({ length: 300 }, () => logNormal(random, 40 * load, 0.4));
        samples.push({
          t,
          target,
          metric: 'latency_ms',
          action: 'browse',
          histogram: { values, counts: values.map(() => 1) },
        });
      }
      const result = analyzeTick(
        parseAnalysisConfig({ metrics: [{ name: 'latency_ms' }] }, 'sequential', 0.05),
        state,
        t,
        samples,
      );
      expect(result.verdict.status).toBe('healthy');
      state = result.state;
    }
  });

  it('flags a doubled error rate on one action', () => {
    const results = run(sequential, 30, {
      actions,
      perAction: 1500,
      errorRate: (target, action) => (target === 'canary' && action === 'search' ? 0.02 : 0.005),
    });
    const anomaly = results.find((r) => r.verdict.status === 'anomalous')?.verdict.anomalies[0];
    expect(anomaly).toMatchObject({ metric: 'error', action: 'search', target: 'canary' });
    expect(anomaly?.summary).toMatch(/^search error rate \+\d+ %/);
  });

  it('stays healthy on identical baseline and canary', () => {
    const results = run(sequential, 15, { actions, perAction: 300 });
    expect(results.slice(1).every((r) => r.verdict.status === 'healthy')).toBe(true);
  });

  it('is inconclusive, never healthy, without enough data', () => {
    const few = analyzeTick(sequential, null, 1, tickSamples(seededRandom(3), 1, { actions, perAction: 5 }));
    expect(few.verdict.status).toBe('inconclusive');
    expect(few.verdict.reasons.join(' ')).toMatch(/fewer than 50 values/);
    const none = analyzeTick(sequential, few.state, 2, []);
    expect(none.verdict.status).toBe('inconclusive');
    expect(none.verdict.reasons).toContain('no samples for tick 2');
    const oneSided = analyzeTick(
      sequential,
      null,
      1,
      tickSamples(seededRandom(3), 1, { actions, perAction: 300 }).filter((s) => s.target === 'baseline'),
    );
    expect(oneSided.verdict.status).toBe('inconclusive');
    expect(oneSided.verdict.reasons.join(' ')).toMatch(/no data from canary/);
  });

  it('gives monotone anytime p-values: evidence never goes away', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.double({ min: 1, max: 1.3, noNaN: true }),
        (seed, factor) => {
          const results = run(
            sequential,
            6,
            { actions: ['a', 'b'], perAction: 120, slowdown: { action: 'b', factor } },
            seed,
          );
          const key = (c: { metric: string; action?: string; quantile?: number }) =>
            `${c.metric}/${c.action}/${c.quantile}`;
          const last = new Map<string, number>();
          for (const result of results) {
            for (const check of result.checks) {
              expect(check.pFire).toBeLessThanOrEqual(last.get(key(check)) ?? 1);
              last.set(key(check), check.pFire);
            }
          }
        },
      ),
      { numRuns: 12 },
    );
  });

  it('gives the same verdict whatever the order of samples within a tick', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), (seed) => {
        const samples = tickSamples(seededRandom(seed), 1, {
          actions,
          perAction: 80,
          slowdown: { action: 'search', factor: 1.5 },
        });
        const shuffled = [...samples].sort(
          (a, b) => (a.action ?? '').localeCompare(b.action ?? '') || a.target.localeCompare(b.target),
        );
        const withSlots = { ...sequential, actions };
        const x = analyzeTick(withSlots, null, 1, samples);
        const y = analyzeTick(withSlots, null, 1, shuffled.reverse());
        expect(y.verdict).toEqual(x.verdict);
        expect(y.state).toEqual(x.state);
      }),
      { numRuns: 10 },
    );
  });

  it('continues identically from serialised state (continue-as-new)', () => {
    const random = seededRandom(5);
    const ticks = Array.from({ length: 6 }, (_, i) =>
      tickSamples(random, i + 1, { actions, perAction: 200, slowdown: { action: 'browse', factor: 1.2 } }),
    );
    let live: unknown = null;
    let carried: unknown = null;
    for (const [i, samples] of ticks.entries()) {
      const a = analyzeTick(sequential, live, i + 1, samples);
      const b = analyzeTick(sequential, carried, i + 1, samples);
      expect(b.verdict).toEqual(a.verdict);
      live = a.state;
      carried = JSON.parse(JSON.stringify(b.state));
    }
  });

  it('keeps the state of 10 actions x 4 metrics well under 100 KB after 60 busy ticks', () => {
    const config = parseAnalysisConfig(
      {
        metrics: [
          { name: 'latency_ms', quantiles: [0.5, 0.9, 0.99] },
          { name: 'error', kind: 'rate' },
          { name: 'status_5xx', kind: 'rate' },
          { name: 'response_bytes', kind: 'distribution', quantiles: [0.5, 0.9] },
        ],
        maxActions: 10,
      },
      'sequential',
      0.05,
    );
    const random = seededRandom(9);
    const names = Array.from({ length: 10 }, (_, i) => `action-${i}`);
    let state: unknown = initialState(config);
    for (let t = 1; t <= 60; t += 1) {
      const samples: Sample[] = [];
      for (const target of ['baseline', 'canary'] as const) {
        for (const action of names) {
          // Heavy-tailed like real traffic: a log-normal body and a 3 % Pareto(1.5) tail.
          const tail = () => (random() < 0.03 ? Math.max(random(), 1e-9) ** (-1 / 1.5) : 1);
          const latency = Array.from({ length: 2000 }, () => logNormal(random, 50, 0.6) * tail());
          const bytes = Array.from({ length: 2000 }, () => logNormal(random, 20_000, 0.8));
          samples.push({
            t,
            target,
            metric: 'latency_ms',
            action,
            histogram: { values: latency, counts: latency.map(() => 1) },
          });
          samples.push({
            t,
            target,
            metric: 'response_bytes',
            action,
            histogram: { values: bytes, counts: bytes.map(() => 1) },
          });
          samples.push({ t, target, metric: 'error', action, counts: { events: 10, trials: 2000 } });
          samples.push({ t, target, metric: 'status_5xx', action, counts: { events: 3, trials: 2000 } });
        }
      }
      state = analyzeTick(config, state, t, samples).state;
    }
    const bytes = Buffer.byteLength(JSON.stringify(state));
    expect(bytes).toBeLessThan(75_000); // ~62 KB measured
    // What the rollout actually carries through workflow history: the deflated form.
    expect(Buffer.byteLength(JSON.stringify(packState(state as Json)))).toBeLessThan(40_000); // ~35 KB measured
  });

  it('reports every bad option with its field and rule', () => {
    const attempt = () =>
      parseAnalysisConfig(
        {
          metrics: [
            { name: 'latency_ms', tolerance: -1, quantiles: [1.5] },
            { name: 'error', kind: 'gauge' },
          ],
          maxActions: 0,
          colour: 'red',
        },
        'sequential',
        0.05,
      );
    expect(attempt).toThrow(ValidationError);
    try {
      attempt();
    } catch (error) {
      const fields = (error as ValidationError).issues.map((issue) => `${issue.field}: ${issue.rule}`);
      expect(fields).toEqual(
        expect.arrayContaining([
          'analysis.colour: is not a known field (known: metrics, maxActions, actions, seedWindow, sources)',
          'analysis.metrics[0].tolerance: must be >= 0',
          'analysis.metrics[0].quantiles[0]: must be <= 0.999',
          'analysis.metrics[1].kind: must be one of distribution, rate, trend',
          'analysis.maxActions: must be >= 1',
        ]),
      );
    }
  });
});

describe('rate tolerance and the rate-ratio grid', () => {
  const issues = (metric: Record<string, unknown>, method: 'sequential' | 'mann-whitney' = 'sequential') => {
    try {
      parseAnalysisConfig({ metrics: [{ name: 'latency_ms' }, metric] }, method, 0.05);
      return [];
    } catch (error) {
      return (error as ValidationError).issues.map((issue) => `${issue.field}: ${issue.rule}`);
    }
  };

  it('refuses a tolerance the sequential rate test could never get past, naming field and rule', () => {
    expect(issues({ name: 'success', kind: 'rate', direction: 'decrease', tolerance: 3 })).toEqual([
      'analysis.metrics[1].tolerance: must be at most 2.158 for a rate metric with direction decrease under method sequential (beyond that its rate-ratio grid has nothing left to test)',
    ]);
    expect(issues({ name: 'error', tolerance: 9.6 })).toEqual([
      'analysis.metrics[1].tolerance: must be at most 9.485 for a rate metric with direction increase under method sequential (beyond that its rate-ratio grid has nothing left to test)',
    ]);
    expect(issues({ name: 'error', direction: 'either', tolerance: 2.5 })).toHaveLength(1);
    // Other methods have no grid; distributions have no such limit.
    expect(
      issues({ name: 'success', kind: 'rate', direction: 'decrease', tolerance: 3 }, 'mann-whitney'),
    ).toEqual([]);
    expect(issues({ name: 'cpu_cores', tolerance: 3, direction: 'decrease' })).toEqual([]);
  });

  it('at the largest accepted tolerance the test still flags a large enough change', () => {
    const config = parseAnalysisConfig(
      { metrics: [{ name: 'success', kind: 'rate', direction: 'decrease', tolerance: 2.158 }] },
      'sequential',
      0.05,
    );
    expect(config.metrics[0]?.tolerance).toBe(2.158);
    // Canary succeeds at 1/5 of the baseline's rate (ratio 0.2 < 1 / 3.158).
    const grid = updateRateLikelihood([], { events: 5000, trials: 10_000 }, { events: 1000, trials: 10_000 });
    expect(logRateEvidence(grid, 2.158, 'decrease')).toBeGreaterThan(Math.log(1 / 0.05));
    expect(logRateEvidence(grid, 2.16, 'decrease')).toBe(0); // past the grid: what the check prevents
    const up = updateRateLikelihood([], { events: 100, trials: 10_000 }, { events: 3000, trials: 10_000 });
    expect(logRateEvidence(up, 9.485, 'increase')).toBeGreaterThan(Math.log(1 / 0.05));
  });
});

describe('reference methods', () => {
  it('Mann-Whitney and the seed band detect a gross regression too', () => {
    for (const method of ['mann-whitney', 'seed'] as const) {
      const config = parseAnalysisConfig({}, method, 0.05);
      const results = run(config, 8, {
        actions,
        perAction: 300,
        slowdown: { action: 'checkout', factor: 1.6 },
      });
      const anomalies = results.flatMap((r) => r.verdict.anomalies);
      expect(anomalies.some((a) => a.action === 'checkout' && a.metric === 'latency_ms')).toBe(true);
    }
  });

  it('per-window methods are inconclusive on a tick without data', () => {
    const config = parseAnalysisConfig({}, 'mann-whitney', 0.05);
    expect(analyzeTick(config, null, 1, []).verdict.status).toBe('inconclusive');
  });
});

describe('severe ratio', () => {
  const issues = (metric: Record<string, unknown>) => {
    try {
      parseAnalysisConfig({ metrics: [metric] }, 'sequential', 0.05);
      return [];
    } catch (error) {
      return (error as ValidationError).issues.map((issue) => `${issue.field}: ${issue.rule}`);
    }
  };

  it('defaults to 1.5 for latency-like metrics and 3 for rates', () => {
    const config = parseAnalysisConfig(
      { metrics: [{ name: 'latency_ms' }, { name: 'error' }, { name: 'cpu_cores' }] },
      'sequential',
      0.05,
    );
    expect(config.metrics.map((metric) => metric.severeRatio)).toEqual([1.5, 3, 1.5]);
    // Unset beside a tolerance wider than the default: as many times beyond the tolerance.
    expect(
      parseAnalysisConfig({ metrics: [{ name: 'latency_ms', tolerance: 1 }] }, 'sequential', 0.05).metrics[0]
        ?.severeRatio,
    ).toBe(3);
    expect(
      parseAnalysisConfig({ metrics: [{ name: 'latency_ms', severeRatio: 2 }] }, 'sequential', 0.05)
        .metrics[0]?.severeRatio,
    ).toBe(2);
  });

  it('refuses a severe ratio inside the tolerance or out of range, naming field and rule', () => {
    expect(issues({ name: 'latency_ms', tolerance: 0.5, severeRatio: 1.4 })).toEqual([
      'analysis.metrics[0].severeRatio: must be greater than 1 + tolerance (1.5)',
    ]);
    expect(issues({ name: 'error', severeRatio: 1 })).toEqual([
      'analysis.metrics[0].severeRatio: must be > 1',
    ]);
    expect(issues({ name: 'error', severeRatio: 'x' })).toEqual([
      'analysis.metrics[0].severeRatio: must be a finite number',
    ]);
    expect(issues({ name: 'error', severeRatio: 1000 })).toEqual([
      'analysis.metrics[0].severeRatio: must be <= 100',
    ]);
  });

  it('does not change the fingerprint: states carried from before it existed stay valid', () => {
    const a = parseAnalysisConfig({ metrics: [{ name: 'latency_ms' }] }, 'sequential', 0.05);
    const b = parseAnalysisConfig({ metrics: [{ name: 'latency_ms', severeRatio: 4 }] }, 'sequential', 0.05);
    expect(initialState(a).fp).toBe(initialState(b).fp);
  });
});
