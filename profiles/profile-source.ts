/**
 * The rollout's ProfileSource port on top of the store: a reproducible sample of the profiles
 * matching the spec's criteria. Where the store answers sample-key slots from an index
 * (keySamplingReady), a uniform sample read by key (sample-key.ts, no scan); elsewhere
 * (FerretDB on SQLite) the stratified sample of one full scan (sampler.ts). Criteria that match nothing are a configuration error
 * (ValidationError, so the activity fails fast instead of probing with no users).
 */
import type { ProfileSelection } from '../rollout/types';
import { ValidationError, type Json } from '../core/validation';
import { parseCriteria, type CompiledCriteria } from './criteria';
import { distinctActions, mixOf, stratifiedSample, type StratifiedSample } from './sampler';
import type { Profile } from './profile-schema';
import type { ProfileStore } from './store';

/** A sample and, when it was read by key, its whole profiles (so nothing is read twice). */
export type ProfileSample = StratifiedSample & {
  method: 'stratified' | 'sample-key';
  profiles?: Profile[];
};

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

  async sample(criteria: CompiledCriteria, n: number, seed: number): Promise<ProfileSample> {
    if (await this.store.keySamplingReady()) {
      const { profiles, population } = await this.store.sampleByKey(criteria.filter, n, seed);
      const members = profiles.map((profile) => ({
        user_id: profile.user_id,
        device_type: profile.device_type,
        country: profile.geo_location?.country ?? 'ZZ',
        activity_level: profile.activity_level ?? 'unknown',
      }));
      return {
        method: 'sample-key',
        userIds: members.map((member) => member.user_id),
        members,
        population,
        strata: [],
        mix: mixOf(members),
        profiles,
      };
    }
    const candidates = await this.store.sampleCandidates(
      criteria.filter,
      this.options.maxPopulation ?? DEFAULT_MAX_POPULATION,
    );
    return { method: 'stratified', ...stratifiedSample(candidates, n, seed) };
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
    const actions = distinctActions(
      sample.profiles ?? (await this.store.getMany(sample.userIds, ['actions'])),
    );
    return { profileIds: sample.userIds, mix: sample.mix, actions };
  }
}
