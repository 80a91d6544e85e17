/**
 * Sampling without a scan, pure part. Every stored profile carries `sample_key`, a uniform number
 * in [0, 1) derived from its user_id (so a backfill or a re-import sets the same key again), and
 * that key's slot at two resolutions. A sample for a seed starts at a point `start` drawn from the
 * seed and takes the k matching profiles whose keys come next, going round past 1 to 0.
 *
 * Why slots: FerretDB 1.24 pushes only top-level equality down to its backend (no range, no
 * sort), so "keys from `start` upwards" is read slot by slot with `sample_slot_N: s`, an equality
 * that an index on the slot answers; a sample of k reads about k / (matching profiles per slot)
 * slots, not the store.
 *
 * How uniform: keys are a hash of the user_id, independent of every criteria field, so the k
 * profiles after a uniform `start` are a uniformly random k-subset as far as any property of the
 * profiles is concerned. For one fixed store, profile i is picked exactly when `start` falls in
 * the arc of the k keys before it (its own included): its inclusion probability is that arc's
 * length, k/N on average with a relative spread of about 1/sqrt(k) (3 % at k = 1000).
 */
import { murmurHash32, seededRandom } from '../core/random';

/** Slot counts, coarse to fine; each is a stored field `sample_slot_<count>`. */
export const SAMPLE_SLOT_LEVELS = [64, 4096] as const;
export type SampleSlotLevel = (typeof SAMPLE_SLOT_LEVELS)[number];

const KEY_SALT = 0x5a3c_71e9;

export interface SampleKeyFields {
  sample_key: number;
  sample_slot_64: number;
  sample_slot_4096: number;
}

export function slotField(level: SampleSlotLevel): keyof SampleKeyFields {
  return `sample_slot_${level}`;
}

/** 52 bits of two salted hashes: ties between 1 000 000 keys are practically impossible. */
export function sampleKeyOf(userId: string): SampleKeyFields {
  const high = murmurHash32(userId, KEY_SALT) >>> 12; // 20 bits
  const low = murmurHash32(userId, KEY_SALT ^ 0xffff_ffff); // 32 bits
  const key = (high * 2 ** 32 + low) / 2 ** 52;
  return {
    sample_key: key,
    sample_slot_64: Math.floor(key * 64),
    sample_slot_4096: Math.floor(key * 4096),
  };
}

/** Where a seed's sample starts on the key circle. */
export function sampleStart(seed: number): number {
  return seededRandom(seed)();
}

/** Distance from `start` to `key` going upwards round the circle, in [0, 1). */
export function arcFrom(start: number, key: number): number {
  const arc = key - start;
  return arc >= 0 ? arc : arc + 1;
}

/** The slots in reading order: the one holding `start`, then upwards, wrapping round. */
export function slotOrder(start: number, level: SampleSlotLevel): number[] {
  const first = Math.min(level - 1, Math.floor(start * level));
  return Array.from({ length: level }, (_, i) => (first + i) % level);
}

/**
 * How far round the circle from `start` every key is known once the first `slotsRead` slots of
 * slotOrder() are read: 1 when all are.
 */
export function arcKnown(start: number, level: SampleSlotLevel, slotsRead: number): number {
  if (slotsRead >= level) return 1;
  const first = Math.min(level - 1, Math.floor(start * level));
  return Math.max(0, (first + slotsRead) / level - start);
}

export interface Keyed {
  user_id: string;
  sample_key: number;
}

/**
 * The first `k` of `members` going round from `start`, if they are already decided by the keys
 * known so far (all keys within `known` of start): null while more slots must be read.
 */
export function windowFrom<T extends Keyed>(
  members: readonly T[],
  start: number,
  k: number,
  known: number,
): T[] | null {
  const inside = members
    .map((member) => ({ member, arc: arcFrom(start, member.sample_key) }))
    .filter(({ arc }) => arc < known)
    .sort((a, b) => a.arc - b.arc || (a.member.user_id < b.member.user_id ? -1 : 1));
  if (inside.length < k && known < 1) return null;
  return inside.slice(0, k).map(({ member }) => member);
}

/** Exact inclusion probability of each key (sorted or not) for a uniform start: its arc of k keys. */
export function inclusionProbabilities(keys: readonly number[], k: number): number[] {
  const sorted = keys.map((key, index) => ({ key, index })).sort((a, b) => a.key - b.key);
  const n = sorted.length;
  const result = new Array<number>(n).fill(0);
  if (k >= n) return result.fill(1);
  sorted.forEach(({ index }, rank) => {
    const own = sorted[rank] as { key: number };
    const before = sorted[(rank - k + n) % n] as { key: number };
    // start in (key of the k-th predecessor, own key] picks this profile.
    result[index] = arcFrom(before.key, own.key) || 1;
  });
  return result;
}
