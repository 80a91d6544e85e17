import {
  createProbeActivities,
  createRolloutActivities,
  type ProbeActivityDeps,
  type RolloutActivityDeps,
} from '../../activities';

/**
 * Recorded histories and running rollouts name activities by these strings: the two factories
 * together must register exactly the names the one factory did. Building them touches no dependency.
 */
describe('activity factories', () => {
  const rollout = Object.keys(createRolloutActivities({} as RolloutActivityDeps));
  const probe = Object.keys(createProbeActivities({} as ProbeActivityDeps));

  test('the rollout activities keep their names', () => {
    expect(rollout.sort()).toEqual([
      'analyze',
      'checkWorkerPolicy',
      'collectMetrics',
      'finalizeRouting',
      'lookupProfiles',
      'notify',
      'readCanaryWeight',
      'recordTick',
      'setCanaryWeight',
    ]);
  });

  test('the probe activities are the probe alone, so a loadgen worker serves nothing else', () => {
    expect(probe).toEqual(['probe']);
    expect(rollout).not.toContain('probe');
  });
});
