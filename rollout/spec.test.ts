import fc from 'fast-check';
import { DEFAULT_POLICY, mergePolicy, parseRolloutSpec, rolloutIdFor } from './spec';
import { parseDuration, ValidationError } from '../core/validation';
import { issuesOf as issuesOfRun } from '../test/support/issues';

const minimal = {
  service: 'shop',
  version: '1.4.2',
  targets: { baseline: { url: 'http://127.0.0.1:8081/' }, canary: { url: 'http://127.0.0.1:8082' } },
  router: { kind: 'builtin', adminUrl: 'http://127.0.0.1:9000' },
};

const issuesOf = (input: unknown): string[] => issuesOfRun(() => parseRolloutSpec(input));

describe('rollout spec', () => {
  test('a minimal spec gets the documented defaults', () => {
    const spec = parseRolloutSpec(minimal);
    expect(spec.policy).toEqual(DEFAULT_POLICY);
    expect(spec.intervalMs).toBe(60_000);
    expect(spec.probe).toEqual({ durationMs: 45_000, concurrency: 10, shards: 1, timeScale: 1 });
    expect(spec.analysis).toEqual({ method: 'betting', alpha: 0.05, options: {} });
    expect(spec.targets.baseline.url).toBe('http://127.0.0.1:8081');
    expect(spec.router).toEqual({ kind: 'builtin', adminUrl: 'http://127.0.0.1:9000' });
    expect(spec.onAnomaly).toBe('reduce');
    expect(rolloutIdFor(spec.service, spec.version)).toBe('rollout-shop-1.4.2');
  });

  test('every bad field is reported by name with its rule, all at once', () => {
    expect(
      issuesOf({
        ...minimal,
        service: 'Shop_API',
        targets: { baseline: { url: 'ftp://x' }, canary: {} },
        interval: '5 minutes',
        policy: { stepUp: 0, initialShare: 150, hysteresis: 2 },
        analysis: { method: 'bayes', alpha: 0.9 },
        alerts: { sinks: [{ kind: 'slack', url: 'https://hooks.example' }, { url: 'x' }] },
      }),
    ).toEqual([
      'service: must be a DNS label: lowercase letters, digits and -, at most 63',
      'targets.baseline.url: must be an http:// or https:// URL',
      'targets.canary.url: must be a non-empty string',
      'interval: must be a duration such as 500ms, 30s, 2m or 1h (or milliseconds)',
      'analysis.method: must be one of betting, betting-robust, sequential, mann-whitney, seed',
      'analysis.alpha: must be <= 0.5',
      'alerts.sinks[1].kind: must be a non-empty string',
      'policy.hysteresis: is not a known field (known: initialShare, stepUp, stepDown, promoteAt, probingTicks, recoveryTicks, cooldownTicks, maxAnomalies, anomalyWindowTicks, maxInconclusiveTicks, raiseRequires, maxRecoveryTicks, maxCutsAtLevel, onRepeatedCuts)',
      'policy.initialShare: must be <= 100',
      'policy.stepUp: must be > 0',
    ]);
  });

  test('cross-field rules: probe longer than the interval, identical targets, start above promotion', () => {
    expect(
      issuesOf({
        ...minimal,
        targets: { baseline: { url: 'http://a:1' }, canary: { url: 'http://a:1/' } },
        interval: '10s',
        probe: { duration: '20s' },
        policy: { initialShare: 60, promoteAt: 50 },
      }),
    ).toEqual([
      'targets.canary.url: must differ from targets.baseline.url',
      'probe.duration: must not exceed interval (10000 ms)',
      'policy.initialShare: must not exceed policy.promoteAt (50)',
    ]);
  });

  test('unknown top-level fields are refused rather than ignored', () => {
    expect(issuesOf({ ...minimal, polcy: {} })).toEqual([
      expect.stringMatching(/^polcy: is not a known field/),
    ]);
  });

  test('any JSON input either parses or fails with a ValidationError, never anything else', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (noise, policy) => {
        for (const input of [
          noise,
          { ...minimal, policy },
          { ...minimal, targets: noise },
          { ...minimal, router: noise },
        ]) {
          try {
            parseRolloutSpec(input);
          } catch (error) {
            expect(error).toBeInstanceOf(ValidationError);
            expect((error as ValidationError).issues.length).toBeGreaterThan(0);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('mergePolicy applies a partial change and rejects empty or invalid ones', () => {
    expect(mergePolicy(DEFAULT_POLICY, { stepUp: 2 }).stepUp).toBe(2);
    expect(() => mergePolicy(DEFAULT_POLICY, {})).toThrow('policy: must change at least one field');
    expect(() => mergePolicy(DEFAULT_POLICY, { maxAnomalies: 50 })).toThrow(
      'policy.maxAnomalies: must not exceed policy.anomalyWindowTicks (10)',
    );
    expect(() => mergePolicy(DEFAULT_POLICY, 'fast')).toThrow('policy: must be an object');
  });

  test('the policy fields for proof and cut levels: defaults, field errors, and policies that predate them', () => {
    expect(parseRolloutSpec(minimal).policy).toMatchObject({
      raiseRequires: 'clean',
      maxRecoveryTicks: 10,
      maxCutsAtLevel: 2,
      onRepeatedCuts: 'pause',
    });
    expect(
      issuesOf({
        ...minimal,
        policy: {
          raiseRequires: 'evidence',
          maxRecoveryTicks: 0,
          maxCutsAtLevel: 1.5,
          onRepeatedCuts: 'stop',
        },
      }),
    ).toEqual([
      'policy.raiseRequires: must be one of clean, proof',
      'policy.maxRecoveryTicks: must be >= 1',
      'policy.maxCutsAtLevel: must be an integer',
      'policy.onRepeatedCuts: must be one of pause, rollback',
    ]);
    // A rollout started before these fields existed keeps them absent (the policy then behaves
    // as it did), unless a change sets one.
    const older = { ...DEFAULT_POLICY } as Partial<typeof DEFAULT_POLICY>;
    for (const key of ['raiseRequires', 'maxRecoveryTicks', 'maxCutsAtLevel', 'onRepeatedCuts'] as const)
      delete older[key];
    const changed = mergePolicy(older as typeof DEFAULT_POLICY, { stepUp: 2 });
    expect(changed).toEqual({ ...older, stepUp: 2 });
    expect(mergePolicy(older as typeof DEFAULT_POLICY, { maxCutsAtLevel: 3 }).maxCutsAtLevel).toBe(3);
    expect(() => mergePolicy(older as typeof DEFAULT_POLICY, { onRepeatedCuts: 'later' })).toThrow(
      'policy.onRepeatedCuts: must be one of pause, rollback',
    );
  });

  test('durations', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration(250)).toBe(250);
    expect(parseDuration('2 m')).toBeUndefined();
    expect(parseDuration(-1)).toBeUndefined();
  });
});
