/**
 * Statistical primitives of the analysis methods. Pure and deterministic: no I/O, no clocks,
 * no randomness.
 */
import { SUB_BUCKETS, type LogHistogram } from './histogram';

export function logSumExp(values: readonly number[]): number {
  let max = -Infinity;
  for (const value of values) if (value > max) max = value;
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (const value of values) sum += Math.exp(value - max);
  return max + Math.log(sum);
}

/** Standard normal CDF (W. J. Cody's rational approximation via erfc; |error| < 1e-14). */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

/** Upper tail 1 - Φ(z), accurate far into the tail. */
export function normalSurvival(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

function erfc(x: number): number {
  // Numerical Recipes' erfc via Chebyshev fit (fractional error < 1.2e-7), good enough for p-values.
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Inverse of the standard normal CDF (Acklam's algorithm, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (p <= 0) return -Infinity;
  if (p >= 1) return Infinity;
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const [a0, a1, a2, a3, a4, a5] = a as [number, number, number, number, number, number];
  const [b0, b1, b2, b3, b4] = b as [number, number, number, number, number];
  const [c0, c1, c2, c3, c4, c5] = c as [number, number, number, number, number, number];
  const [d0, d1, d2, d3] = d as [number, number, number, number];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) /
      ((((d0 * q + d1) * q + d2) * q + d3) * q + 1)
    );
  }
  if (p > 1 - low) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return (
      -(((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) /
      ((((d0 * q + d1) * q + d2) * q + d3) * q + 1)
    );
  }
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q) /
    (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1)
  );
}

// ---------------------------------------------------------------------------------------------
// One-sided Bernoulli e-processes: the building block of the quantile confidence sequences.
//
// For a fixed level p and a fixed threshold x, the indicators 1{X_i <= x} are i.i.d.
// Bernoulli(q) with q = F(x). For an alternative θ the likelihood ratio against p,
//   L_n(θ) = (θ/p)^S ((1-θ)/(1-p))^(n-S),   S = #{i <= n : X_i <= x},
// has one-step expectation qθ/p + (1-q)(1-θ)/(1-p), which is 1 at q = p, <= 1 for q >= p when
// θ < p and <= 1 for q <= p when θ > p. A mixture of such ratios over alternatives on one side is
// therefore a nonnegative supermartingale under the composite null on the other side, and
// Ville's inequality gives P(∃n: E_n >= 1/α) <= α: an anytime-valid test (Howard, Ramdas,
// McAuliffe & Sekhon 2021, discrete mixtures, Sec. 3; Howard & Ramdas 2022 build their
// fixed-quantile confidence sequence on the same Bernoulli martingales, with a beta mixture).
// We mix uniformly over a geometric grid of log-odds offsets η_j = η_0·2^(j/2), which costs
// log(J) nats against the best single alternative and needs no special functions.
// ---------------------------------------------------------------------------------------------

const GRID_SIZE = 24;
const GRID_START = 0.004;
const LOG_WEIGHT = -Math.log(GRID_SIZE);

interface BernoulliGrid {
  /** log(θ_j/p) and log((1-θ_j)/(1-p)) for each alternative θ_j. */
  success: Float64Array;
  failure: Float64Array;
}

const gridCache = new Map<string, BernoulliGrid>();
const scratch = new Float64Array(GRID_SIZE);

function bernoulliGrid(p: number, side: 'below' | 'above'): BernoulliGrid {
  const key = `${p}/${side}`;
  const cached = gridCache.get(key);
  if (cached) return cached;
  const logit = Math.log(p / (1 - p));
  const success = new Float64Array(GRID_SIZE);
  const failure = new Float64Array(GRID_SIZE);
  for (let j = 0; j < GRID_SIZE; j += 1) {
    const eta = GRID_START * 2 ** (j / 2) * (side === 'below' ? -1 : 1);
    const theta = 1 / (1 + Math.exp(-(logit + eta)));
    success[j] = Math.log(theta / p);
    failure[j] = Math.log((1 - theta) / (1 - p));
  }
  const grid = { success, failure };
  gridCache.set(key, grid);
  return grid;
}

/**
 * log of the mixture e-value against H0: P(X <= x) >= p (side `below`: evidence that fewer
 * than a fraction p of values lie at or below x, i.e. the p-quantile is above x), or against
 * H0: P(X <= x) <= p (side `above`: the p-quantile is at or below x). `successes` counts values
 * <= x among `n`.
 */
export function logBernoulliEvidence(
  successes: number,
  n: number,
  p: number,
  side: 'below' | 'above',
): number {
  if (n === 0) return 0;
  const grid = bernoulliGrid(p, side);
  const failures = n - successes;
  let max = -Infinity;
  const terms = scratch;
  for (let j = 0; j < GRID_SIZE; j += 1) {
    const term =
      LOG_WEIGHT + successes * (grid.success[j] as number) + failures * (grid.failure[j] as number);
    terms[j] = term;
    if (term > max) max = term;
  }
  let sum = 0;
  for (let j = 0; j < GRID_SIZE; j += 1) sum += Math.exp((terms[j] as number) - max);
  return max + Math.log(sum);
}

/** Cumulative view of a histogram for repeated threshold counts. */
export interface CumulativeHistogram {
  indices: number[];
  cumulative: number[];
  total: number;
}

export function cumulativeOf(histogram: LogHistogram): CumulativeHistogram {
  const cumulative: number[] = [];
  let running = 0;
  for (const count of histogram.counts) {
    running += count;
    cumulative.push(running);
  }
  return { indices: histogram.indices, cumulative, total: histogram.total };
}

/** Values <= upperEdge(index). */
export function countAtOrBelowIndex(h: CumulativeHistogram, index: number): number {
  let lo = 0;
  let hi = h.indices.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if ((h.indices[mid] as number) <= index) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found < 0 ? 0 : (h.cumulative[found] as number);
}

/**
 * Anytime-valid bounds on the p-quantile at level `logThreshold` = log(1/α):
 * `lower` is the largest bucket index L with Q(p) > upperEdge(L) proven (-1: none),
 * `upper` the smallest index U with Q(p) <= upperEdge(U) proven (Infinity: none).
 * The lower evidence decreases and the upper evidence increases with the threshold, so a
 * binary search over the occupied buckets finds both; rejecting at any x beyond the true
 * quantile implies rejecting at the quantile itself, which keeps the bounds simultaneous in x.
 */
export function quantileBounds(
  h: CumulativeHistogram,
  p: number,
  logThreshold: number,
): { lower: number; upper: number } {
  // Lower: candidates are the last index before each occupied bucket (largest x with that count).
  let lower = -1;
  let lo = 0;
  let hi = h.indices.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const below = mid === 0 ? 0 : (h.cumulative[mid - 1] as number);
    if (logBernoulliEvidence(below, h.total, p, 'below') >= logThreshold) {
      lower = (h.indices[mid] as number) - 1;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  let upper = Infinity;
  lo = 0;
  hi = h.indices.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (logBernoulliEvidence(h.cumulative[mid] as number, h.total, p, 'above') >= logThreshold) {
      upper = h.indices[mid] as number;
      hi = mid - 1;
    } else lo = mid + 1;
  }
  return { lower, upper };
}

/**
 * Largest log e-value that the `slow` sample's p-quantile exceeds (1+tolerance) times the
 * `fast` sample's, with each half of the evidence tested at the same level:
 * max over edges y of min(E_above_fast(y), E_below_slow(y + k)), k = buckets spanning the
 * tolerance. Q_fast(p) <= edge(y) and Q_slow(p) > edge(y+k) >= (1+tol)·edge(y) together prove
 * the regression; a union bound over the two one-sided tests makes the pair valid at 2/E.
 */
export function logQuantileShiftEvidence(
  fast: CumulativeHistogram,
  slow: CumulativeHistogram,
  p: number,
  tolerance: number,
): number {
  if (fast.total === 0 || slow.total === 0) return 0;
  const k = Math.max(0, Math.ceil(Math.log2(1 + tolerance) * SUB_BUCKETS - 1e-9));
  let best = -Infinity;
  for (let m = 0; m < fast.indices.length; m += 1) {
    const fastBelow = fast.cumulative[m] as number;
    if (fastBelow <= p * fast.total) continue; // no evidence that Q_fast <= this edge
    const y = fast.indices[m] as number;
    const slowBelow = countAtOrBelowIndex(slow, y + k);
    if (slowBelow >= p * slow.total) break; // further edges only weaken the slow side
    const evidence = Math.min(
      logBernoulliEvidence(fastBelow, fast.total, p, 'above'),
      logBernoulliEvidence(slowBelow, slow.total, p, 'below'),
    );
    if (evidence > best) best = evidence;
  }
  return best === -Infinity ? 0 : Math.max(0, best);
}

// ---------------------------------------------------------------------------------------------
// Counts: the rate ratio of events (errors, 5xx) between canary and baseline.
//
// Lindon & Malek (NeurIPS 2022) reduce two Poisson processes with intensities ρ_i·e^{δ_i}·λ(t)
// to a multinomial: each event belongs to the canary with probability
//   θ = ρ_B r / (ρ_A + ρ_B r),   r = canary rate / baseline rate,
// whatever the common λ(t) does. Their Dirichlet(kρ) prior needs a fixed exposure share ρ; our
// probes' share varies a little per tick, so we keep the exact conditional likelihood of r,
// tick by tick, on a fixed log grid r_k = e^{0.05k}, and use a discrete (uniform) prior over
// the grid points on the alternative side instead of the Dirichlet. Each grid point's
// likelihood ratio against the null boundary r_0 is a nonnegative supermartingale for r <= r_0,
// so is their average, and Ville's inequality bounds P(∃t: E_t >= 1/α) <= α.
// ---------------------------------------------------------------------------------------------

export const RATE_GRID_STEP = 0.05;
export const RATE_GRID_MIN = -24;
export const RATE_GRID_MAX = 48;
export const RATE_GRID_SIZE = RATE_GRID_MAX - RATE_GRID_MIN + 1;

export function rateGridRatio(position: number): number {
  return Math.exp((position + RATE_GRID_MIN) * RATE_GRID_STEP);
}

/** Adds one tick's events to the log-likelihood grid (relative: the maximum is kept at 0). */
export function updateRateLikelihood(
  logLikelihood: readonly number[],
  baseline: { events: number; trials: number },
  canary: { events: number; trials: number },
): number[] {
  const next =
    logLikelihood.length === RATE_GRID_SIZE ? [...logLikelihood] : new Array<number>(RATE_GRID_SIZE).fill(0);
  const events = baseline.events + canary.events;
  const exposure = baseline.trials + canary.trials;
  if (events === 0 || baseline.trials === 0 || canary.trials === 0) return next;
  const rhoCanary = canary.trials / exposure;
  const rhoBaseline = 1 - rhoCanary;
  let max = -Infinity;
  for (let k = 0; k < RATE_GRID_SIZE; k += 1) {
    const r = rateGridRatio(k);
    const theta = (rhoCanary * r) / (rhoBaseline + rhoCanary * r);
    const value =
      (next[k] as number) + canary.events * Math.log(theta) + baseline.events * Math.log(1 - theta);
    next[k] = value;
    if (value > max) max = value;
  }
  for (let k = 0; k < RATE_GRID_SIZE; k += 1) next[k] = (next[k] as number) - max;
  return next;
}

/**
 * The largest tolerance the grid can test in a direction: beyond it no grid point lies past the
 * null boundary and the evidence would stay 0 forever (a test that can never fail). Rounded down
 * to 0.001. Increase: ratios up to e^{2.4} ≈ 11; decrease: down to e^{-1.2} ≈ 0.30.
 */
export function maxRateTolerance(direction: 'increase' | 'decrease' | 'either'): number {
  const increase = Math.exp((RATE_GRID_MAX - 1) * RATE_GRID_STEP) - 1;
  const decrease = Math.exp(-(RATE_GRID_MIN + 1) * RATE_GRID_STEP) - 1;
  const limit =
    direction === 'increase' ? increase : direction === 'decrease' ? decrease : Math.min(increase, decrease);
  return Math.floor(limit * 1000) / 1000;
}

/** Grid position of the null boundary for a worse-by-more-than-tolerance test. */
export function rateNullPosition(tolerance: number, direction: 'increase' | 'decrease'): number {
  const target = direction === 'increase' ? Math.log(1 + tolerance) : -Math.log(1 + tolerance);
  const k =
    direction === 'increase'
      ? Math.ceil(target / RATE_GRID_STEP - 1e-9)
      : Math.floor(target / RATE_GRID_STEP + 1e-9);
  return Math.min(RATE_GRID_MAX, Math.max(RATE_GRID_MIN, k)) - RATE_GRID_MIN;
}

/** log e-value of the mixture over grid points beyond the null boundary (uniform weights). */
export function logRateEvidence(
  logLikelihood: readonly number[],
  tolerance: number,
  direction: 'increase' | 'decrease',
): number {
  if (logLikelihood.length !== RATE_GRID_SIZE) return 0;
  const nullPosition = rateNullPosition(tolerance, direction);
  const base = logLikelihood[nullPosition] as number;
  const terms: number[] = [];
  if (direction === 'increase') {
    for (let k = nullPosition + 1; k < RATE_GRID_SIZE; k += 1)
      terms.push((logLikelihood[k] as number) - base);
  } else {
    for (let k = 0; k < nullPosition; k += 1) terms.push((logLikelihood[k] as number) - base);
  }
  if (terms.length === 0) return 0;
  return logSumExp(terms) - Math.log(terms.length);
}

/** Confidence set of the rate ratio at level log(1/α): grid points whose two-sided e-value stays below. */
export function rateRatioInterval(logLikelihood: readonly number[], logThreshold: number): [number, number] {
  if (logLikelihood.length !== RATE_GRID_SIZE) return [0, Infinity];
  const total = logSumExp(logLikelihood);
  let low = -1;
  let high = -1;
  let best = 0;
  for (let k = 0; k < RATE_GRID_SIZE; k += 1) {
    const own = logLikelihood[k] as number;
    if (own > (logLikelihood[best] as number)) best = k;
    // mixture over the other points: (Σ_j≠k e^{ℓ_j}) / (G-1) / e^{ℓ_k}
    const others = Math.log(Math.max(0, Math.exp(total) - Math.exp(own))) - Math.log(RATE_GRID_SIZE - 1);
    if (others - own < logThreshold) {
      if (low < 0) low = k;
      high = k;
    }
  }
  if (low < 0) return [rateGridRatio(best), rateGridRatio(best)];
  const lower = low === 0 ? 0 : rateGridRatio(low - 1);
  const upper = high === RATE_GRID_SIZE - 1 ? Infinity : rateGridRatio(high + 1);
  return [lower, upper];
}

export function rateRatioEstimate(logLikelihood: readonly number[]): number {
  let best = 0;
  for (let k = 1; k < logLikelihood.length; k += 1)
    if ((logLikelihood[k] as number) > (logLikelihood[best] as number)) best = k;
  return rateGridRatio(best);
}

// ---------------------------------------------------------------------------------------------
// Mann-Whitney U on bucketed data (ties within a bucket), with the canary shifted by a number of
// buckets: a shift of s buckets is a multiplicative shift of 2^(s/32), so inverting the test over
// shifts gives the Hodges-Lehmann-style confidence interval of the ratio that Kayenta uses.
// ---------------------------------------------------------------------------------------------

export interface MannWhitneyResult {
  /** Standardised U of the canary (positive: canary larger), tie-corrected, normal approximation. */
  z: number;
  u: number;
}

/** `shift` (possibly fractional) is subtracted from the canary's bucket indices; fractions interpolate. */
export function mannWhitney(baseline: LogHistogram, canary: LogHistogram, shift = 0): MannWhitneyResult {
  const whole = Math.floor(shift);
  const fraction = shift - whole;
  const at = mannWhitneyIntegerShift(baseline, canary, whole);
  if (fraction === 0) return at;
  const next = mannWhitneyIntegerShift(baseline, canary, whole + 1);
  return { z: at.z + (next.z - at.z) * fraction, u: at.u + (next.u - at.u) * fraction };
}

function mannWhitneyIntegerShift(
  baseline: LogHistogram,
  canary: LogHistogram,
  shift: number,
): MannWhitneyResult {
  const nA = baseline.total;
  const nB = canary.total;
  if (nA === 0 || nB === 0) return { z: 0, u: 0 };
  let u = 0;
  let ties = 0;
  let i = 0;
  let belowA = 0;
  for (let j = 0; j < canary.indices.length; j += 1) {
    const index = (canary.indices[j] as number) - shift;
    const countB = canary.counts[j] as number;
    while (i < baseline.indices.length && (baseline.indices[i] as number) < index) {
      const countA = baseline.counts[i] as number;
      belowA += countA;
      ties += countA ** 3 - countA;
      i += 1;
    }
    let sameA = 0;
    if (i < baseline.indices.length && (baseline.indices[i] as number) === index) {
      sameA = baseline.counts[i] as number;
      i += 1;
    }
    u += countB * (belowA + 0.5 * sameA);
    const t = countB + sameA;
    ties += t ** 3 - t;
    belowA += sameA;
  }
  for (; i < baseline.indices.length; i += 1) {
    const countA = baseline.counts[i] as number;
    ties += countA ** 3 - countA;
  }
  const n = nA + nB;
  const variance = ((nA * nB) / 12) * (n + 1 - ties / (n * (n - 1)));
  if (!(variance > 0)) return { z: 0, u };
  return { z: (u - (nA * nB) / 2) / Math.sqrt(variance), u };
}

/** Mann-Whitney for 0/1 outcomes (events among trials): the tie-corrected rank test of two rates. */
export function mannWhitneyRates(
  baseline: { events: number; trials: number },
  canary: { events: number; trials: number },
): number {
  const nA = baseline.trials;
  const nB = canary.trials;
  const n = nA + nB;
  const ones = baseline.events + canary.events;
  if (nA === 0 || nB === 0 || ones === 0 || ones === n) return 0;
  const u =
    canary.events * (nA - baseline.events) +
    0.5 * (canary.events * baseline.events + (nB - canary.events) * (nA - baseline.events));
  const zeros = n - ones;
  const ties = ones ** 3 - ones + zeros ** 3 - zeros;
  const variance = ((nA * nB) / 12) * (n + 1 - ties / (n * (n - 1)));
  return (u - (nA * nB) / 2) / Math.sqrt(variance);
}

// ---------------------------------------------------------------------------------------------
// Stochastic order with a tolerance, from random pairs (a sequential sign test).
//
// Pair each canary observation Y of a tick with a baseline observation X of the same tick, at
// random (a permutation independent of the values). If the canary is at most (1 + tol) times the
// baseline in stochastic order (H0: P(Y > (1+tol)t) <= P(X > t) for all t), then for independent
// X, Y: P(Y > (1+tol)X) <= P(X' > X) <= 1/2. The indicators 1{Y > (1+tol)X} of distinct pairs are
// independent Bernoulli(q_t <= 1/2) given the past, whatever each tick's common distribution is,
// so the one-sided Bernoulli mixture above is an e-process for H0 (Ville) - it stays valid when
// latency drifts over the day in both targets alike, which a cumulative comparison does not.
// The state is counts only: the tolerance test's counts, and counts on a 2 % grid of ratios s for
// the confidence interval of the median ratio (the s with P(Y > sX) = 1/2).
// ---------------------------------------------------------------------------------------------

export const PAIR_GRID_STEP = 0.02;
export const PAIR_GRID_MIN = -25;
export const PAIR_GRID_MAX = 50;
export const PAIR_GRID_SIZE = PAIR_GRID_MAX - PAIR_GRID_MIN + 1;
/** Pairs per tick and cell at most: beyond it, a random subset (keeps the cost bounded). */
export const MAX_PAIRS_PER_TICK = 50_000;

export interface PairCounts {
  n: number;
  /** Pairs with Y > (1+tol)·X, and with Y < X/(1+tol). */
  up: number;
  down: number;
  /** above[j] = pairs with Y > s_j·X, below[j] = pairs with Y < s_j·X, s_j = e^{0.02(j + MIN)}. */
  above: number[];
  below: number[];
}

export function emptyPairCounts(): PairCounts {
  return {
    n: 0,
    up: 0,
    down: 0,
    above: new Array<number>(PAIR_GRID_SIZE).fill(0),
    below: new Array<number>(PAIR_GRID_SIZE).fill(0),
  };
}

export function pairGridRatio(position: number): number {
  return Math.exp((position + PAIR_GRID_MIN) * PAIR_GRID_STEP);
}

/** Above this many observations a side is sampled without materialising it (memory stays O(m)). */
const EXPAND_LIMIT = 1_000_000;

type Exact = { values: number[]; counts: number[] };

function totalOf(exact: Exact): number {
  let total = 0;
  for (const count of exact.counts) total += count;
  return total;
}

/** m observations drawn uniformly without replacement, in random order. */
function draw(exact: Exact, total: number, m: number, random: () => number): Float64Array {
  if (total <= EXPAND_LIMIT) {
    const out = new Float64Array(total);
    let k = 0;
    exact.values.forEach((value, i) => {
      const count = exact.counts[i] as number;
      for (let c = 0; c < count; c += 1) out[k++] = value;
    });
    shuffle(out, m, random);
    return out.subarray(0, m);
  }
  // Floyd's algorithm picks m distinct positions of the (virtual) expanded list; a shuffle then
  // gives them a random order, as the partial Fisher-Yates above does.
  const chosen = new Set<number>();
  for (let j = total - m; j < total; j += 1) {
    const t = Math.floor(random() * (j + 1));
    chosen.add(chosen.has(t) ? j : t);
  }
  const cumulative: number[] = [];
  let running = 0;
  for (const count of exact.counts) cumulative.push((running += count));
  const valueAt = (position: number): number => {
    let low = 0;
    let high = cumulative.length - 1;
    while (low < high) {
      const mid = (low + high) >> 1;
      if ((cumulative[mid] as number) > position) high = mid;
      else low = mid + 1;
    }
    return exact.values[low] as number;
  };
  const out = Float64Array.from(chosen, valueAt);
  shuffle(out, m, random);
  return out;
}

/** One tick's random pairs, counted. `random` must not depend on the values. */
export function countPairs(
  baseline: Exact,
  canary: Exact,
  tolerance: number,
  random: () => number,
): PairCounts {
  const totalX = totalOf(baseline);
  const totalY = totalOf(canary);
  const m = Math.min(totalX, totalY, MAX_PAIRS_PER_TICK);
  const counts = emptyPairCounts();
  if (m === 0) return counts;
  const xs = draw(baseline, totalX, m, random);
  const ys = draw(canary, totalY, m, random);
  const limit = 1 + tolerance;
  // Counts on the grid via difference arrays: Y > s_j X  <=>  j + MIN < log(Y/X)/step.
  const aboveUpTo = new Array<number>(PAIR_GRID_SIZE + 1).fill(0);
  const belowFrom = new Array<number>(PAIR_GRID_SIZE + 1).fill(0);
  for (let i = 0; i < m; i += 1) {
    const x = xs[i] as number;
    const y = ys[i] as number;
    if (y > limit * x) counts.up += 1;
    if (y * limit < x) counts.down += 1;
    const position =
      x > 0 ? (y > 0 ? Math.log(y / x) / PAIR_GRID_STEP - PAIR_GRID_MIN : -Infinity) : y > 0 ? Infinity : 0;
    // above: all j < position; below: all j > position.
    const lastAbove = Math.min(PAIR_GRID_SIZE - 1, Math.ceil(position) - 1);
    if (lastAbove >= 0) aboveUpTo[lastAbove] = (aboveUpTo[lastAbove] as number) + 1;
    const firstBelow = Math.max(0, Math.floor(position) + 1);
    if (firstBelow < PAIR_GRID_SIZE) belowFrom[firstBelow] = (belowFrom[firstBelow] as number) + 1;
  }
  let running = 0;
  for (let j = PAIR_GRID_SIZE - 1; j >= 0; j -= 1) {
    running += aboveUpTo[j] as number;
    counts.above[j] = running;
  }
  running = 0;
  for (let j = 0; j < PAIR_GRID_SIZE; j += 1) {
    running += belowFrom[j] as number;
    counts.below[j] = running;
  }
  counts.n = m;
  return counts;
}

function shuffle(values: Float64Array, m: number, random: () => number): void {
  for (let i = 0; i < m; i += 1) {
    const j = i + Math.floor(random() * (values.length - i));
    const swap = values[i] as number;
    values[i] = values[j] as number;
    values[j] = swap;
  }
}

export function addPairCounts(a: PairCounts, b: PairCounts): PairCounts {
  return {
    n: a.n + b.n,
    up: a.up + b.up,
    down: a.down + b.down,
    above: a.above.map((x, j) => x + (b.above[j] ?? 0)),
    below: a.below.map((x, j) => x + (b.below[j] ?? 0)),
  };
}

/**
 * Estimate of the median ratio and, when `withInterval`, its anytime-valid interval at level
 * log(1/α) per side (48 e-values per side: paid only for anomalies).
 */
export function pairRatioInterval(
  counts: PairCounts,
  logThreshold: number,
  withInterval = true,
): { low: number; high: number; estimate: number } {
  let low = 0;
  let high = Infinity;
  let estimate = 1;
  for (let j = 0; j < PAIR_GRID_SIZE; j += 1) {
    if ((counts.above[j] as number) * 2 >= counts.n) estimate = pairGridRatio(j);
    if (
      withInterval &&
      logBernoulliEvidence(counts.above[j] as number, counts.n, 0.5, 'above') >= logThreshold
    )
      low = pairGridRatio(j);
  }
  if (withInterval) {
    for (let j = PAIR_GRID_SIZE - 1; j >= 0; j -= 1) {
      if (logBernoulliEvidence(counts.below[j] as number, counts.n, 0.5, 'above') >= logThreshold)
        high = pairGridRatio(j);
    }
  }
  return { low, high, estimate };
}
