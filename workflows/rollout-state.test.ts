import { RolloutState } from './rollout-state';
import { parseRolloutSpec } from '../rollout/spec';

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
});
