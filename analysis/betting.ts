/**
 * The statistics of the `betting` method: e-values from betting on bounded scores, scoped to a
 * traffic regime, with a change detector over start times. Pure: no I/O, no state format.
 *
 * - Scores keep magnitude: for a distribution, disjoint random canary/baseline pairs of the same
 *   tick give the winsorised log-ratio D(s) = clip(log Y - log X - s, -c, c) / c in [-1, 1].
 *   If the canary is at most e^s times slower in stochastic order, E[D(s)] <= 0 (log Y - s is
 *   dominated by an independent copy of log X, the difference of two copies is symmetric, and
 *   clipping is monotone). Drift and spikes that hit both targets in a tick cancel in the pair;
 *   a target slower as a whole for a tick does not, hence the two units below ("the tick as the unit").
 * - Bets are predictable (aGRAPA, Waudby-Smith & Ramdas 2024): λ = m1 / m2 from recency-weighted
 *   moments of the scores seen before, clipped to [0, LAMBDA_MAX]; the wealth Π (1 + λ D) is a
 *   test supermartingale under the null whatever the bets were, for every start time at once.
 * - Change detection (Shin, Ramdas & Rinaldo 2024): a weighted CUSUM over start times,
 *   L_t = max(L_{t-1}, log w_j) + log e_t, is the largest weighted wealth over all starts j of the
 *   regime; with Σ w_j = 1 (w_1 = 1/2 for the regime's first tick) Ville's inequality and a union
 *   bound over starts keep P(L ever >= log(1/α)) <= α.
 * - Regimes: regime k spends α_k = α · 6 / (π² k²); Σ_k α_k = α.
 */
import { rateGridRatio, RATE_GRID_SIZE } from './stats';
import type { RandomStream } from '../core/random';
import type { MetricConfig } from './config';

/** Winsorisation of log-ratios: e^1 ≈ 2.7x either way counts as much as any larger change. */
export const CLIP = 1;
export const LAMBDA_MAX = 0.5;
/** Recency of the bets' moment estimates, in scores (about a tick or two at realistic volumes). */
export const BET_MEMORY = 60;
const PRIOR_M2 = 0.3;
const PRIOR_WEIGHT = 5;
/** The grid of log-ratios the interval is read from: 5 % steps up to 4x either way. */
export const GRID_STEP = Math.log(1.05);
export const GRID_SPAN = Math.log(4);

/** Share of alpha regime k may spend: 6 / (π² k²), summing to 1 over k >= 1. */
export function regimeShare(index: number): number {
  const k = Math.max(1, Math.floor(index));
  return 6 / (Math.PI * Math.PI * k * k);
}

/** log w_j of start j (1-based tick within the regime): 1/2 for the first, 1/(j(j+1)) after; Σ = 1. */
export function startLogWeight(j: number): number {
  const k = Math.max(1, Math.floor(j));
  return k === 1 ? -Math.LN2 : -Math.log(k) - Math.log(k + 1);
}

/**
 * Log-ratios (the metric's test scale) of the grid: 5 % steps plus the exact boundaries the
 * decisions are taken at (±log(1 + tolerance), ±log(severe ratio)), sorted.
 */
export function testGrid(tolerance: number, severeRatio: number): number[] {
  const points = new Set<number>();
  const steps = Math.ceil(GRID_SPAN / GRID_STEP);
  for (let k = -steps; k <= steps; k += 1) points.add(Math.round(k * GRID_STEP * 1e9) / 1e9);
  for (const s of [Math.log(1 + tolerance), Math.log(severeRatio)]) {
    points.add(s);
    points.add(-s);
  }
  return [...points].sort((a, b) => a - b);
}

/** Index of the smallest grid point >= s (conservative for an upper test), or the last one. */
export function gridIndexAtLeast(grid: readonly number[], s: number): number {
  const at = grid.findIndex((point) => point >= s - 1e-12);
  return at < 0 ? grid.length - 1 : at;
}

/** Index of the largest grid point <= s (conservative for a lower test), or the first one. */
export function gridIndexAtMost(grid: readonly number[], s: number): number {
  for (let k = grid.length - 1; k >= 0; k -= 1) if ((grid[k] as number) <= s + 1e-12) return k;
  return 0;
}

function expand(exact: { values: number[]; counts: number[] }, limit: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < exact.values.length && out.length < limit; i += 1) {
    const count = Math.min(exact.counts[i] as number, limit - out.length);
    for (let n = 0; n < count; n += 1) out.push(exact.values[i] as number);
  }
  return out;
}

function shuffle(values: number[], random: RandomStream): void {
  for (let i = values.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    const swap = values[i] as number;
    values[i] = values[j] as number;
    values[j] = swap;
  }
}

/** At most this many pairs per cell and tick: beyond, the bets have long converged. */
export const MAX_PAIRS = 20_000;
const FLOOR = 1e-6;

/**
 * This tick's observations of both targets in a seeded random order (sorted before the shuffle,
 * so the order does not depend on how the samples arrived): the first `n` of each are disjoint
 * random canary/baseline pairs.
 */
export function randomPairs(
  baseline: { values: number[]; counts: number[] },
  canary: { values: number[]; counts: number[] },
  random: RandomStream,
): { xs: number[]; ys: number[]; n: number } {
  const xs = expand(baseline, MAX_PAIRS * 4).sort((a, b) => a - b);
  const ys = expand(canary, MAX_PAIRS * 4).sort((a, b) => a - b);
  shuffle(xs, random);
  shuffle(ys, random);
  return { xs, ys, n: Math.min(xs.length, ys.length, MAX_PAIRS) };
}

export function logOf(value: number): number {
  return Math.log(Math.max(value, FLOOR));
}

/** log(canary / baseline) of the pairs. */
export function pairLogRatios(pairs: { xs: number[]; ys: number[]; n: number }): number[] {
  const out = new Array<number>(pairs.n);
  for (let i = 0; i < pairs.n; i += 1) out[i] = logOf(pairs.ys[i] as number) - logOf(pairs.xs[i] as number);
  return out;
}

export function score(logRatio: number, s: number): number {
  return Math.max(-CLIP, Math.min(CLIP, logRatio - s)) / CLIP;
}

/** Per grid point: recency-weighted first and second moments of the scores, for the bets. */
export interface Moments {
  m1: number[];
  m2: number[];
  /** Scores seen so far (the weights saturate at BET_MEMORY). */
  n: number;
}

export function freshMoments(size: number): Moments {
  return { m1: new Array<number>(size).fill(0), m2: new Array<number>(size).fill(PRIOR_M2), n: 0 };
}

export const LAMBDA_MIN = 0.1;
export function betUp(m1: number, m2: number): number {
  return m2 > 0 ? Math.min(LAMBDA_MAX, Math.max(LAMBDA_MIN, m1 / m2)) : LAMBDA_MIN;
}

/** The CUSUM log-wealths of one cell over the grid: `up` tests "ratio <= e^s", `down` "ratio >= e^s". */
export interface GridWealth {
  up: number[];
  down: number[];
}

/**
 * Feeds pair log-ratios into the grid's wealths (CUSUM or plain, the caller opened the start)
 * and the moments; `extra` are further wealths (since the regime began) at chosen grid points.
 * Bets use only scores before the current one.
 */
export function betOnScores(
  grid: readonly number[],
  logRatios: readonly number[],
  moments: Moments,
  wealths: GridWealth[],
  extra: { index: number; side: 'up' | 'down'; logWealth: number }[],
): void {
  for (const r of logRatios) {
    const beta = 1 / Math.min(BET_MEMORY, moments.n + 1 + PRIOR_WEIGHT);
    for (let k = 0; k < grid.length; k += 1)
      betAt(k, score(r, grid[k] as number), beta, betUp, moments, wealths, extra);
    moments.n += 1;
  }
}

/**
 * One bet each way at grid point k on the score d in [-1, 1], with the bet sizes `bet` gives
 * from the moments learnt before it; then the moments learn d.
 */
function betAt(
  k: number,
  d: number,
  beta: number,
  bet: (m1: number, m2: number) => number,
  moments: Moments,
  wealths: GridWealth[],
  extra: { index: number; side: 'up' | 'down'; logWealth: number }[],
): void {
  const a = moments.m1[k] as number;
  const b = moments.m2[k] as number;
  const up = Math.log1p(bet(a, b) * d);
  const down = Math.log1p(-bet(-a, b) * d);
  for (const wealth of wealths) {
    wealth.up[k] = (wealth.up[k] as number) + up;
    wealth.down[k] = (wealth.down[k] as number) + down;
  }
  for (const item of extra) if (item.index === k) item.logWealth += item.side === 'up' ? up : down;
  moments.m1[k] = a + beta * (d - a);
  moments.m2[k] = b + beta * (d * d - b);
}

/**
 * Confidence bounds of the log-ratio at `logThreshold`: the largest s whose "ratio <= e^s" is
 * rejected and the smallest whose "ratio >= e^s" is, or ±Infinity when none is.
 */
export function gridInterval(
  grid: readonly number[],
  wealth: GridWealth,
  logThreshold: number,
): [number, number] {
  let low = -Infinity;
  let high = Infinity;
  for (let k = 0; k < grid.length; k += 1) {
    if ((wealth.up[k] as number) >= logThreshold) low = Math.max(low, grid[k] as number);
    if ((wealth.down[k] as number) >= logThreshold) high = Math.min(high, grid[k] as number);
  }
  return [low, high];
}

/**
 * The interval of `gridInterval` with a point estimate read from the same wealths: where the
 * evidence for "larger" and for "smaller" balance (su - sd crosses zero), kept inside the
 * interval, so an anomaly's effect and its interval always describe the same data. Bounds that
 * cross (adaptive bets on data that moved) are reported as their hull.
 */
export function gridEstimate(
  grid: readonly number[],
  wealth: GridWealth,
  logThreshold: number,
): { low: number; high: number; estimate: number } {
  const [a, b] = gridInterval(grid, wealth, logThreshold);
  const [low, high] = a <= b ? [a, b] : [b, a];
  const balance = (k: number) => (wealth.up[k] as number) - (wealth.down[k] as number);
  let estimate = balance(0) < 0 ? (grid[0] as number) : (grid[grid.length - 1] as number);
  for (let k = 1; k < grid.length; k += 1) {
    const before = balance(k - 1);
    const after = balance(k);
    if (before >= 0 && after < 0) {
      const from = grid[k - 1] as number;
      estimate = from + ((grid[k] as number) - from) * (before / (before - after));
      break;
    }
  }
  return { low, high, estimate: Math.min(high, Math.max(low, estimate)) };
}

// ----------------------------------------------------------------------------- the tick as the unit
// Requests of one tick are not independent: a target's process is slower or faster as a whole
// for a tick (its CPU share, its GC, a noisy neighbour), and per-pair bets would compound that
// one offset over every pair. Two ways out, both valid whatever the size of such effects:
// - an action against the other actions of the same tick (difference in differences): a
//   per-target effect that hits every action alike cancels in each quadruple, so the quadruples
//   of a tick are independent again and per-quadruple bets stay valid (betOnScores);
// - one bet per tick on the tick's mean score, for comparisons nothing cancels in (the whole
//   service, a lone action, tails). With exchangeable per-target effects the tick's mean score is
//   symmetric about a centre <= 0 under the null, so clip(mean / c) has mean <= 0 for any c fixed
//   before the tick; c is a predictable multiple of the mean's spread (within and between ticks).

/** Per-tick bets go further than per-pair ones: a tick is one observation in [-1, 1]. */
export const TICK_LAMBDA_MAX = 0.9;
/** The clip scale in spreads of the tick's mean score: larger changes count as a full tick. */
export const TICK_SCALE_WIDTH = 2;
/** Prior between-tick spread of a mean score (5 % per-target effects), and its floor. */
const TICK_TAU2_PRIOR = 0.05 ** 2;
/** The same for tail scores: a 5 % shift moves a p90-p98 exceedance rate by about 1-2 points. */
export const TAIL_TICK_TAU2_PRIOR = 0.02 ** 2;
const TICK_TAU2_FLOOR = 0.01 ** 2;
/** Ticks the spread estimates remember. */
export const TICK_MEMORY = 10;

/** What the per-tick bets learnt of the spread of a tick's mean score, from earlier ticks. */
export interface TickSpread {
  /** Per-pair variance of the scores, the mean of the tick means and the between-tick variance. */
  v: number;
  mu: number;
  t2: number;
  n: number;
}

export function freshTickSpread(priorVariance = PRIOR_M2, priorTau2 = TICK_TAU2_PRIOR): TickSpread {
  return { v: priorVariance, mu: 0, t2: priorTau2, n: 0 };
}

/** The clip scale for a tick of `pairs` pairs: predictable, it uses only earlier ticks and the count. */
export function tickScale(spread: TickSpread, pairs: number): number {
  return TICK_SCALE_WIDTH * Math.sqrt(spread.v / Math.max(1, pairs) + Math.max(spread.t2, TICK_TAU2_FLOOR));
}

/** Folds a tick's mean score (and the per-pair variance it came with) into the spread estimates. */
export function learnTickSpread(spread: TickSpread, mean: number, variance: number, pairs: number): void {
  const beta = 1 / Math.min(TICK_MEMORY, spread.n + 2);
  const withinTick = spread.v / Math.max(1, pairs);
  const deviation = mean - spread.mu;
  spread.t2 += beta * (Math.max(0, deviation * deviation - withinTick) - spread.t2);
  spread.mu += beta * deviation;
  spread.v += beta * (variance - spread.v);
  spread.n += 1;
}

/** Mean and per-pair variance of the scores of `logRatios` at log-ratio s. */
export function meanScore(logRatios: readonly number[], s: number): { mean: number; variance: number } {
  return meanAndVariance(logRatios.length, (i) => score(logRatios[i] as number, s));
}

/** Mean and (population) variance of `count` scores, the i-th from `scoreAt(i)`. */
export function meanAndVariance(
  count: number,
  scoreAt: (i: number) => number,
): { mean: number; variance: number } {
  if (count === 0) return { mean: 0, variance: 0 };
  let sum = 0;
  let squares = 0;
  for (let i = 0; i < count; i += 1) {
    const d = scoreAt(i);
    sum += d;
    squares += d * d;
  }
  const mean = sum / count;
  return { mean, variance: Math.max(0, squares / count - mean * mean) };
}

/**
 * One bet per grid point on this tick's mean score, clipped at `scale` to [-1, 1]: the tick is the
 * unit. Bets use moments of earlier ticks' clipped means; `extra` as in betOnScores.
 */
export function betOnTickMeans(
  grid: readonly number[],
  logRatios: readonly number[],
  scale: number,
  moments: Moments,
  wealths: GridWealth[],
  extra: { index: number; side: 'up' | 'down'; logWealth: number }[],
): void {
  if (logRatios.length === 0) return;
  const beta = 1 / Math.min(TICK_MEMORY, moments.n + 2);
  for (let k = 0; k < grid.length; k += 1) {
    const x = Math.max(-1, Math.min(1, meanScore(logRatios, grid[k] as number).mean / scale));
    betAt(k, x, beta, tickBet, moments, wealths, extra);
  }
  moments.n += 1;
}

export function tickBet(m1: number, m2: number): number {
  return m2 > 0 ? Math.min(TICK_LAMBDA_MAX, Math.max(LAMBDA_MIN, m1 / m2)) : LAMBDA_MIN;
}

/**
 * Difference in differences: each of the action's pair log-ratios minus the mean of its own group
 * of `group` log-ratios of the other actions' pairs (disjoint groups, in a random order), so a
 * per-target effect common to the actions of the tick cancels. As many as both sides allow.
 */
export function relativeLogRatios(
  own: readonly number[],
  peers: readonly number[],
  random: RandomStream,
): number[] {
  if (own.length === 0 || peers.length === 0) return [];
  const shuffled = [...peers];
  shuffle(shuffled, random);
  // Several peer pairs per quadruple shrink the reference's variance; at most 8 (little gain after).
  const group = Math.max(1, Math.min(8, Math.floor(shuffled.length / own.length)));
  const count = Math.min(own.length, Math.floor(shuffled.length / group));
  const out = new Array<number>(count);
  for (let i = 0; i < count; i += 1) {
    let sum = 0;
    for (let j = 0; j < group; j += 1) sum += shuffled[i * group + j] as number;
    out[i] = (own[i] as number) - sum / group;
  }
  return out;
}

// ----------------------------------------------------------------------------- counts (rates)
// Conditional on the events of a tick, the canary's share of them is binomial with
// θ(ρ) = ρ n_c / (ρ n_c + n_b) (Lindon & Malek 2022). The likelihood ratio of ρ' > ρ0 against ρ0
// increases with the canary's events, so its expectation is <= 1 for every ρ <= ρ0: a per-tick
// e-value for "ratio <= ρ0". Mixing alternatives with predictable weights keeps it one.

/** Log-likelihood of one tick's counts at ratio ρ (up to a constant). */
export function rateLogLikelihood(
  ratio: number,
  baseline: { events: number; trials: number },
  canary: { events: number; trials: number },
): number {
  const theta = (ratio * canary.trials) / (ratio * canary.trials + baseline.trials);
  const c = canary.events === 0 ? 0 : canary.events * Math.log(theta);
  const b = baseline.events === 0 ? 0 : baseline.events * Math.log(1 - theta);
  return c + b;
}

/** How fast the alternatives' weights forget older ticks (per tick), so late onsets get weight. */
export const RATE_MEMORY = 0.8;

/**
 * One tick's log e-values at every grid point, both ways, from the predictive mixture over the
 * rate grid's alternatives weighted by `logWeights` (decayed log-likelihood of earlier ticks).
 */
export function rateTickEvidence(
  grid: readonly number[],
  logWeights: readonly number[],
  baseline: { events: number; trials: number },
  canary: { events: number; trials: number },
): { up: number[]; down: number[] } {
  const up = new Array<number>(grid.length).fill(0);
  const down = new Array<number>(grid.length).fill(0);
  if (baseline.events + canary.events === 0 || baseline.trials === 0 || canary.trials === 0)
    return { up, down };
  // Prefix and suffix log-sums over the (sorted) alternatives: "above s" is a suffix, "below" a prefix.
  const size = RATE_GRID_SIZE;
  const logRatios = new Array<number>(size);
  const joint = new Array<number>(size);
  const weights = new Array<number>(size);
  for (let g = 0; g < size; g += 1) {
    const ratio = rateGridRatio(g);
    logRatios[g] = Math.log(ratio);
    weights[g] = logWeights[g] ?? 0;
    joint[g] = (weights[g] as number) + rateLogLikelihood(ratio, baseline, canary);
  }
  const prefix = (values: number[]) => {
    const out = new Array<number>(size + 1).fill(-Infinity);
    for (let g = 0; g < size; g += 1) out[g + 1] = logAddExp(out[g] as number, values[g] as number);
    return out;
  };
  const suffix = (values: number[]) => {
    const out = new Array<number>(size + 1).fill(-Infinity);
    for (let g = size - 1; g >= 0; g -= 1) out[g] = logAddExp(out[g + 1] as number, values[g] as number);
    return out;
  };
  const jointBelow = prefix(joint);
  const weightBelow = prefix(weights);
  const jointAbove = suffix(joint);
  const weightAbove = suffix(weights);
  for (let k = 0; k < grid.length; k += 1) {
    const s = grid[k] as number;
    const base = rateLogLikelihood(Math.exp(s), baseline, canary);
    // First alternative strictly above s, and the count strictly below.
    let above = 0;
    while (above < size && (logRatios[above] as number) <= s + 1e-12) above += 1;
    let below = above;
    while (below > 0 && (logRatios[below - 1] as number) >= s - 1e-12) below -= 1;
    if (above < size) up[k] = (jointAbove[above] as number) - (weightAbove[above] as number) - base;
    if (below > 0) down[k] = (jointBelow[below] as number) - (weightBelow[below] as number) - base;
  }
  return { up, down };
}

export function logAddExp(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const max = Math.max(a, b);
  return max + Math.log1p(Math.exp(-Math.abs(a - b)));
}

/** The alternatives' weights after a tick: older evidence decays, this tick's is added. */
export function decayRateWeights(
  logWeights: readonly number[],
  baseline: { events: number; trials: number },
  canary: { events: number; trials: number },
): number[] {
  const next: number[] = [];
  for (let g = 0; g < RATE_GRID_SIZE; g += 1) {
    const kept = (logWeights[g] ?? 0) * RATE_MEMORY;
    next.push(
      baseline.trials > 0 && canary.trials > 0
        ? kept + rateLogLikelihood(rateGridRatio(g), baseline, canary)
        : kept,
    );
  }
  const max = Math.max(...next);
  return next.map((value) => value - max);
}

// ----------------------------------------------------------------------------- trends (leaks)
// A leak is growth, not a level. Sequential ranks of the canary/baseline log-ratio among the
// regime's earlier readings are independent and uniform when the readings are exchangeable (no
// trend); counting only earlier readings lower by more than the tolerance makes the score
// smaller, so betting on high ranks is a test supermartingale for "no growth beyond tolerance".

/**
 * Score in [-1, 1] of the newest reading against the earlier ones: 2U - 1, U the (randomised,
 * tolerance-shifted) placement. A constant offset scores 0 on average, steady growth towards 1.
 */
export function trendScore(
  earlier: readonly number[],
  value: number,
  shift: number,
  random: RandomStream,
): number {
  if (earlier.length === 0) return 0;
  let below = 0;
  let ties = 0;
  for (const r of earlier) {
    if (r < value - shift) below += 1;
    else if (r === value - shift) ties += 1;
  }
  const placement = (below + random() * (ties + 1)) / (earlier.length + 1);
  return 2 * placement - 1;
}

// ----------------------------------------------------------------------------- tails
// A slow tail (a few percent of requests much slower) barely moves a location. For a threshold
// q fixed before the tick, if the canary is at most (1 + tol) times slower in stochastic order
// then P(Y > (1 + tol) q) <= P(X > q): the score 1{Y > (1 + tol) q} - 1{X > q} of a random pair
// has mean <= 0, and so has its average over several thresholds. The thresholds are the
// baseline's high quantiles tracked over earlier ticks (predictable), so betting on the score is
// a test supermartingale like the location's; drift and spikes of the tick hit both sides.

/**
 * Baseline quantiles the tail test compares at, for distributions where larger is worse
 * (latency-like): high enough for a slow tail to stand out, low enough to be tracked from a few
 * ticks of tens of samples (a p99 is not). None for the others.
 */
export const TAIL_LEVELS = [0.9, 0.95, 0.98];
export function tailLevelsOf(metric: MetricConfig): number[] {
  return metric.kind === 'distribution' && metric.direction !== 'decrease' ? TAIL_LEVELS : [];
}

/** Score in [-1, 1] of one pair: canary exceedances of (1 + tol) q minus baseline's of q, averaged. */
export function tailScore(
  logBaseline: number,
  logCanary: number,
  logThresholds: readonly number[],
  logTolerance: number,
): number {
  let sum = 0;
  for (const q of logThresholds) sum += (logCanary - logTolerance > q ? 1 : 0) - (logBaseline > q ? 1 : 0);
  return logThresholds.length > 0 ? sum / logThresholds.length : 0;
}

/** Empirical p-quantile (linear interpolation) of sorted values. */
export function sortedQuantile(sorted: readonly number[], p: number): number {
  const h = (sorted.length - 1) * p;
  const low = Math.floor(h);
  const a = sorted[low] as number;
  const b = sorted[Math.min(low + 1, sorted.length - 1)] as number;
  return a + (h - low) * (b - a);
}

/** Samples the tracked quantiles remember: a few ticks at realistic volumes, so a drift is followed. */
export const TAIL_MEMORY = 200;

/**
 * The tracked log-quantiles after a tick's values: the first tick sets them, later ones move
 * them towards the tick's empirical quantiles in proportion to the tick's samples.
 */
export function trackLogQuantiles(
  tracked: readonly number[],
  levels: readonly number[],
  values: readonly number[],
): number[] {
  if (values.length === 0) return [...tracked];
  const sorted = values.map(logOf).sort((a, b) => a - b);
  const weight = tracked.length === levels.length ? values.length / (values.length + TAIL_MEMORY) : 1;
  return levels.map((p, k) => {
    const before = tracked[k] ?? 0;
    return before + weight * (sortedQuantile(sorted, p) - before);
  });
}
