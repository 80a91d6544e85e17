/**
 * The rollout's ProfileSource port on top of the store: a reproducible stratified sample of the
 * profiles matching the spec's criteria. Criteria that match nothing are a configuration error
 * (ValidationError, so the activity fails fast instead of probing with no users).
 */
import type { ProfileSelection } from '../rollout/types';
import { ValidationError, type Json } from '../core/validation';
import { parseCriteria, type CompiledCriteria } from './criteria';
import { distinctActions, stratifiedSample, type StratifiedSample } from './sampler';
import type { ProfileStore } from './store';

/** The port the rollout's lookupProfiles activity calls. */
export interface ProfileSource {
  select(request: {
    criteria: Record<string, Json>;
    sampleSize: number;
    seed: number;
  }): Promise<ProfileSelection>;
}

export const DEFAULT_MAX_POPULATION = 2_000_000;

export class StoreProfileSource implements ProfileSource {
  constructor(
    private readonly store: ProfileStore,
    private readonly options: { maxPopulation?: number } = {},
  ) {}

  async sample(criteria: CompiledCriteria, n: number, seed: number): Promise<StratifiedSample> {
    const candidates = await this.store.sampleCandidates(
      criteria.filter,
      this.options.maxPopulation ?? DEFAULT_MAX_POPULATION,
    );
    return stratifiedSample(candidates, n, seed);
  }

  async select(request: {
    criteria: Record<string, Json>;
    sampleSize: number;
    seed: number;
  }): Promise<ProfileSelection> {
    const criteria = parseCriteria(request.criteria, 'profiles.criteria');
    const sample = await this.sample(criteria, request.sampleSize, request.seed);
    if (sample.userIds.length === 0)
      throw new ValidationError([{ field: 'profiles.criteria', rule: 'match no profiles in the store' }]);
    const actions = distinctActions(await this.store.getMany(sample.userIds, ['actions']));
    return { profileIds: sample.userIds, mix: sample.mix, actions };
  }
}
