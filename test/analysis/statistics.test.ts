import fc from 'fast-check';
import {
  bucketIndex,
  decodeHistogram,
  encodeHistogram,
  histogramOf,
  mergeHistograms,
  SUB_BUCKETS,
  upperEdge,
} from '../../analysis/histogram';
import {
  addPairCounts,
  countPairs,
  cumulativeOf,
  emptyPairCounts,
  logBernoulliEvidence,
  PAIR_GRID_SIZE,
  pairGridRatio,
  logQuantileShiftEvidence,
  logRateEvidence,
  mannWhitney,
  mannWhitneyRates,
  normalQuantile,
  normalSurvival,
  quantileBounds,
  RATE_GRID_SIZE,
  updateRateLikelihood,
} from '../../analysis/stats';
import { seededRandom } from '../../core/random';

const positive = fc.double({ min: 1e-5, max: 1e9, noNaN: true });

describe('log-bucket histograms', () => {
  it('puts every value in the bucket whose edges enclose it', () => {
    fc.assert(
      fc.property(positive, (value) => {
        const index = bucketIndex(value);
        expect(value).toBeLessThanOrEqual(upperEdge(index) * (1 + 1e-12));
        expect(value).toBeGreaterThan(upperEdge(index - 1) * (1 - 1e-12));
      }),
    );
  });

  it('survives the compact text encoding unchanged', () => {
    fc.assert(
      fc.property(fc.array(positive, { maxLength: 300 }), (values) => {
        const histogram = histogramOf(values);
        const text = encodeHistogram(histogram);
        expect(JSON.parse(JSON.stringify(text))).toBe(text);
        expect(decodeHistogram(text)).toEqual(histogram);
      }),
    );
  });

  it('merges like concatenating the samples', () => {
    fc.assert(
      fc.property(fc.array(positive, { maxLength: 100 }), fc.array(positive, { maxLength: 100 }), (a, b) => {
        expect(mergeHistograms(histogramOf(a), histogramOf(b))).toEqual(histogramOf([...a, ...b]));
      }),
    );
  });

  it('rejects corrupt state instead of guessing', () => {
    expect(() => decodeHistogram('0:3')).toThrow(/corrupt histogram/);
    expect(() => decodeHistogram('5:3.-1')).toThrow(/corrupt histogram/);
    expect(() => decodeHistogram('x!')).toThrow(/corrupt histogram/);
  });
});

describe('normal distribution helpers', () => {
  it('inverts the survival function', () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-8, max: 1 - 1e-8, noNaN: true }), (p) => {
        expect(normalSurvival(-normalQuantile(p))).toBeCloseTo(p, 6);
      }),
    );
  });
});

describe('Bernoulli mixture e-process', () => {
  // The exact supermartingale step: E_q[E_{n+1}] <= E_n whenever the null holds (q >= p for the
  // `below` side, q <= p for `above`), which with Ville's inequality is the whole validity proof.
  it('is a supermartingale under every null distribution', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.05, max: 0.995, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 5000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom<'below' | 'above'>('below', 'above'),
        (p, qShare, n, sShare, side) => {
          const q = side === 'below' ? p + (1 - p) * qShare : p * qShare;
          const s = Math.round(sShare * n);
          const now = logBernoulliEvidence(s, n, p, side);
          const next =
            q * Math.exp(logBernoulliEvidence(s + 1, n + 1, p, side) - now) +
            (1 - q) * Math.exp(logBernoulliEvidence(s, n + 1, p, side) - now);
          expect(next).toBeLessThanOrEqual(1 + 1e-9);
        },
      ),
    );
  });

  it('rarely crosses 1/alpha on null data, however often it is checked', () => {
    const random = seededRandom(7);
    const runs = 200;
    let crossings = 0;
    for (let run = 0; run < runs; run += 1) {
      let successes = 0;
      for (let n = 1; n <= 2000; n += 1) {
        if (random() < 0.9) successes += 1;
        if (logBernoulliEvidence(successes, n, 0.9, 'below') >= Math.log(1 / 0.05)) {
          crossings += 1;
          break;
        }
      }
    }
    expect(crossings / runs).toBeLessThanOrEqual(0.05 + 3 * Math.sqrt((0.05 * 0.95) / runs));
  });
});

describe('quantile confidence sequences', () => {
  it('cover the true quantile of the sampling distribution at every look', () => {
    const random = seededRandom(11);
    let misses = 0;
    const runs = 120;
    const trueP90 = Math.exp(1.2816 * 0.5) * 40; // log-normal(log 40, 0.5)
    for (let run = 0; run < runs; run += 1) {
      const values: number[] = [];
      let missed = false;
      for (let tick = 0; tick < 30 && !missed; tick += 1) {
        for (let i = 0; i < 50; i += 1) {
          const z = Math.sqrt(-2 * Math.log(Math.max(random(), 1e-12))) * Math.cos(2 * Math.PI * random());
          values.push(40 * Math.exp(0.5 * z));
        }
        const { lower, upper } = quantileBounds(cumulativeOf(histogramOf(values)), 0.9, Math.log(1 / 0.05));
        if (
          (lower >= 0 && upperEdge(lower) >= trueP90) ||
          (Number.isFinite(upper) && upperEdge(upper) < trueP90)
        )
          missed = true;
      }
      if (missed) misses += 1;
    }
    expect(misses / runs).toBeLessThanOrEqual(0.05);
  });

  it('see a regression only when it exceeds the tolerance', () => {
    const base = histogramOf(Array.from({ length: 4000 }, (_, i) => 10 + (i % 100)));
    const slower = histogramOf(Array.from({ length: 4000 }, (_, i) => (10 + (i % 100)) * 1.5));
    const same = cumulativeOf(base);
    expect(logQuantileShiftEvidence(same, cumulativeOf(slower), 0.9, 0.05)).toBeGreaterThan(Math.log(1000));
    expect(logQuantileShiftEvidence(same, cumulativeOf(slower), 0.9, 0.6)).toBe(0);
    expect(logQuantileShiftEvidence(same, same, 0.9, 0.05)).toBe(0);
  });

  it('are invariant to a common rescaling by a whole number of octaves', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 1, max: 1000, noNaN: true }), { minLength: 50, maxLength: 300 }),
        fc.array(fc.double({ min: 1, max: 1000, noNaN: true }), { minLength: 50, maxLength: 300 }),
        fc.integer({ min: -3, max: 3 }),
        (a, b, octaves) => {
          const scale = 2 ** octaves; // one octave = SUB_BUCKETS buckets exactly
          const direct = logQuantileShiftEvidence(
            cumulativeOf(histogramOf(a)),
            cumulativeOf(histogramOf(b)),
            0.5,
            0.05,
          );
          const scaled = logQuantileShiftEvidence(
            cumulativeOf(histogramOf(a.map((x) => x * scale))),
            cumulativeOf(histogramOf(b.map((x) => x * scale))),
            0.5,
            0.05,
          );
          expect(SUB_BUCKETS).toBe(32);
          expect(scaled).toBeCloseTo(direct, 9);
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe('rate-ratio e-process', () => {
  // Exact expectation over a tick's binomial split of N events, for true ratios inside the null.
  it('is a supermartingale for every rate ratio within the tolerance', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.double({ min: 0.2, max: 0.8, noNaN: true }),
        fc.double({ min: 0.2, max: 1.05, noNaN: true }),
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 0, max: 30 }),
        (events, share, ratio, priorA, priorB) => {
          const trials = { baseline: Math.round(10_000 * (1 - share)), canary: Math.round(10_000 * share) };
          const prior = updateRateLikelihood(
            [],
            { events: priorA, trials: 5000 },
            { events: priorB, trials: 5000 },
          );
          const now = logRateEvidence(prior, 0.05, 'increase');
          const theta = (share * ratio) / (1 - share + share * ratio);
          let expectation = 0;
          let probability = (1 - theta) ** events; // k = 0
          for (let k = 0; k <= events; k += 1) {
            const next = updateRateLikelihood(
              prior,
              { events: events - k, trials: trials.baseline },
              { events: k, trials: trials.canary },
            );
            expectation += probability * Math.exp(logRateEvidence(next, 0.05, 'increase') - now);
            probability *= ((events - k) / (k + 1)) * (theta / (1 - theta));
          }
          expect(expectation).toBeLessThanOrEqual(1 + 1e-6);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps a bounded grid whatever the counts', () => {
    const grid = updateRateLikelihood([], { events: 1e7, trials: 1e9 }, { events: 2e7, trials: 1e9 });
    expect(grid).toHaveLength(RATE_GRID_SIZE);
    expect(Math.max(...grid)).toBe(0);
    expect(logRateEvidence(grid, 0.05, 'increase')).toBeGreaterThan(100);
  });
});

describe('paired stochastic-order test', () => {
  const exact = (values: number[]) => ({ values, counts: values.map(() => 1) });

  it('counts pairs on the grid exactly as a brute-force comparison does', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.5, max: 500, noNaN: true }), { minLength: 1, maxLength: 60 }),
        fc.array(fc.double({ min: 0.5, max: 500, noNaN: true }), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 1e6 }),
        (xs, ys, seed) => {
          const counts = countPairs(exact(xs), exact(ys), 0.05, seededRandom(seed));
          expect(counts.n).toBe(Math.min(xs.length, ys.length));
          // The same permutation, replayed: pairs are a function of the seed only.
          expect(countPairs(exact(xs), exact(ys), 0.05, seededRandom(seed))).toEqual(counts);
          for (let j = 0; j < PAIR_GRID_SIZE; j += 7) {
            expect(counts.above[j]).toBeLessThanOrEqual(counts.n);
            expect((counts.above[j] as number) + (counts.below[j] as number)).toBeLessThanOrEqual(counts.n);
          }
          if (xs.length === 1 && ys.length === 1) {
            const ratio = (ys[0] as number) / (xs[0] as number);
            expect(counts.up).toBe(ratio > 1.05 ? 1 : 0);
            for (let j = 0; j < PAIR_GRID_SIZE; j += 1) {
              const s = pairGridRatio(j);
              if (Math.abs(ratio / s - 1) < 1e-9) continue; // on the grid point itself
              expect(counts.above[j]).toBe(ratio > s ? 1 : 0);
              expect(counts.below[j]).toBe(ratio < s ? 1 : 0);
            }
          }
        },
      ),
    );
  });

  it('samples huge counts without materialising them, in the right proportions', () => {
    // 10^12 observations per side: expanding them would need terabytes.
    const baseline = { values: [10, 20], counts: [5e11, 5e11] };
    const canary = { values: [10, 40], counts: [5e11, 5e11] };
    const counts = countPairs(baseline, canary, 0.05, seededRandom(3));
    expect(counts.n).toBe(50_000);
    // Y > 1.05 X exactly when Y = 40 (X is 10 or 20): P(up) = 1/2.
    expect(counts.up / counts.n).toBeGreaterThan(0.48);
    expect(counts.up / counts.n).toBeLessThan(0.52);
    // Y < X / 1.05 only for (X=20, Y=10): P = 1/4.
    expect(counts.down / counts.n).toBeGreaterThan(0.23);
    expect(counts.down / counts.n).toBeLessThan(0.27);
  });

  it('rarely rejects when the canary is slower by exactly the tolerance', () => {
    const random = seededRandom(17);
    const draw = () =>
      30 *
      Math.exp(0.5 * Math.sqrt(-2 * Math.log(Math.max(random(), 1e-12))) * Math.cos(2 * Math.PI * random()));
    let rejections = 0;
    const runs = 100;
    for (let run = 0; run < runs; run += 1) {
      let counts = emptyPairCounts();
      for (let tick = 0; tick < 30; tick += 1) {
        const xs = Array.from({ length: 100 }, draw);
        const ys = Array.from({ length: 100 }, () => draw() * 1.05);
        counts = addPairCounts(counts, countPairs(exact(xs), exact(ys), 0.05, random));
        if (logBernoulliEvidence(counts.up, counts.n, 0.5, 'above') >= Math.log(1 / 0.05)) {
          rejections += 1;
          break;
        }
      }
    }
    expect(rejections / runs).toBeLessThanOrEqual(0.05);
  });
});

describe('Mann-Whitney on buckets', () => {
  it('is centred on identical samples and detects a shift', () => {
    const a = histogramOf(Array.from({ length: 500 }, (_, i) => 20 + (i % 50)));
    expect(mannWhitney(a, a).z).toBeCloseTo(0, 9);
    const b = histogramOf(Array.from({ length: 500 }, (_, i) => (20 + (i % 50)) * 1.3));
    expect(mannWhitney(a, b).z).toBeGreaterThan(5);
    expect(mannWhitney(a, b, Math.log2(1.3) * SUB_BUCKETS).z).toBeLessThan(1.5);
  });

  it('equals the pooled two-proportion z statistic on 0/1 data', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 200 }), (eA, eB) => {
        const a = { events: eA, trials: 1000 };
        const b = { events: eB, trials: 1200 };
        const pooled = (eA + eB) / 2200;
        const z = (eB / 1200 - eA / 1000) / Math.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 1200));
        expect(mannWhitneyRates(a, b)).toBeCloseTo(z * Math.sqrt(2199 / 2200), 6);
      }),
    );
  });
});
