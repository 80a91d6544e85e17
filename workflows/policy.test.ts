import fc from 'fast-check';
import type { VerdictStatus } from '../rollout/verdict';
import { initialPolicyState, isTerminal, nextTrafficShare, type PolicyDecision } from './policy';
import type { PolicyState } from '../rollout/types';
import { DEFAULT_POLICY, type TrafficPolicy } from '../rollout/spec';

const policyArbitrary: fc.Arbitrary<TrafficPolicy> = fc
  .record({
    initialShare: fc.integer({ min: 1, max: 50 }),
    stepUp: fc.constantFrom(0.5, 1, 2, 5, 10),
    stepDown: fc.constantFrom(1, 5, 10, 25),
    promoteAt: fc.integer({ min: 50, max: 100 }),
    probingTicks: fc.integer({ min: 0, max: 5 }),
    recoveryTicks: fc.integer({ min: 0, max: 6 }),
    cooldownTicks: fc.integer({ min: 0, max: 10 }),
    maxAnomalies: fc.integer({ min: 1, max: 6 }),
    anomalyWindowTicks: fc.integer({ min: 6, max: 30 }),
    maxInconclusiveTicks: fc.integer({ min: 1, max: 10 }),
  })
  .filter((policy) => policy.maxAnomalies <= policy.anomalyWindowTicks);

const tickArbitrary = fc.record({
  status: fc.constantFrom<VerdictStatus>('healthy', 'healthy', 'healthy', 'anomalous', 'inconclusive'),
  critical: fc.integer({ min: 0, max: 19 }).map((n) => n === 0),
});

function run(policy: TrafficPolicy, ticks: { status: VerdictStatus; critical: boolean }[]): PolicyDecision[] {
  let state: PolicyState = initialPolicyState();
  return ticks.map((input, index) => {
    const decision = nextTrafficShare(policy, state, { tick: index + 1, ...input });
    state = decision.state;
    return decision;
  });
}

describe('traffic policy', () => {
  test('the share always stays within [0, 100]', () => {
    fc.assert(
      fc.property(policyArbitrary, fc.array(tickArbitrary, { maxLength: 200 }), (policy, ticks) => {
        for (const decision of run(policy, ticks)) {
          expect(decision.shareAfter).toBeGreaterThanOrEqual(0);
          expect(decision.shareAfter).toBeLessThanOrEqual(100);
        }
      }),
      { numRuns: 500 },
    );
  });

  test('an anomalous or inconclusive tick never raises the share', () => {
    fc.assert(
      fc.property(policyArbitrary, fc.array(tickArbitrary, { maxLength: 200 }), (policy, ticks) => {
        run(policy, ticks).forEach((decision, index) => {
          if (ticks[index]?.status !== 'healthy')
            expect(decision.shareAfter).toBeLessThanOrEqual(decision.shareBefore);
        });
      }),
      { numRuns: 500 },
    );
  });

  test('an anomaly while progressing cuts by stepDown at once, or rolls back', () => {
    fc.assert(
      fc.property(policyArbitrary, fc.array(tickArbitrary, { maxLength: 200 }), (policy, ticks) => {
        run(policy, ticks).forEach((decision, index) => {
          const progressing = decision.shareBefore > 0 && decision.action !== 'hold';
          if (ticks[index]?.status === 'anomalous' && progressing) {
            if (decision.action === 'rollback') expect(decision.shareAfter).toBe(0);
            else {
              expect(decision.action).toBe('reduce');
              expect(decision.shareAfter).toBeCloseTo(decision.shareBefore - policy.stepDown, 2);
            }
          }
        });
      }),
      { numRuns: 500 },
    );
  });

  test('hysteresis: the first raise after a cut comes only after recoveryTicks clean ticks in a row', () => {
    fc.assert(
      fc.property(policyArbitrary, fc.array(tickArbitrary, { maxLength: 200 }), (policy, ticks) => {
        const decisions = run(policy, ticks);
        decisions.forEach((decision, index) => {
          if (decision.action !== 'raise') return;
          const actions = decisions.slice(0, index).map((d) => d.action);
          const lastCut = actions.lastIndexOf('reduce');
          // Only the first raise after a cut ends the recovery; later raises are ordinary.
          if (lastCut < 0 || actions.lastIndexOf('raise') > lastCut) return;
          // The ticks right before this raise, back to the cut, end with recoveryTicks clean ones.
          const since = ticks.slice(lastCut + 1, index);
          const cleanRun = since.length - 1 - since.map((t) => t.status !== 'healthy').lastIndexOf(true);
          expect(Math.min(cleanRun, since.length)).toBeGreaterThanOrEqual(policy.recoveryTicks);
        });
      }),
      { numRuns: 500 },
    );
  });

  test('cooldown: for cooldownTicks after a cut the share stays below the level that was cut', () => {
    fc.assert(
      fc.property(policyArbitrary, fc.array(tickArbitrary, { maxLength: 200 }), (policy, ticks) => {
        const decisions = run(policy, ticks);
        decisions.forEach((decision, index) => {
          if (decision.action !== 'reduce') return;
          for (
            let later = index + 1;
            later < Math.min(decisions.length, index + policy.cooldownTicks);
            later++
          ) {
            const next = decisions[later] as PolicyDecision;
            if (isTerminal(next.state.phase)) break;
            expect(next.shareAfter).toBeLessThan(decision.shareBefore);
          }
        });
      }),
      { numRuns: 500 },
    );
  });

  test('no real traffic moves before probingTicks clean ticks in a row', () => {
    fc.assert(
      fc.property(policyArbitrary, fc.array(tickArbitrary, { maxLength: 60 }), (policy, ticks) => {
        const decisions = run(policy, ticks);
        const started = decisions.findIndex((d) => d.shareAfter > 0 && d.state.phase !== 'promoted');
        if (started < 0) return;
        const before = ticks.slice(0, started + 1);
        const trailingClean = before.length - 1 - before.map((t) => t.status !== 'healthy').lastIndexOf(true);
        expect(trailingClean).toBeGreaterThanOrEqual(Math.max(1, policy.probingTicks));
      }),
      { numRuns: 500 },
    );
  });

  test('a tick that ends while paused never raises the share, but an anomaly still cuts it', () => {
    fc.assert(
      fc.property(
        policyArbitrary,
        fc.array(tickArbitrary, { maxLength: 100 }),
        fc.array(fc.boolean(), { maxLength: 100 }),
        (policy, ticks, pauses) => {
          let state: PolicyState = initialPolicyState();
          ticks.forEach((input, index) => {
            const holdRaises = pauses[index] ?? false;
            const decision = nextTrafficShare(policy, state, { tick: index + 1, ...input, holdRaises });
            if (holdRaises) expect(decision.shareAfter).toBeLessThanOrEqual(decision.shareBefore);
            if (
              holdRaises &&
              input.status === 'anomalous' &&
              decision.shareBefore > 0 &&
              !isTerminal(state.phase)
            ) {
              expect(decision.shareAfter).toBeLessThan(decision.shareBefore);
            }
            state = decision.state;
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  test('promoted and rolled back are final', () => {
    fc.assert(
      fc.property(policyArbitrary, fc.array(tickArbitrary, { maxLength: 200 }), (policy, ticks) => {
        const decisions = run(policy, ticks);
        const end = decisions.findIndex((d) => isTerminal(d.state.phase));
        if (end < 0) return;
        const final = decisions[end] as PolicyDecision;
        for (const later of decisions.slice(end + 1)) {
          expect(later.state.phase).toBe(final.state.phase);
          expect(later.shareAfter).toBe(final.shareAfter);
          expect(later.action).toBe('hold');
        }
      }),
      { numRuns: 300 },
    );
  });

  test('maxAnomalies anomalous ticks within the window roll back', () => {
    fc.assert(
      fc.property(policyArbitrary, fc.array(tickArbitrary, { maxLength: 200 }), (policy, ticks) => {
        const decisions = run(policy, ticks);
        for (let index = 0; index < ticks.length; index++) {
          if (
            isTerminal(decisions[index]?.state.phase ?? 'probing') &&
            decisions[index]?.action !== 'rollback'
          )
            break;
          const window = ticks.slice(Math.max(0, index + 1 - policy.anomalyWindowTicks), index + 1);
          if (window.filter((t) => t.status === 'anomalous').length >= policy.maxAnomalies) {
            expect(decisions.slice(0, index + 1).some((d) => d.action === 'rollback')).toBe(true);
            break;
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  test("the seed's defaults: 3 clean probing ticks, 5 %, then +1 % per clean tick up to 100 %", () => {
    const decisions = run(
      DEFAULT_POLICY,
      Array.from({ length: 100 }, () => ({ status: 'healthy' as const, critical: false })),
    );
    const shares = decisions.map((d) => d.shareAfter);
    expect(shares.slice(0, 5)).toEqual([0, 0, 5, 6, 7]);
    expect(decisions[97]?.action).toBe('promote');
    expect(shares[97]).toBe(100);
  });

  test('fractional steps do not accumulate float noise', () => {
    const policy = { ...DEFAULT_POLICY, probingTicks: 0, initialShare: 0.1, stepUp: 0.1, promoteAt: 1 };
    const shares = run(
      policy,
      Array.from({ length: 10 }, () => ({ status: 'healthy' as const, critical: false })),
    ).map((d) => d.shareAfter);
    expect(shares).toEqual([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 100]);
  });
});
