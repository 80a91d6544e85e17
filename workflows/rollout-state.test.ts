import fc from 'fast-check';
import { KEPT_UNRECORDED_TICKS, RolloutState } from './rollout-state';
import type { TickRecord } from '../rollout/types';
import { parseRolloutSpec } from '../rollout/spec';
import type { Anomaly } from '../rollout/verdict';

const spec = parseRolloutSpec({
  service: 'shop',
  version: '2.0.0',
  targets: { baseline: { url: 'http://127.0.0.1:1' }, canary: { url: 'http://127.0.0.1:2' } },
  router: { kind: 'builtin' },
  interval: '1m',
  onAnomaly: 'reduce-and-pause',
  policy: { probingTicks: 0 },
});

const healthy = { status: 'healthy' as const, anomalies: [], reasons: [] };
const anomalous = {
  status: 'anomalous' as const,
  anomalies: [
    {
      metric: 'latency_ms',
      action: 'checkout',
      effect: 0.3,
      interval: [0.1, 0.5] as [number, number],
      statistic: 'p=0.001',
      critical: false,
      summary: 'checkout p90 latency +30 %',
    },
  ],
  reasons: [],
};

describe('rollout state', () => {
  test('onAnomaly reduce-and-pause cuts the share, opens an investigation and pauses for a person', () => {
    const state = new RolloutState('r', spec, 0);
    state.applyVerdict(1, healthy, 1);
    state.applyVerdict(2, healthy, 2);
    const { decision, investigation } = state.applyVerdict(3, anomalous, 3);
    expect(decision.action).toBe('reduce');
    expect(investigation).toMatchObject({ id: 'r#3', tick: 3, shareBefore: 6, shareAfter: 1 });
    expect(state.phase).toBe('paused');
    expect(state.status().pausedReason).toBe('anomaly at tick 3 (onAnomaly: reduce-and-pause)');
    expect(state.status().nextTickAt).toBeNull();
  });

  test('the first manual decision wins and clears a pause', () => {
    const state = new RolloutState('r', spec, 0);
    state.pause('look');
    state.requestDecision({ kind: 'promote', reason: 'ship it' });
    state.requestDecision({ kind: 'rollback', reason: 'too late' });
    expect(state.applyPendingDecision()?.kind).toBe('promote');
    expect(state.phase).toBe('promoted');
    expect(state.pausedReason).toBeNull();
    expect(state.applyPendingDecision()).toBeNull();
  });

  test('a rollout that fell a whole interval behind ticks now instead of bursting to catch up', () => {
    const state = new RolloutState('r', spec, 0);
    state.scheduleNextTick(0, 30_000);
    expect(state.nextTickAt).toBe(60_000);
    state.scheduleNextTick(60_000, 185_000);
    expect(state.nextTickAt).toBe(185_000);
  });

  test('what it carries across continue-as-new is bounded', () => {
    const state = new RolloutState(
      'r',
      {
        ...spec,
        onAnomaly: 'reduce',
        policy: { ...spec.policy, maxAnomalies: 1000, anomalyWindowTicks: 1000 },
      },
      0,
    );
    for (let tick = 1; tick <= 500; tick++) state.applyVerdict(tick, tick % 2 ? anomalous : healthy, tick);
    const carried = state.carryOver();
    expect(carried.lastVerdicts).toHaveLength(20);
    expect(carried.investigations).toHaveLength(20);
    expect(carried.reasons.length).toBeLessThanOrEqual(50);
    expect(JSON.stringify(carried).length).toBeLessThan(64 * 1024);
  });

  test('regimes: index 1 at the first tick, +1 when the applied share changed, not on a pause or a failed change', () => {
    const state = new RolloutState('r', spec, 0);
    state.appliedShare = 0;
    expect(state.enterRegime(1)).toEqual({ index: 1, sinceTick: 1, share: 0 });
    expect(state.enterRegime(2)).toEqual({ index: 1, sinceTick: 1, share: 0 });
    state.appliedShare = 5;
    expect(state.enterRegime(3)).toEqual({ index: 2, sinceTick: 3, share: 0.05 });
    state.pause('a person looks');
    expect(state.enterRegime(4)).toEqual({ index: 2, sinceTick: 3, share: 0.05 });
    state.appliedShare = 6;
    expect(state.enterRegime(5)).toEqual({ index: 3, sinceTick: 5, share: 0.06 });
    const next = new RolloutState('r', spec, 0, state.carryOver());
    expect(next.enterRegime(6)).toEqual({ index: 3, sinceTick: 5, share: 0.06 });
  });

  test('a severe anomaly rolls back at once; after a cut only a verdict that proves health raises', () => {
    const severe = new RolloutState('r', { ...spec, onAnomaly: 'reduce' }, 0);
    severe.applyVerdict(1, healthy, 1);
    const checkout = anomalous.anomalies[0] as Anomaly;
    const worse = { ...checkout, severe: true, effect: 169, interval: [120, 230] as [number, number] };
    const { decision } = severe.applyVerdict(2, { ...anomalous, anomalies: [checkout, worse] }, 2);
    expect(decision.action).toBe('rollback');
    expect(decision.reason).toBe(
      'severe regression: checkout latency_ms at 170x the baseline (at least 121x): rolled back at once',
    );

    const proving = new RolloutState('r', { ...spec, onAnomaly: 'reduce' }, 0);
    proving.applyVerdict(1, { ...healthy, healthProven: true }, 1);
    proving.applyVerdict(2, { ...healthy, healthProven: true }, 2);
    expect(proving.applyVerdict(3, anomalous, 3).decision.action).toBe('reduce');
    const actions = [false, false, false, true].map(
      (healthProven, index) =>
        proving.applyVerdict(4 + index, { ...healthy, healthProven }, 4 + index).decision,
    );
    expect(actions.map((d) => d.action)).toEqual(['hold', 'hold', 'hold', 'raise']);
    expect(actions[3]?.recovered).toBe(true);
  });

  test('alert keys never repeat, across continue-as-new too, and only the current tick is carried', () => {
    const step = fc.record({
      kind: fc.constantFrom('routing_failed', 'drift', 'paused'),
      nextTick: fc.boolean(),
      continueAsNew: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        let state = new RolloutState('r', spec, 0);
        const keys: string[] = [];
        for (const { kind, nextTick, continueAsNew } of steps) {
          if (nextTick) state.applyVerdict(state.tick + 1, healthy, state.tick + 1);
          keys.push(state.alertKey(kind));
          if (continueAsNew) {
            const carried = state.carryOver();
            const current = new RegExp(`^r/[a-z_]+/${state.tick}(#\\d+)?$`);
            expect(carried.alertKeys?.every((key) => current.test(key))).toBe(true);
            state = new RolloutState('r', spec, 0, carried);
          }
        }
        expect(new Set(keys).size).toBe(keys.length);
      }),
    );
    const state = new RolloutState('r', spec, 0);
    state.applyVerdict(1, healthy, 1);
    expect(state.alertKey('routing_failed')).toBe('r/routing_failed/1');
    const next = new RolloutState('r', spec, 0, state.carryOver());
    expect(next.alertKey('routing_failed')).toBe('r/routing_failed/1#2');
  });

  test('tick records the store did not take are carried across continue-as-new, oldest dropped past the bound', () => {
    const state = new RolloutState('r', spec, 0);
    const record = (tick: number) => ({ rolloutId: 'r', tick }) as TickRecord;
    for (let tick = 1; tick <= KEPT_UNRECORDED_TICKS + 5; tick++) state.keepUnrecorded(record(tick));
    expect(state.unrecordedTicks[0]?.tick).toBe(6);
    expect(state.reasons.at(-1)).toContain('tick record(s) dropped');
    state.recorded(6);
    const next = new RolloutState('r', spec, 0, state.carryOver());
    expect(next.unrecordedTicks.map((entry) => entry.tick)).toEqual(
      Array.from({ length: KEPT_UNRECORDED_TICKS - 1 }, (_, i) => i + 7),
    );
  });
});
