import { analyzeTick, type TickContext } from '../../analysis/engine';
import { parseRecording, replay, replayConfig } from '../../analysis/replay';
import type { Sample } from '../../analysis/samples';
import { packState, unpackState } from '../../signals/analyzer';
import type { ValidationError, Json } from '../../core/validation';
import { seededRandom } from '../../core/random';

/** A recording whose lines say the canary's share: 5 %, raised to 10 % at tick 5, cut to 5 % at tick 9. */
function recordingLines(): string[] {
  const random = seededRandom(97);
  const shareAt = (t: number) => (t < 5 ? 0.05 : t < 9 ? 0.1 : 0.05);
  const lines: string[] = [];
  for (let t = 1; t <= 12; t += 1)
    for (const target of ['baseline', 'canary'] as const)
      for (const action of ['browse', 'checkout']) {
        // Checkout is slower on the canary at 10 % only (a load-dependent fault).
        const slow = target === 'canary' && action === 'checkout' && shareAt(t) === 0.1 ? 1.8 : 1;
        for (let i = 0; i < 80; i += 1) {
          const z = Math.sqrt(-2 * Math.log(Math.max(random(), 1e-12))) * Math.cos(2 * Math.PI * random());
          const value = Math.round(40 * Math.exp(0.5 * z) * slow * 100) / 100;
          lines.push(JSON.stringify({ t, target, metric: 'latency_ms', action, value, share: shareAt(t) }));
        }
      }
  return lines;
}

describe('replay with regimes', () => {
  it('gives the verdicts a live rollout in the same regimes gives', () => {
    const { samples, marks } = parseRecording(recordingLines());
    const replayed = replay(samples, 'betting', 0.05, undefined, marks);
    // The live path: the workflow counts regimes by share changes, the analyzer packs the state.
    const config = replayConfig(samples, 'betting', 0.05);
    let state: Json = null;
    let regime = { index: 0, sinceTick: 0, share: -1 };
    const live = [];
    for (let t = 1; t <= 12; t += 1) {
      const tick = samples.filter((sample: Sample) => sample.t === t);
      const share = marks.get(t)?.share as number;
      if (share !== regime.share) regime = { index: regime.index + 1, sinceTick: t, share };
      const context: TickContext = { regime };
      const result = analyzeTick(config, unpackState(state), t, tick, context);
      state = packState(result.state as unknown as Json);
      live.push(result.verdict);
    }
    expect(replayed.ticks.map((tick) => tick.verdict)).toEqual(live.map((verdict) => verdict.status));
    expect(replayed.ticks.map((tick) => tick.regime)).toEqual([1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
    expect(replayed.ticks.map((tick) => tick.anomalies)).toEqual(
      live.map((verdict) =>
        verdict.anomalies.map((a) => ({
          metric: a.metric,
          action: a.action,
          effect: a.effect,
          interval: a.interval,
          summary: a.summary,
          severe: a.severe,
          evidence: a.evidence,
        })),
      ),
    );
    // Found at 10 %, forgotten after the cut back to 5 %.
    expect(replayed.ticks.slice(4, 8).some((tick) => tick.verdict === 'anomalous')).toBe(true);
    expect(replayed.ticks.slice(8).every((tick) => tick.verdict === 'healthy')).toBe(true);
  });

  it('names the line whose regime marks disagree or are out of range', () => {
    const line = (extra: Record<string, unknown>) =>
      JSON.stringify({ t: 1, target: 'canary', metric: 'latency_ms', value: 3, ...extra });
    try {
      parseRecording([line({ share: 0.1 }), line({ share: 0.2 }), line({ regime: 0 }), line({ share: 2 })]);
      throw new Error('accepted');
    } catch (error) {
      expect((error as ValidationError).issues.map((issue) => `${issue.field}: ${issue.rule}`)).toEqual([
        'line 2.share: must be the same on every line of tick 1 (0.1)',
        'line 3.regime: must be >= 1',
        'line 4.share: must be <= 1',
      ]);
    }
  });
});
