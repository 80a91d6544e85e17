/**
 * Seeded, portable randomness for the generator and the sampler. Everything here is a pure
 * function of its seed: the same seed gives the same stream on every machine and Node version
 * (no Math.random, no platform-dependent floating point beyond IEEE 754 basics).
 */
import { Sfc32 } from '../core/random';

/** 32-bit hash of a string (MurmurHash3 x86_32); used for seeds and reproducible sample ranks. */
export function hash32(text: string, seed = 0): number {
  let h = seed >>> 0;
  const length = text.length;
  let i = 0;
  const mixChunk = (chunk: number) => {
    let k = Math.imul(chunk, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  };
  // UTF-16 code units, two per 32-bit chunk: deterministic for any string.
  for (; i + 1 < length; i += 2) mixChunk((text.charCodeAt(i) & 0xffff) | (text.charCodeAt(i + 1) << 16));
  if (i < length) {
    let k = text.charCodeAt(i) & 0xffff;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** sfc32 (core/random.ts) seeded from a string or number via hash32, with sampling helpers. */
export class Random extends Sfc32 {
  constructor(seed: number | string) {
    const text = String(seed);
    super(hash32(text, 0x9e3779b9), hash32(text, 0x243f6a88), hash32(text, 0xb7e15162));
  }

  /** Uniform integer in [0, max). */
  int(max: number): number {
    return Math.floor(this.next() * max);
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.int(items.length)] as T;
  }

  /** Picks a key with probability proportional to its weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const entries = Object.entries(weights) as [K, number][];
    const total = entries.reduce((sum, [, weight]) => sum + weight, 0);
    let point = this.next() * total;
    for (const [key, weight] of entries) {
      point -= weight;
      if (point < 0) return key;
    }
    return (entries[entries.length - 1] as [K, number])[0];
  }

  /** Standard normal by Box-Muller (one of the pair; simplicity over speed). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Log-normal with the given median and shape: heavy right tail, as human think times are. */
  logNormal(median: number, sigma: number): number {
    return median * Math.exp(sigma * this.normal());
  }

  /** Zipf-like rank in [0, n): a few items are very popular, most are rare. */
  zipf(n: number, exponent = 1.1): number {
    // Inverse transform on the continuous approximation; good enough for catalogue popularity.
    const u = this.next();
    if (exponent === 1) return Math.min(n - 1, Math.floor(Math.pow(n + 1, u)) - 1);
    const oneMinus = 1 - exponent;
    const max = Math.pow(n + 1, oneMinus);
    const value = Math.pow(1 + u * (max - 1), 1 / oneMinus);
    return Math.min(n - 1, Math.max(0, Math.floor(value) - 1));
  }
}
