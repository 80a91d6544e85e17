/**
 * Seeded, portable randomness: the same seed gives the same stream on every machine and Node
 * version (no Math.random, no platform-dependent floating point beyond IEEE 754 basics). Pure.
 *
 * One generator, sfc32 (Chris Doty-Humphrey's small fast chaotic PRNG: fast, passes PractRand to
 * 2^40+), and the three ways the project turns a seed into its first words. Each way is kept
 * exactly, warm-up included, so every stream recorded before they were merged stays identical:
 * - `Random.fromText`: profile generation and sampling (MurmurHash3 of the seed's text);
 * - `Random.fromSplitMix`: the load schedule (splitmix32 of a number);
 * - `seededRandom`: the analysis's random pairing (words mixed from the seed, 15 warm-up draws).
 */

export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d = 1;

  /** `warmUp` draws are discarded so that similar seeds do not start with similar outputs. */
  constructor(a: number, b: number, c: number, warmUp = 12) {
    this.a = a | 0;
    this.b = b | 0;
    this.c = c | 0;
    for (let i = 0; i < warmUp; i++) this.nextUint32();
  }

  /** Seeded from a string or number through MurmurHash3 (three differently seeded hashes). */
  static fromText(seed: number | string): Random {
    const text = String(seed);
    return new Random(
      murmurHash32(text, 0x9e3779b9),
      murmurHash32(text, 0x243f6a88),
      murmurHash32(text, 0xb7e15162),
    );
  }

  /** Seeded from a number through splitmix32. */
  static fromSplitMix(seed: number): Random {
    let state = seed >>> 0;
    const next = () => {
      state = (state + 0x9e3779b9) | 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    return new Random(next(), next(), next());
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
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

/** A stream of uniform numbers in [0, 1), for code that only needs draws. */
export type RandomStream = () => number;

/** The analysis's stream: seeded from one number (e.g. `fnvHash32` of tick, metric and action). */
export function seededRandom(seed: number): RandomStream {
  const random = new Random(
    0x9e3779b9 ^ seed,
    0x243f6a88 + Math.imul(seed, 7),
    0xb7e15162 ^ Math.imul(seed, 13),
    15,
  );
  return () => random.next();
}

/** 32-bit MurmurHash3 (x86_32) of a string's UTF-16 code units; seeds and reproducible ranks. */
export function murmurHash32(text: string, seed = 0): number {
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

/** 32-bit FNV-1a of a string's UTF-16 code units: the analysis's seed for one tick, metric and action. */
export function fnvHash32(text: string): number {
  let hash = 2166136261;
  for (let i = 0; i < text.length; i += 1) hash = Math.imul(hash ^ text.charCodeAt(i), 16777619);
  return hash >>> 0;
}
