/**
 * Fixed log-spaced buckets shared by every target, action and tick, so histograms from any
 * source (raw values, HDR histograms, Prometheus) merge by adding counts and the state a rollout
 * carries stays bounded: at most one counter per occupied bucket, whatever the sample count.
 *
 * Bucket 0 holds values <= MIN_VALUE; bucket i >= 1 holds (MIN_VALUE·R^(i-1), MIN_VALUE·R^i] with
 * R = 2^(1/SUB_BUCKETS) (2.2 % wide), up to MAX_INDEX (~1.8e13 in the metric's unit).
 * Pure: no I/O.
 */

export const SUB_BUCKETS = 32;
export const MIN_VALUE = 1e-6;
export const MAX_INDEX = SUB_BUCKETS * 64;
/** Relative width of one bucket, e.g. 0.0219: the resolution of every quantile bound. */
export const BUCKET_RATIO = 2 ** (1 / SUB_BUCKETS);

export function bucketIndex(value: number): number {
  if (!(value > MIN_VALUE)) return 0;
  const exact = Math.log2(value / MIN_VALUE) * SUB_BUCKETS;
  let index = Math.ceil(exact - 1e-9);
  // Near an edge, log2's rounding decides: check against the edge itself.
  if (exact - Math.floor(exact) < 1e-6 && upperEdge(index) < value) index += 1;
  return Math.min(MAX_INDEX, Math.max(1, index));
}

/** Largest value of bucket `index`; the last bucket is open-ended and reports its nominal edge. */
export function upperEdge(index: number): number {
  return MIN_VALUE * 2 ** (index / SUB_BUCKETS);
}

/** Geometric centre of a bucket: the value a bucket stands for in means and point estimates. */
export function bucketCentre(index: number): number {
  return index === 0 ? MIN_VALUE : MIN_VALUE * 2 ** ((index - 0.5) / SUB_BUCKETS);
}

/** Sparse histogram: strictly increasing bucket indices with positive counts. */
export interface LogHistogram {
  indices: number[];
  counts: number[];
  total: number;
}

export function emptyHistogram(): LogHistogram {
  return { indices: [], counts: [], total: 0 };
}

export function histogramOf(values: Iterable<number>): LogHistogram {
  const byIndex = new Map<number, number>();
  for (const value of values) {
    const index = bucketIndex(value);
    byIndex.set(index, (byIndex.get(index) ?? 0) + 1);
  }
  return fromBucketMap(byIndex);
}

export function fromBucketMap(byIndex: Map<number, number>): LogHistogram {
  const indices = [...byIndex.keys()].filter((index) => (byIndex.get(index) ?? 0) > 0).sort((a, b) => a - b);
  const counts = indices.map((index) => byIndex.get(index) as number);
  return { indices, counts, total: counts.reduce((sum, count) => sum + count, 0) };
}

export function mergeHistograms(a: LogHistogram, b: LogHistogram): LogHistogram {
  const indices: number[] = [];
  const counts: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.indices.length || j < b.indices.length) {
    const ai = a.indices[i] ?? Infinity;
    const bj = b.indices[j] ?? Infinity;
    if (ai === bj) {
      indices.push(ai);
      counts.push((a.counts[i] as number) + (b.counts[j] as number));
      i += 1;
      j += 1;
    } else if (ai < bj) {
      indices.push(ai);
      counts.push(a.counts[i] as number);
      i += 1;
    } else {
      indices.push(bj);
      counts.push(b.counts[j] as number);
      j += 1;
    }
  }
  return { indices, counts, total: a.total + b.total };
}

/** Empirical quantile, interpolated geometrically inside its bucket (a point estimate only). */
export function estimateQuantile(histogram: LogHistogram, p: number): number {
  if (histogram.total === 0) return NaN;
  const rank = p * histogram.total;
  let below = 0;
  for (let k = 0; k < histogram.indices.length; k += 1) {
    const count = histogram.counts[k] as number;
    const index = histogram.indices[k] as number;
    if (below + count >= rank) {
      if (index === 0) return MIN_VALUE;
      const fraction = count === 0 ? 0.5 : Math.min(1, Math.max(0, (rank - below) / count));
      return MIN_VALUE * 2 ** ((index - 1 + fraction) / SUB_BUCKETS);
    }
    below += count;
  }
  return upperEdge(histogram.indices[histogram.indices.length - 1] as number);
}

export function histogramMean(histogram: LogHistogram): number {
  if (histogram.total === 0) return NaN;
  let sum = 0;
  for (let k = 0; k < histogram.indices.length; k += 1)
    sum += bucketCentre(histogram.indices[k] as number) * (histogram.counts[k] as number);
  return sum / histogram.total;
}

/**
 * Compact text form for the carried state: runs of adjacent buckets, `gap:c1.c2.c3` joined by
 * `;`, base 36, where gap is the index step from the end of the previous run (from -1 for the
 * first) and a single empty bucket inside a run is written as `0`. ~3-4 characters per bucket.
 */
export function encodeHistogram(histogram: LogHistogram): string {
  const runs: string[] = [];
  let current: string[] = [];
  let previous = -1;
  let runEnd = -1;
  for (let k = 0; k < histogram.indices.length; k += 1) {
    const index = histogram.indices[k] as number;
    const count = (histogram.counts[k] as number).toString(36);
    if (current.length > 0 && index - previous <= 2) {
      if (index - previous === 2) current.push('0');
      current.push(count);
    } else {
      if (current.length > 0) runs.push(current.join('.'));
      current = [`${(index - runEnd).toString(36)}:${count}`];
    }
    previous = index;
    runEnd = index;
  }
  if (current.length > 0) runs.push(current.join('.'));
  const text = runs.join(';');
  remember(text, histogram);
  return text;
}

/**
 * Decoding is memoised on the text (histograms are never mutated, and the encoder seeds the
 * memo): a rollout decodes the state it encoded one tick earlier, the benchmark millions of times.
 */
const decoded = new Map<string, LogHistogram>();
const DECODE_CACHE_SIZE = 512;

export function decodeHistogram(text: string): LogHistogram {
  const cached = decoded.get(text);
  if (cached) return cached;
  const histogram = parseHistogram(text);
  remember(text, histogram);
  return histogram;
}

function remember(text: string, histogram: LogHistogram): void {
  if (decoded.size >= DECODE_CACHE_SIZE) decoded.delete(decoded.keys().next().value as string);
  decoded.set(text, histogram);
}

function parseHistogram(text: string): LogHistogram {
  const histogram = emptyHistogram();
  if (text === '') return histogram;
  let index = -1;
  for (const run of text.split(';')) {
    const [gap, body] = run.split(':');
    const step = parseInt(gap ?? '', 36);
    if (!(step > 0) || body === undefined) throw new Error(`corrupt histogram state near "${run}"`);
    index += step - 1;
    for (const part of body.split('.')) {
      index += 1;
      const count = parseInt(part, 36);
      if (!Number.isInteger(count) || count < 0 || index > MAX_INDEX || !/^[0-9a-z]+$/.test(part))
        throw new Error(`corrupt histogram state near "${run}"`);
      if (count === 0) continue;
      histogram.indices.push(index);
      histogram.counts.push(count);
      histogram.total += count;
    }
  }
  return histogram;
}
