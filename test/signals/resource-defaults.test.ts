/**
 * CPU and memory are compared by default wherever the targets expose them, and cost nothing where
 * they do not: a target without /metrics leaves the tick as conclusive as before.
 */
import { analyzeTick } from '../../analysis/engine';
import type { Sample } from '../../analysis/samples';
import { seededRandom } from '../../core/random';
import { validateAnalysisOptions } from '../../signals';

const names = (options: unknown) =>
  validateAnalysisOptions(options).config.metrics.map((metric) => metric.name);

/** Probe samples of two actions, same distribution on both targets; memory only when `memory` gives it. */
function tick(t: number, random: () => number, memory?: (target: 'baseline' | 'canary') => number): Sample[] {
  const samples: Sample[] = [];
  for (const target of ['baseline', 'canary'] as const) {
    for (const action of ['browse', 'checkout']) {
      const values = Array.from({ length: 200 }, () => 30 + 20 * random());
      samples.push({
        t,
        target,
        metric: 'latency_ms',
        action,
        histogram: { values, counts: values.map(() => 1) },
      });
      samples.push({ t, target, metric: 'error', action, counts: { events: 0, trials: 200 } });
    }
    if (memory) samples.push({ t, target, metric: 'memory_bytes', value: memory(target) });
  }
  return samples;
}

function run(ticks: number, memory?: (target: 'baseline' | 'canary', t: number) => number) {
  const { config } = validateAnalysisOptions(undefined);
  const random = seededRandom(3);
  let state: unknown = null;
  const verdicts = [];
  for (let t = 1; t <= ticks; t += 1) {
    const result = analyzeTick(config, state, t, tick(t, random, memory && ((target) => memory(target, t))));
    state = JSON.parse(JSON.stringify(result.state));
    verdicts.push(result.verdict);
  }
  return verdicts;
}

describe('resource metrics by default', () => {
  test('a rollout that names no metrics compares CPU per request and memory, read by a /metrics scrape', () => {
    const options = validateAnalysisOptions(undefined);
    expect(options.config.metrics.map((metric) => [metric.name, metric.kind])).toEqual([
      ['latency_ms', 'distribution'],
      ['error', 'rate'],
      ['cpu_ms_per_request', 'distribution'],
      ['memory_bytes', 'trend'],
    ]);
    expect(options.sources).toEqual([
      { kind: 'probe-results' },
      { kind: 'scrape', path: '/metrics', timeoutMs: 5000 },
    ]);
  });

  test('a rollout that names its metrics gets exactly those', () => {
    expect(names({ metrics: [{ name: 'latency_ms' }] })).toEqual(['latency_ms']);
    expect(validateAnalysisOptions({ metrics: [{ name: 'latency_ms' }] }).sources).toEqual([
      { kind: 'probe-results' },
    ]);
  });

  test('targets without /metrics: ticks are healthy as before, not inconclusive', () => {
    const verdicts = run(6);
    expect(verdicts.map((verdict) => verdict.status)).toEqual(Array(6).fill('healthy'));
  });

  test('the first memory readings, fewer than the minimum, do not make a tick inconclusive either', () => {
    const verdicts = run(3, () => 80e6);
    expect(verdicts.map((verdict) => verdict.status)).toEqual(['healthy', 'healthy', 'healthy']);
  });

  test('canary memory growing tick by tick is flagged as a whole-service memory anomaly; a flat offset is not', () => {
    const leak = run(20, (target, t) => 80e6 + (target === 'canary' ? 6e6 * t : 0));
    const flagged = leak.find((verdict) => verdict.status === 'anomalous');
    expect(flagged?.anomalies.map((anomaly) => [anomaly.metric, anomaly.action])).toEqual([
      ['memory_bytes', undefined],
    ]);
    const offset = run(20, (target, t) => (target === 'canary' ? 88e6 : 80e6) + ((t * 7919) % 13) * 1e5);
    expect(offset.every((verdict) => verdict.status === 'healthy')).toBe(true);
  });
});
