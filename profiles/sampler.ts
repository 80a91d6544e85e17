/**
 * Reproducible stratified sampling, pure. Strata are device type x country x activity level;
 * each stratum gets its proportional share of the sample (largest remainder), and within a
 * stratum the members with the smallest hash(seed, user_id) are taken ("bottom-k"). So:
 * - the same population and seed always give the same sample, in the same order;
 * - a profile added to or removed from the population changes its own stratum's bottom-k, and,
 *   since every quota depends on the total, it can also move seats of the allocation between
 *   strata; but a stratum only ever gains or loses members at the edge of its own rank order,
 *   so a stratum whose allocation did not change keeps exactly the same picks (unless the
 *   profile joined or left that stratum) and the sample changes by a few members, not wholesale;
 * - any prefix of the returned list is itself a uniform random subset.
 */
import { murmurHash32 } from '../core/random';

export interface SampleCandidate {
  user_id: string;
  device_type: string;
  country: string;
  activity_level: string;
}

export interface StratumAllocation {
  key: string;
  population: number;
  allocated: number;
}

export interface StratifiedSample {
  userIds: string[];
  /** The sampled profiles' stratum fields, in sample order. */
  members: SampleCandidate[];
  population: number;
  strata: StratumAllocation[];
  /** Share of the sample per dimension value, e.g. `{ "device:mobile": 0.6, "country:US": 0.3 }`. */
  mix: Record<string, number>;
}

export function stratumKey(candidate: SampleCandidate): string {
  return `${candidate.device_type}|${candidate.country}|${candidate.activity_level}`;
}

/** Rank of a profile in the sample order for `seed`: a 32-bit hash, ties broken by user_id. */
function rank(userId: string, seed: number): number {
  return murmurHash32(userId, seed);
}

function byRank(seed: number) {
  const cache = new Map<string, number>();
  const of = (id: string) => {
    let value = cache.get(id);
    if (value === undefined) {
      value = rank(id, seed);
      cache.set(id, value);
    }
    return value;
  };
  return (a: string, b: string) => of(a) - of(b) || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * Splits `n` over strata in proportion to their populations (Hamilton's largest remainder).
 * Ties of remainder go to the larger stratum, then by a seeded hash of the key, so the split
 * is deterministic and does not favour strata by name.
 */
export function allocate(
  populations: ReadonlyMap<string, number>,
  n: number,
  seed: number,
): Map<string, number> {
  const total = [...populations.values()].reduce((sum, count) => sum + count, 0);
  const allocation = new Map<string, number>();
  if (total === 0 || n <= 0) {
    for (const key of populations.keys()) allocation.set(key, 0);
    return allocation;
  }
  if (n >= total) return new Map(populations);
  const remainders: { key: string; fraction: number; population: number }[] = [];
  let assigned = 0;
  for (const [key, population] of populations) {
    const quota = (n * population) / total;
    const whole = Math.floor(quota);
    allocation.set(key, whole);
    assigned += whole;
    remainders.push({ key, fraction: quota - whole, population });
  }
  remainders.sort(
    (a, b) =>
      b.fraction - a.fraction ||
      b.population - a.population ||
      murmurHash32(a.key, seed) - murmurHash32(b.key, seed) ||
      (a.key < b.key ? -1 : 1),
  );
  for (let i = 0; i < n - assigned; i++) {
    const { key } = remainders[i % remainders.length] as { key: string };
    allocation.set(key, (allocation.get(key) ?? 0) + 1);
  }
  return allocation;
}

export function stratifiedSample(
  candidates: readonly SampleCandidate[],
  n: number,
  seed: number,
): StratifiedSample {
  const members = new Map<string, string[]>();
  const byId = new Map<string, SampleCandidate>();
  for (const candidate of candidates) {
    if (byId.has(candidate.user_id)) continue;
    byId.set(candidate.user_id, candidate);
    const key = stratumKey(candidate);
    const list = members.get(key);
    if (list) list.push(candidate.user_id);
    else members.set(key, [candidate.user_id]);
  }
  const populations = new Map([...members].map(([key, ids]) => [key, ids.length] as const));
  const allocation = allocate(populations, n, seed);
  const compare = byRank(seed);
  const picked: string[] = [];
  for (const [key, ids] of members) {
    const take = allocation.get(key) ?? 0;
    if (take > 0) picked.push(...ids.sort(compare).slice(0, take));
  }
  picked.sort(compare);
  const strata = [...members.keys()]
    .sort()
    .map((key) => ({ key, population: populations.get(key) ?? 0, allocated: allocation.get(key) ?? 0 }));
  const chosen = picked.map((id) => byId.get(id) as SampleCandidate);
  return { userIds: picked, members: chosen, population: byId.size, strata, mix: mixOf(chosen) };
}

/** The distinct actions a sample's profiles use, sorted. */
export function distinctActions(profiles: readonly { actions?: readonly string[] }[]): string[] {
  return [...new Set(profiles.flatMap((profile) => profile.actions ?? []))].sort();
}

/** Marginal shares per dimension, rounded to 4 places. */
export function mixOf(sample: readonly SampleCandidate[]): Record<string, number> {
  const counts = new Map<string, number>();
  const bump = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
  for (const candidate of sample) {
    bump(`device:${candidate.device_type}`);
    bump(`country:${candidate.country}`);
    bump(`activity:${candidate.activity_level}`);
  }
  const mix: Record<string, number> = {};
  for (const key of [...counts.keys()].sort())
    mix[key] = Math.round(((counts.get(key) ?? 0) / sample.length) * 10_000) / 10_000;
  return mix;
}
