import type { ProbeSummary } from '../rollout/types';

/** The summary of a probe fanned out over shards: counts add up, the window spans them all. */
export function mergeProbeSummaries(parts: readonly ProbeSummary[]): ProbeSummary {
  if (parts.length === 0) throw new Error('no probe summaries to merge');
  return parts.reduce((merged, part) => ({
    startedAt: Math.min(merged.startedAt, part.startedAt),
    endedAt: Math.max(merged.endedAt, part.endedAt),
    requests: {
      baseline: merged.requests.baseline + part.requests.baseline,
      canary: merged.requests.canary + part.requests.canary,
    },
    errors: {
      baseline: merged.errors.baseline + part.errors.baseline,
      canary: merged.errors.canary + part.errors.canary,
    },
  }));
}
