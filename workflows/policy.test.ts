import fc from 'fast-check';
import type { VerdictStatus } from '../rollout/verdict';
import {
  describeSevere,
  initialPolicyState,
  isTerminal,
  nextTrafficShare,
  type PolicyDecision,
  type TickInput,
} from './policy';
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

/** For cooldownTicks after each cut, the share stays below the level that was cut. */
function expectCooldownHeld(policy: TrafficPolicy, decisions: PolicyDecision[]): void {
  decisions.forEach((decision, index) => {
    if (decision.action !== 'reduce') return;
    for (let later = index + 1; later < Math.min(decisions.length, index + policy.cooldownTicks); later++) {
      const next = decisions[later] as PolicyDecision;
      if (isTerminal(next.state.phase)) break;
      expect(next.shareAfter).toBeLessThan(decision.shareBefore);
    }
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
        expectCooldownHeld(policy, decisions);
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

/** Policies as parseRolloutSpec gives them now: the fields for proof and levels are set. */
const provingPolicyArbitrary: fc.Arbitrary<TrafficPolicy> = fc
  .tuple(
    policyArbitrary,
    fc.record({
      raiseRequires: fc.constantFrom<'clean' | 'proof'>('clean', 'proof'),
      maxRecoveryTicks: fc.integer({ min: 1, max: 8 }),
      maxCutsAtLevel: fc.integer({ min: 1, max: 4 }),
      onRepeatedCuts: fc.constantFrom<'pause' | 'rollback'>('pause', 'rollback'),
    }),
  )
  .map(([policy, extra]) => ({ ...policy, ...extra }));

type ProvingTick = Omit<TickInput, 'tick'>;

/** Verdicts of an engine that proves health: healthy ones say whether they prove it. */
const provingTickArbitrary: fc.Arbitrary<ProvingTick> = fc
  .record({
    status: fc.constantFrom<VerdictStatus>('healthy', 'healthy', 'healthy', 'anomalous', 'inconclusive'),
    proven: fc.boolean(),
    severe: fc.integer({ min: 0, max: 29 }).map((n) => n === 0),
  })
  .map(({ status, proven, severe }) => ({
    status,
    critical: false,
    healthProven: status === 'healthy' ? proven : status === 'anomalous' ? false : undefined,
    severe:
      status === 'anomalous' && severe
        ? { metric: 'latency_ms', action: 'checkout', effect: 169, interval: [120, 230] as [number, number] }
        : null,
  }));

function runProving(policy: TrafficPolicy, ticks: ProvingTick[]): PolicyDecision[] {
  let state: PolicyState = initialPolicyState();
  return ticks.map((input, index) => {
    const decision = nextTrafficShare(policy, state, { tick: index + 1, ...input });
    state = decision.state;
    return decision;
  });
}

const provingRuns = fc.tuple(provingPolicyArbitrary, fc.array(provingTickArbitrary, { maxLength: 150 }));

describe('traffic policy with proof of health and cut levels', () => {
  test('a severe anomaly rolls back at once, in any phase, naming the metric and the ratio', () => {
    fc.assert(
      fc.property(provingRuns, ([policy, ticks]) => {
        const decisions = runProving(policy, ticks);
        decisions.forEach((decision, index) => {
          if (!ticks[index]?.severe || isTerminal(decisions[index - 1]?.state.phase ?? 'probing')) return;
          expect(decision.action).toBe('rollback');
          expect(decision.shareAfter).toBe(0);
          expect(decision.reason).toBe(
            'severe regression: checkout latency_ms at 170x the baseline (at least 121x): rolled back at once',
          );
        });
      }),
      { numRuns: 300 },
    );
  });

  test('hysteresis: after a cut the share rises again only on a verdict that proves health', () => {
    fc.assert(
      fc.property(provingRuns, ([policy, ticks]) => {
        const decisions = runProving(policy, ticks);
        let recovering = false;
        decisions.forEach((decision, index) => {
          if (decision.action === 'reduce') recovering = true;
          if (decision.action === 'raise' || decision.action === 'promote') {
            if (recovering) expect(ticks[index]?.healthProven).toBe(true);
            recovering = false;
          }
        });
      }),
      { numRuns: 500 },
    );
  });

  test('maxRecoveryTicks ticks after a cut without proof pause for a person', () => {
    fc.assert(
      fc.property(provingRuns, ([policy, ticks]) => {
        const decisions = runProving(policy, ticks);
        let waited: number | null = null;
        decisions.forEach((decision, index) => {
          const tick = ticks[index] as ProvingTick;
          if (isTerminal(decision.state.phase)) return;
          if (decision.action === 'reduce') waited = 0;
          else if (decision.action === 'raise') waited = null;
          else if (waited !== null && tick.healthProven !== true) {
            waited += 1;
            if (tick.status === 'healthy' && waited >= (policy.maxRecoveryTicks ?? Infinity)) {
              expect(decision.pause).toMatch(/without proof of health \(maxRecoveryTicks \d+\)$/);
              waited = 0;
            } else if (tick.status === 'healthy') expect(decision.pause).toBeNull();
          }
        });
      }),
      { numRuns: 500 },
    );
  });

  test('raises never skip a level that was cut until health is proven at or above it; they retry exactly it', () => {
    fc.assert(
      fc.property(provingRuns, ([policy, ticks]) => {
        const decisions = runProving(policy, ticks);
        const levels = new Set<number>();
        decisions.forEach((decision, index) => {
          if (ticks[index]?.healthProven === true)
            for (const level of levels) if (level <= decision.shareBefore) levels.delete(level);
          if (decision.action === 'reduce') levels.add(decision.shareBefore);
          if (decision.action !== 'raise') return;
          for (const level of levels)
            if (decision.shareBefore < level) expect(decision.shareAfter).toBeLessThanOrEqual(level);
        });
      }),
      { numRuns: 500 },
    );
  });

  test('maxCutsAtLevel cuts at or above one share pause (onRepeatedCuts: pause) or roll back', () => {
    fc.assert(
      fc.property(provingRuns, ([policy, ticks]) => {
        const decisions = runProving(policy, ticks);
        const cuts = new Map<number, number>();
        decisions.forEach((decision, index) => {
          if (ticks[index]?.healthProven === true)
            for (const level of cuts.keys()) if (level <= decision.shareBefore) cuts.delete(level);
          const levelCut =
            decision.action === 'reduce' ||
            (decision.action === 'rollback' && / cuts at or above /.test(decision.reason));
          if (!levelCut) return;
          for (const [level, count] of cuts) if (level <= decision.shareBefore) cuts.set(level, count + 1);
          if (!cuts.has(decision.shareBefore)) cuts.set(decision.shareBefore, 1);
          const limit = policy.maxCutsAtLevel ?? Infinity;
          const reached = [...cuts].filter(
            ([level, count]) => level <= decision.shareBefore && count >= limit,
          );
          const lowest = reached.sort(([a], [b]) => a - b)[0];
          if (!lowest) {
            expect(decision.action).toBe('reduce');
            expect(decision.pause).toBeNull();
            return;
          }
          const why = `${lowest[1]} cuts at or above ${lowest[0]} % (maxCutsAtLevel ${limit})`;
          if (policy.onRepeatedCuts === 'rollback') {
            expect(decision.action).toBe('rollback');
            expect(decision.reason.startsWith(why)).toBe(true);
          } else {
            expect(decision.action).toBe('reduce');
            expect(decision.pause?.startsWith(why)).toBe(true);
          }
        });
      }),
      { numRuns: 500 },
    );
  });

  test('raiseRequires: proof raises (and starts real traffic) only on proven ticks', () => {
    fc.assert(
      fc.property(provingRuns, ([policy, ticks]) => {
        const decisions = runProving(policy, ticks);
        decisions.forEach((decision, index) => {
          const tick = ticks[index] as ProvingTick;
          const up = decision.action === 'raise' || decision.action === 'start';
          if (policy.raiseRequires === 'proof' && up) expect(tick.healthProven).toBe(true);
        });
      }),
      { numRuns: 500 },
    );
  });

  test('the properties of the older policy hold with proof too: bounds, cuts, cooldown, no raise on a bad tick', () => {
    fc.assert(
      fc.property(provingRuns, ([policy, ticks]) => {
        const decisions = runProving(policy, ticks);
        decisions.forEach((decision, index) => {
          expect(decision.shareAfter).toBeGreaterThanOrEqual(0);
          expect(decision.shareAfter).toBeLessThanOrEqual(100);
          if (ticks[index]?.status !== 'healthy')
            expect(decision.shareAfter).toBeLessThanOrEqual(decision.shareBefore);
          if (decision.action === 'reduce')
            expect(decision.shareAfter).toBeCloseTo(decision.shareBefore - policy.stepDown, 2);
        });
        expectCooldownHeld(policy, decisions);
      }),
      { numRuns: 500 },
    );
  });

  test('a load-dependent canary: cut at 30 %, held below it for the cooldown, retried, paused after the second cut', () => {
    const policy: TrafficPolicy = {
      ...DEFAULT_POLICY,
      probingTicks: 0,
      initialShare: 10,
      stepUp: 10,
      stepDown: 10,
      cooldownTicks: 3,
    };
    // Healthy and proven below 30 %, anomalous at 30 %.
    let state: PolicyState = initialPolicyState();
    const shares: number[] = [];
    const pauses: string[] = [];
    for (let tick = 1; tick <= 8; tick++) {
      const broken = state.share >= 30;
      const decision = nextTrafficShare(policy, state, {
        tick,
        status: broken ? 'anomalous' : 'healthy',
        critical: false,
        healthProven: !broken,
      });
      state = decision.state;
      shares.push(decision.shareAfter);
      if (decision.pause) pauses.push(`${tick}: ${decision.pause}`);
    }
    expect(shares).toEqual([10, 20, 30, 20, 20, 20, 30, 20]);
    expect(pauses[0]).toBe(
      '8: 2 cuts at or above 30 % (maxCutsAtLevel 2): the canary fails under the load of that share; investigate, then resume, promote or roll back',
    );
  });

  test('a failure found only above the retried level still counts for it: cut at 40 %, retried clean, cut at 70 %, paused', () => {
    const policy: TrafficPolicy = {
      ...DEFAULT_POLICY,
      probingTicks: 0,
      initialShare: 10,
      stepUp: 30,
      stepDown: 30,
      cooldownTicks: 1,
    };
    // What the e2e run showed: at 40 % the regression is found in one regime and missed in another.
    const script: [VerdictStatus, boolean][] = [
      ['healthy', true], // start 10
      ['healthy', false], // 40
      ['anomalous', false], // cut 40 -> 10
      ['healthy', true], // proven at 10: retry 40
      ['healthy', false], // clean at 40, not proven: 70
      ['anomalous', false], // cut 70 -> 40: a second cut at or above 40 %
    ];
    let state: PolicyState = initialPolicyState();
    const decisions = script.map(([status, healthProven], index) => {
      const decision = nextTrafficShare(policy, state, {
        tick: index + 1,
        status,
        critical: false,
        healthProven,
      });
      state = decision.state;
      return decision;
    });
    expect(decisions.map((d) => d.shareAfter)).toEqual([10, 40, 10, 40, 70, 40]);
    expect(decisions[5]?.pause).toBe(
      '2 cuts at or above 40 % (maxCutsAtLevel 2): the canary fails under the load of that share; investigate, then resume, promote or roll back',
    );
  });

  test('verdicts without proof keep the older hysteresis: recoveryTicks clean ticks since the cut', () => {
    const policy: TrafficPolicy = { ...DEFAULT_POLICY, probingTicks: 0, recoveryTicks: 2, cooldownTicks: 0 };
    let state: PolicyState = initialPolicyState();
    const actions: string[] = [];
    for (const [tick, status] of (
      ['healthy', 'healthy', 'anomalous', 'healthy', 'healthy', 'healthy'] as const
    ).entries()) {
      const decision = nextTrafficShare(policy, state, { tick: tick + 1, status, critical: false });
      state = decision.state;
      actions.push(decision.action);
    }
    expect(actions).toEqual(['start', 'raise', 'reduce', 'hold', 'hold', 'raise']);
  });

  test('the defaults with an engine that proves health: clean but unproven ticks still raise', () => {
    const decisions = runProving(
      DEFAULT_POLICY,
      Array.from({ length: 100 }, () => ({
        status: 'healthy' as const,
        critical: false,
        healthProven: false,
      })),
    );
    expect(decisions.map((d) => d.shareAfter).slice(0, 5)).toEqual([0, 0, 5, 6, 7]);
    expect(decisions[97]?.action).toBe('promote');
  });

  test('describeSevere names the action, the metric and the ratios', () => {
    expect(describeSevere({ metric: 'error', effect: 2.4, interval: [1.1, 4] })).toBe(
      'severe regression: error at 3.40x the baseline (at least 2.10x): rolled back at once',
    );
  });
});
