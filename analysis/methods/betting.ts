/**
 * The default method: betting e-processes scoped to the traffic regime, with a change detector
 * for onsets inside a regime, a mirror test that proves health, and a severity test (the
 * statistics are in ../betting.ts; the argument in docs/analysis.md).
 *
 * Per cell (metric × action) it keeps, over a grid of log-ratios s, the weighted-CUSUM
 * log-wealth of "canary/baseline <= e^s" (`up`) and of ">= e^s" (`down`) since any start tick of
 * the current regime; a new regime starts them afresh. The anomaly test is `up` at
 * log(1 + tolerance) (`down` at its mirror for direction decrease), at α_k / M, with α_k the
 * regime's share of alpha and M the comparisons fixed before the first look. Severe: the same at
 * log(severeRatio). Health: "ratio >= 1 + tolerance" rejected since the regime began, at α
 * (every cell must prove it: an intersection-union test needs no correction).
 *
 * - distribution: winsorised log-ratios of disjoint random canary/baseline pairs of each tick,
 *   an action's against the other actions' of the same tick (a target slower as a whole for a
 *   tick cancels), and one bet per tick where nothing cancels it (the whole service, the actions'
 *   pairs pooled; a lone action; tails);
 * - rate: conditional binomial likelihood ratios per tick, mixed over the rate-ratio grid with
 *   weights from the recent ticks (the exact Poisson-multinomial reduction, regime-scoped);
 * - trend: sequential ranks of the per-tick canary/baseline level among the regime's earlier
 *   ones (growth, not level: a leak).
 */
import {
  betOnScores,
  decayRateWeights,
  freshMoments,
  gridIndexAtLeast,
  gridIndexAtMost,
  gridEstimate,
  logAddExp,
  pairLogRatios,
  randomPairs,
  tailLevelsOf,
  tailScore,
  trackLogQuantiles,
  rateTickEvidence,
  regimeShare,
  startLogWeight,
  testGrid,
  trendScore,
  betUp,
  logOf,
  betOnTickMeans,
  freshTickSpread,
  learnTickSpread,
  meanScore,
  meanAndVariance,
  relativeLogRatios,
  tickBet,
  tickScale,
  TICK_MEMORY,
  TAIL_TICK_TAU2_PRIOR,
  BET_MEMORY,
  type Moments,
  type TickSpread,
} from '../betting';
import { finiteInterval, formatP, type Check } from '../checks';
import { SERVICE_SLOT, type CellTick } from '../aggregate';
import type { MetricConfig } from '../config';
import { fnvHash32, seededRandom } from '../../core/random';
import type { Json } from '../../core/validation';
import {
  baseCheck,
  directionsOf,
  isRecord,
  numberList,
  numberOr,
  type CellContext,
  type CellResult,
  type MethodImplementation,
} from './method';

export const bettingMethod: MethodImplementation = {
  evaluateCell(context, state, data) {
    if (context.metric.kind === 'trend') return trendCell(context, state, data);
    return gridCell(context, state, data, false);
  },
};

/**
 * `betting-robust`: the same tests with evidence a target slower or faster as a whole for a tick
 * cannot move: an action against the other actions of its tick, and one bet per tick where
 * nothing cancels such an effect (the whole service from the actions' pairs pooled, a lone
 * action, tails). Valid under that dependence; slower to find what it finds (docs/analysis.md).
 */
export const robustBettingMethod: MethodImplementation = {
  evaluateCell(context, state, data) {
    if (context.metric.kind === 'trend') return trendCell(context, state, data);
    return gridCell(context, state, data, true);
  },
  // The whole service is compared on the actions' pairs pooled, one bet per tick: the check a
  // per-action comparison against the other actions cannot make (all of them slower alike).
  poolsActions: (metric) => metric.kind === 'distribution',
};

/** How many recent per-tick sample counts a cell keeps, to say what an onset's evidence rests on. */
const TICKS_KEPT = 200;
/** Fewer events than this in a regime and a rate's ratio cannot be bounded: no proof is asked of it. */
export const MIN_EVENTS_FOR_PROOF = 20;
/** Trend scores lie in [-1, 1] like the others; one a tick, so bets may go further. */
const TREND_LAMBDA_MAX = 0.8;
/** Earlier readings a trend cell ranks against. */
const READINGS_KEPT = 200;

interface GridState {
  /** Segment index and its first tick; the regime the health wealths belong to. */
  k: number;
  j0: number;
  rk: number;
  up: number[];
  dn: number[];
  /** CUSUM at the anomaly points (up at +s0, down at -s0) and its start: where the onset was. */
  cu: number;
  cd: number;
  fu: number;
  fd: number;
  /** Health wealth since the regime began: down at +s0 ("ratio >= 1 + tol" rejected), up at -s0. */
  hd: number;
  hu: number;
  /** Events (both targets) in this regime, for rates: too few and there is no ratio to bound. */
  ev: number;
  /** Plain wealths since the dated onset, both ways over the grid: the interval is read from them. */
  su: number[];
  sd: number[];
  /** Bets' moments (distributions) or the alternatives' decayed log-weights (rates). */
  m1: number[];
  m2: number[];
  n: number;
  /** The unit the moments were learnt in: pairs (against the other actions) or ticks. */
  unit: EvidenceUnit;
  /** The spread of a tick's mean score, for bets whose unit is the tick. */
  spread: TickSpread;
  /** [tick, baseline, canary] samples per tick of this segment. */
  ticks: [number, number, number][];
  /** The tail test of latency-like distributions (absent for the others). */
  tail?: TailState;
}

interface TailState {
  /** Tracked log-quantiles of the baseline (the thresholds) and of the canary (for the effect). */
  q: number[];
  c: number[];
  /** Shiryaev-Roberts log-wealth over starts, its CUSUM and the CUSUM's start (the onset). */
  w: number;
  u: number;
  f: number;
  /** Bets' recency-weighted moments of the ticks' clipped mean scores, and how many were seen. */
  m1: number;
  m2: number;
  n: number;
  spread: TickSpread;
}

type EvidenceUnit = 'pair' | 'tick';

/** Log-wealths to 1e-3 and bet moments to 1e-4: finer than any decision needs, and half the state. */
function round(values: number[], scale = 1e3): number[] {
  return values.map((value) => Math.round(value * scale) / scale);
}

function restore(
  context: CellContext,
  state: Json | undefined,
  grid: readonly number[],
): { cell: GridState; fresh: boolean } {
  const previous = isRecord(state) ? state : {};
  const sameGrid = numberList(previous.up).length === grid.length;
  const m1 = numberList(previous.m1);
  const m2 = numberList(previous.m2);
  // Rates keep the alternatives' weights over the rate grid in m1; distributions one moment per point.
  const kept = context.metric.kind === 'rate' || (m1.length === grid.length && m2.length === grid.length);
  const moments = sameGrid && kept ? { m1, m2, n: numberOr(previous.n, 0) } : null;
  const base = moments ?? { ...freshMoments(grid.length) };
  const { segment } = context.regime;
  if (
    !sameGrid ||
    numberOr(previous.k, -1) !== segment.index ||
    numberOr(previous.j0, -1) !== segment.sinceTick
  ) {
    // A new segment: the evidence starts afresh; what the bets learnt is kept (it is predictable).
    return {
      cell: {
        k: segment.index,
        j0: segment.sinceTick,
        rk: context.regime.index,
        up: new Array<number>(grid.length).fill(-Infinity),
        dn: new Array<number>(grid.length).fill(-Infinity),
        cu: -Infinity,
        cd: -Infinity,
        fu: context.tick,
        fd: context.tick,
        hd: 0,
        hu: 0,
        ev: 0,
        su: new Array<number>(grid.length).fill(0),
        sd: new Array<number>(grid.length).fill(0),
        m1: base.m1,
        m2: base.m2,
        n: base.n,
        unit: unitOf(previous.u),
        spread: spreadOf(previous.ts),
        ticks: [],
        ...tailOf(context, previous.t, false),
      },
      fresh: true,
    };
  }
  const ticks = Array.isArray(previous.ticks)
    ? previous.ticks.filter(
        (entry): entry is [number, number, number] =>
          Array.isArray(entry) && entry.length === 3 && entry.every((x) => typeof x === 'number'),
      )
    : [];
  const fromJson = (list: number[]) => list.map((value) => (value <= -1e300 ? -Infinity : value));
  // A new regime within the segment (a raise): health must be proven again at the new share.
  const sameRegime = numberOr(previous.rk, -1) === context.regime.index;
  return {
    cell: {
      k: segment.index,
      j0: segment.sinceTick,
      rk: context.regime.index,
      up: fromJson(numberList(previous.up)),
      dn: fromJson(numberList(previous.dn)),
      cu: numberOr(previous.cu, -Infinity),
      cd: numberOr(previous.cd, -Infinity),
      fu: numberOr(previous.fu, context.tick),
      fd: numberOr(previous.fd, context.tick),
      hd: sameRegime ? numberOr(previous.hd, 0) : 0,
      hu: sameRegime ? numberOr(previous.hu, 0) : 0,
      ev: sameRegime ? numberOr(previous.ev, 0) : 0,
      su: sized(numberList(previous.su), grid.length),
      sd: sized(numberList(previous.sd), grid.length),
      m1: base.m1,
      m2: base.m2,
      n: base.n,
      unit: unitOf(previous.u),
      spread: spreadOf(previous.ts),
      ticks,
      ...tailOf(context, previous.t, true),
    },
    fresh: false,
  };
}

/**
 * The tail test's state: what the thresholds and the bets learnt is kept across segments (it is
 * predictable), the wealth only within one.
 */
function tailOf(context: CellContext, state: Json | undefined, sameSegment: boolean): { tail?: TailState } {
  const levels = tailLevelsOf(context.metric);
  if (levels.length === 0) return {};
  const previous = isRecord(state) ? state : {};
  const sized = (list: number[]) => (list.length === levels.length ? list : []);
  const q = sized(numberList(previous.q));
  return {
    tail: {
      q,
      c: q.length > 0 ? sized(numberList(previous.c)) : [],
      w: sameSegment ? numberOr(previous.w, -Infinity) : -Infinity,
      u: sameSegment ? numberOr(previous.u, -Infinity) : -Infinity,
      f: sameSegment ? numberOr(previous.f, context.tick) : context.tick,
      m1: numberOr(previous.m1, 0),
      m2: numberOr(previous.m2, TAIL_PRIOR_M2),
      n: numberOr(previous.n, 0),
      spread: spreadOf(previous.ts, { variance: TAIL_PRIOR_M2, tau2: TAIL_TICK_TAU2_PRIOR }),
    },
  };
}

function unitOf(value: Json | undefined): EvidenceUnit {
  return value === 't' ? 'tick' : 'pair';
}

function spreadOf(value: Json | undefined, prior?: { variance: number; tau2: number }): TickSpread {
  const fresh = freshTickSpread(prior?.variance, prior?.tau2);
  const [v, mu, t2, n] = numberList(value);
  return v === undefined || mu === undefined || t2 === undefined || n === undefined
    ? fresh
    : { v, mu, t2, n };
}

function spreadToJson(spread: TickSpread): Json {
  return [...round([spread.v, spread.mu, spread.t2], 1e6), spread.n];
}

function sized(list: number[], length: number): number[] {
  return list.length === length ? list : new Array<number>(length).fill(0);
}

function toJson(cell: GridState): Json {
  const finite = (list: number[]) => round(list.map((value) => (Number.isFinite(value) ? value : -1e300)));
  return {
    k: cell.k,
    j0: cell.j0,
    rk: cell.rk,
    up: finite(cell.up),
    dn: finite(cell.dn),
    cu: Number.isFinite(cell.cu) ? Math.round(cell.cu * 1e5) / 1e5 : null,
    cd: Number.isFinite(cell.cd) ? Math.round(cell.cd * 1e5) / 1e5 : null,
    fu: cell.fu,
    fd: cell.fd,
    hd: Math.round(cell.hd * 1e5) / 1e5,
    hu: Math.round(cell.hu * 1e5) / 1e5,
    ev: cell.ev,
    su: round(cell.su),
    sd: round(cell.sd),
    m1: round(cell.m1, 1e4),
    m2: round(cell.m2, 1e4),
    n: cell.n,
    ...(cell.unit === 'tick' ? { u: 't', ts: spreadToJson(cell.spread) } : {}),
    ticks: cell.ticks.slice(-TICKS_KEPT),
    ...(cell.tail ? { t: tailToJson(cell.tail) } : {}),
  };
}

function tailToJson(tail: TailState): Json {
  const rounded = (value: number, scale = 1e3) =>
    Number.isFinite(value) ? Math.round(value * scale) / scale : null;
  return {
    q: round(tail.q, 1e4),
    c: round(tail.c, 1e4),
    w: rounded(tail.w),
    u: rounded(tail.u),
    f: tail.f,
    m1: rounded(tail.m1, 1e4),
    m2: rounded(tail.m2, 1e4),
    n: tail.n,
    ...(tail.spread.n > 0 ? { ts: spreadToJson(tail.spread) } : {}),
  };
}

/**
 * Opens this tick as a possible start of the change, at every grid point: the weighted
 * Shiryaev-Roberts sum gains the start's weight (the CUSUM maximum only says where it began).
 */
function openTick(cell: GridState, tick: number): void {
  const w = startLogWeight(tick - cell.j0 + 1);
  cell.up = cell.up.map((value) => logAddExp(value, w));
  cell.dn = cell.dn.map((value) => logAddExp(value, w));
}

function gridCell(
  context: CellContext,
  state: Json | undefined,
  data: CellTick | undefined,
  robust: boolean,
): CellResult {
  const { metric } = context;
  const grid = testGrid(metric.tolerance, metric.severeRatio);
  const { cell } = restore(context, state, grid);
  const tolerance = Math.log(1 + metric.tolerance);
  const upAt = gridIndexAtLeast(grid, tolerance);
  const downAt = gridIndexAtMost(grid, -tolerance);
  const pairs = metric.kind === 'rate' ? null : pairEvidence(context, data, robust);
  // The pooled whole-service cell (betting-robust) has no tails of its own to track.
  const pooled = robust && context.action === undefined && !data && actionSlotsOf(context).length > 0;
  if (pooled) delete cell.tail;
  if (metric.kind === 'rate' ? data : pairs) {
    const w = startLogWeight(context.tick - cell.j0 + 1);
    const restart = (metric.direction === 'decrease' ? cell.cd : cell.cu) < w;
    if (w > cell.cu) [cell.cu, cell.fu] = [w, context.tick];
    if (w > cell.cd) [cell.cd, cell.fd] = [w, context.tick];
    if (restart) {
      cell.su = cell.su.map(() => 0);
      cell.sd = cell.sd.map(() => 0);
    }
    const before = { up: cell.up[upAt] as number, down: cell.dn[downAt] as number };
    openTick(cell, context.tick);
    const counted =
      pairs === null
        ? addRateTick(cell, grid, data as CellTick, upAt, downAt)
        : addPairsTick(context, cell, grid, pairs, upAt, downAt);
    // This tick's log e-values at the anomaly points, for the CUSUM that dates the onset.
    cell.cu += (cell.up[upAt] as number) - logAddExp(before.up, w);
    cell.cd += (cell.dn[downAt] as number) - logAddExp(before.down, w);
    cell.ticks.push([context.tick, counted.baseline, counted.canary]);
  }
  const checks = [gridCheck(context, cell, grid, upAt, downAt, pooled)];
  if (cell.tail) checks.push(tailCheck(context, cell, cell.tail));
  return { state: toJson(cell), checks };
}

type Pairs = { xs: number[]; ys: number[]; n: number };

/** What a tick gives a distribution cell: log-ratios to bet on, their unit, and its own pairs (tails). */
interface PairEvidence {
  ratios: number[];
  unit: EvidenceUnit;
  own: Pairs | null;
  /** Tails bet per pair (`betting`) or once per tick (`betting-robust`). */
  tailUnit: EvidenceUnit;
}

/** A slot's random pairs and their log-ratios, drawn once per tick whichever cell asks. */
const slotPairsCache = new WeakMap<CellTick, { pairs: Pairs; ratios: number[] }>();

function slotPairs(context: CellContext, slot: string, data: CellTick): { pairs: Pairs; ratios: number[] } {
  const cached = slotPairsCache.get(data);
  if (cached) return cached;
  const random = seededRandom(fnvHash32(`${context.tick}|${context.metric.name}|${slot}`));
  const pairs = randomPairs(data.baseline.exact, data.canary.exact, random);
  const result = { pairs, ratios: pairLogRatios(pairs) };
  slotPairsCache.set(data, result);
  return result;
}

/** The other action slots of this tick, in a fixed order. */
function actionSlotsOf(context: CellContext, except?: string): [string, CellTick][] {
  return [...(context.tickCells ?? new Map<string, CellTick>())]
    .filter(([slot]) => slot !== SERVICE_SLOT && slot !== except)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * An action against the other actions of the tick (quadruples, per pair); an action alone, or the
 * whole service (its own samples or the actions' pooled), one bet per tick.
 */
function pairEvidence(
  context: CellContext,
  data: CellTick | undefined,
  robust: boolean,
): PairEvidence | null {
  const { action } = context;
  if (data) {
    const own = slotPairs(context, action ?? SERVICE_SLOT, data);
    if (!robust) return { ratios: own.ratios, unit: 'pair', own: own.pairs, tailUnit: 'pair' };
    const peers = action === undefined ? [] : actionSlotsOf(context, action);
    if (peers.length === 0) return { ratios: own.ratios, unit: 'tick', own: own.pairs, tailUnit: 'tick' };
    const peerRatios = peers.flatMap(([slot, cell]) => slotPairs(context, slot, cell).ratios);
    const random = seededRandom(fnvHash32(`${context.tick}|${context.metric.name}|${action}|peers`));
    const ratios = relativeLogRatios(own.ratios, peerRatios, random);
    return ratios.length > 0
      ? { ratios, unit: 'pair', own: own.pairs, tailUnit: 'tick' }
      : { ratios: own.ratios, unit: 'tick', own: own.pairs, tailUnit: 'tick' };
  }
  if (action !== undefined || !robust) return null;
  const pooled = actionSlotsOf(context).flatMap(([slot, cell]) => slotPairs(context, slot, cell).ratios);
  return pooled.length > 0 ? { ratios: pooled, unit: 'tick', own: null, tailUnit: 'tick' } : null;
}

function addPairsTick(
  context: CellContext,
  cell: GridState,
  grid: readonly number[],
  evidence: PairEvidence,
  upAt: number,
  downAt: number,
): { baseline: number; canary: number } {
  const { ratios } = evidence;
  if (cell.tail && evidence.own) betOnTail(context, cell, cell.tail, evidence.own, evidence.tailUnit);
  if (cell.unit !== evidence.unit) {
    // Moments of pair scores and of tick means are different things: a change of unit relearns.
    const fresh = freshMoments(grid.length);
    [cell.m1, cell.m2, cell.n, cell.unit] = [fresh.m1, fresh.m2, 0, evidence.unit];
  }
  const moments: Moments = { m1: cell.m1, m2: cell.m2, n: cell.n };
  const health = [
    { index: upAt, side: 'down' as const, logWealth: cell.hd },
    { index: downAt, side: 'up' as const, logWealth: cell.hu },
  ];
  const wealths = [
    { up: cell.up, down: cell.dn },
    { up: cell.su, down: cell.sd },
  ];
  if (evidence.unit === 'pair') betOnScores(grid, ratios, moments, wealths, health);
  else {
    betOnTickMeans(grid, ratios, tickScale(cell.spread, ratios.length), moments, wealths, health);
    const at = meanScore(ratios, grid[upAt] as number);
    learnTickSpread(cell.spread, at.mean, at.variance, ratios.length);
  }
  cell.n = moments.n;
  cell.hd = health[0]?.logWealth ?? cell.hd;
  cell.hu = health[1]?.logWealth ?? cell.hu;
  return { baseline: ratios.length, canary: ratios.length };
}

function addRateTick(
  cell: GridState,
  grid: readonly number[],
  data: CellTick,
  upAt: number,
  downAt: number,
): { baseline: number; canary: number } {
  // For rates m1 holds the alternatives' decayed log-weights over the rate grid.
  const weights = cell.n > 0 ? cell.m1 : [];
  const evidence = rateTickEvidence(grid, weights, data.baseline, data.canary);
  for (let k = 0; k < grid.length; k += 1) {
    cell.up[k] = (cell.up[k] as number) + (evidence.up[k] as number);
    cell.dn[k] = (cell.dn[k] as number) + (evidence.down[k] as number);
    cell.su[k] = (cell.su[k] as number) + (evidence.up[k] as number);
    cell.sd[k] = (cell.sd[k] as number) + (evidence.down[k] as number);
  }
  cell.hd += evidence.down[upAt] as number;
  cell.hu += evidence.up[downAt] as number;
  cell.ev += data.baseline.events + data.canary.events;
  cell.m1 = decayRateWeights(weights, data.baseline, data.canary);
  cell.m2 = [];
  cell.n += 1;
  return { baseline: data.baseline.trials, canary: data.canary.trials };
}

/** The direction with the strongest evidence and its p-value: scale · e^{-log wealth}, capped at 1. */
function strongestSide(
  metric: MetricConfig,
  scale: number,
  logWealthOf: (direction: 'increase' | 'decrease') => number,
): { pFire: number; side: 'increase' | 'decrease' } {
  let best = {
    pFire: 1,
    side: metric.direction === 'decrease' ? ('decrease' as const) : ('increase' as const),
  };
  for (const side of directionsOf(metric)) {
    const logWealth = logWealthOf(side);
    const pFire = Number.isFinite(logWealth) ? Math.min(1, scale * Math.exp(-logWealth)) : 1;
    if (pFire < best.pFire) best = { pFire, side };
  }
  return best;
}

function samplesSince(cell: GridState, fromTick: number): { baseline: number; canary: number } {
  let baseline = 0;
  let canary = 0;
  for (const [tick, b, c] of cell.ticks)
    if (tick >= fromTick) {
      baseline += b;
      canary += c;
    }
  return { baseline, canary };
}

function gridCheck(
  context: CellContext,
  cell: GridState,
  grid: readonly number[],
  upAt: number,
  downAt: number,
  pooled: boolean,
): Check {
  const { metric, config, comparisons, regime } = context;
  const sides = directionsOf(metric);
  const share = regimeShare(regime.segment.index);
  const scale = (sides.length * comparisons) / share;
  const logThreshold = Math.log(scale / config.alpha);
  const severeUp = gridIndexAtLeast(grid, Math.log(metric.severeRatio));
  const severeDown = gridIndexAtMost(grid, -Math.log(metric.severeRatio));
  const { pFire, side } = strongestSide(metric, scale, (direction) =>
    direction === 'increase' ? (cell.up[upAt] as number) : (cell.dn[downAt] as number),
  );
  const regimeSamples = samplesSince(cell, Math.max(cell.j0, regime.sinceTick));
  const segmentSamples = samplesSince(cell, cell.j0);
  const enough = Math.min(segmentSamples.baseline, segmentSamples.canary) >= metric.minSamples;
  const anomalous = pFire <= config.alpha;
  const status = anomalous ? 'anomalous' : enough ? 'ok' : 'insufficient';
  const fromTick = side === 'increase' ? cell.fu : cell.fd;
  const evidenceSamples = samplesSince(cell, fromTick);
  // Since the dated onset, at the threshold plus the price of having picked that start.
  const onset = metric.direction === 'decrease' ? cell.fd : cell.fu;
  const { low, high, estimate } = gridEstimate(
    grid,
    { up: cell.su, down: cell.sd },
    logThreshold - startLogWeight(onset - cell.j0 + 1),
  );
  const severe =
    anomalous &&
    (side === 'increase'
      ? (cell.up[severeUp] as number) >= logThreshold
      : (cell.dn[severeDown] as number) >= logThreshold);
  const healthLog = Math.log(1 / config.alpha);
  const healthProven =
    regimeSamples.canary > 0 &&
    sides.every((direction) => (direction === 'increase' ? cell.hd : cell.hu) >= healthLog);
  // Without events there is no ratio to bound: such a rate takes no part in the proof.
  // The actions pooled bet once per tick: on targets whose ticks differ by 10-30 % that proves
  // "within tolerance" only after a dozen ticks or more, longer than a recovery waits. The actions'
  // own comparisons carry the proof; the pooled check's anomalies still count.
  const provable =
    !pooled && regimeSamples.canary > 0 && (metric.kind !== 'rate' || cell.ev >= MIN_EVENTS_FOR_PROOF);
  const window = {
    fromTick: anomalous ? fromTick : Math.max(cell.j0, regime.sinceTick),
    toTick: context.tick,
  };
  const what =
    metric.kind === 'rate'
      ? 'rate-ratio e-detector'
      : cell.unit === 'pair'
        ? `winsorised log-ratio e-detector against the other actions of each tick, ${evidenceSamples.canary} pairs`
        : `winsorised log-ratio e-detector, one bet per tick, ${evidenceSamples.canary} pairs`;
  return {
    ...baseCheck(context, anomalous ? evidenceSamples : regimeSamples, window),
    status,
    pFire,
    effect: Math.exp(estimate) - 1,
    interval: finiteInterval(Math.exp(low) - 1, Math.exp(high) - 1),
    statistic: `e-detector p=${formatP(pFire)} (${what}; evidence since tick ${cell.j0}, regime ${regime.index})`,
    ...(anomalous ? { severe } : {}),
    ...(provable ? { healthProven: healthProven && !anomalous } : {}),
    evidence: {
      regime: regime.index,
      fromTick: window.fromTick,
      samples: anomalous ? evidenceSamples : regimeSamples,
    },
  };
}

// ----------------------------------------------------------------------------- tail

/** The tail scores are sparse (mostly 0): a smaller prior second moment lets the bets grow sooner. */
const TAIL_PRIOR_M2 = 0.1;
const TAIL_PRIOR_WEIGHT = 5;

/**
 * Bets on this tick's pairs at the thresholds tracked before it, then moves the thresholds.
 * The start of the change is opened like the location's (weighted Shiryaev-Roberts, CUSUM date).
 */
function betOnTail(
  context: CellContext,
  cell: GridState,
  tail: TailState,
  pairs: { xs: number[]; ys: number[]; n: number },
  unit: EvidenceUnit,
): void {
  const levels = tailLevelsOf(context.metric);
  if (tail.q.length === levels.length && pairs.n > 0) {
    const w = startLogWeight(context.tick - cell.j0 + 1);
    tail.w = logAddExp(tail.w, w);
    if (w > tail.u) [tail.u, tail.f] = [w, context.tick];
    const logTolerance = Math.log(1 + context.metric.tolerance);
    if (unit === 'pair') {
      for (let i = 0; i < pairs.n; i += 1) {
        const d = tailScore(logOf(pairs.xs[i] as number), logOf(pairs.ys[i] as number), tail.q, logTolerance);
        const gain = Math.log1p(betUp(tail.m1, tail.m2) * d);
        tail.w += gain;
        tail.u += gain;
        const beta = 1 / Math.min(BET_MEMORY, tail.n + 1 + TAIL_PRIOR_WEIGHT);
        tail.m1 += beta * (d - tail.m1);
        tail.m2 += beta * (d * d - tail.m2);
        tail.n += 1;
      }
    } else betOnTailTick(tail, pairs, logTolerance);
  }
  tail.c = trackLogQuantiles(tail.q.length === levels.length ? tail.c : [], levels, pairs.ys);
  tail.q = trackLogQuantiles(tail.q, levels, pairs.xs);
}

/**
 * One bet per tick on the tail's mean score: a target slower as a whole for a tick moves every
 * exceedance of that tick together, so the tick is the unit.
 */
function betOnTailTick(tail: TailState, pairs: Pairs, logTolerance: number): void {
  const { mean, variance } = meanAndVariance(pairs.n, (i) =>
    tailScore(logOf(pairs.xs[i] as number), logOf(pairs.ys[i] as number), tail.q, logTolerance),
  );
  const x = Math.max(-1, Math.min(1, mean / tickScale(tail.spread, pairs.n)));
  const gain = Math.log1p(tickBet(tail.m1, tail.m2) * x);
  tail.w += gain;
  tail.u += gain;
  const beta = 1 / Math.min(TICK_MEMORY, tail.n + 2);
  tail.m1 += beta * (x - tail.m1);
  tail.m2 += beta * (x * x - tail.m2);
  tail.n += 1;
  learnTickSpread(tail.spread, mean, variance, pairs.n);
}

function tailCheck(context: CellContext, cell: GridState, tail: TailState): Check {
  const { metric, config, comparisons, regime } = context;
  const scale = comparisons / regimeShare(regime.segment.index);
  const pFire = Number.isFinite(tail.w) ? Math.min(1, scale * Math.exp(-tail.w)) : 1;
  const anomalous = pFire <= config.alpha;
  const levels = tailLevelsOf(metric);
  // The level where the canary's tracked quantile is furthest above the baseline's names the tail.
  let at = levels.length - 1;
  for (let k = 0; k < levels.length; k += 1)
    if ((tail.c[k] ?? 0) - (tail.q[k] ?? 0) > (tail.c[at] ?? 0) - (tail.q[at] ?? 0)) at = k;
  const effect = tail.q.length > 0 ? Math.exp((tail.c[at] ?? 0) - (tail.q[at] ?? 0)) - 1 : 0;
  const regimeSamples = samplesSince(cell, Math.max(cell.j0, regime.sinceTick));
  const evidenceSamples = samplesSince(cell, tail.f);
  const segmentSamples = samplesSince(cell, cell.j0);
  const enough = Math.min(segmentSamples.baseline, segmentSamples.canary) >= metric.minSamples;
  const window = {
    fromTick: anomalous ? tail.f : Math.max(cell.j0, regime.sinceTick),
    toTick: context.tick,
  };
  const samples = anomalous ? evidenceSamples : regimeSamples;
  return {
    ...baseCheck(context, samples, window),
    quantile: levels[at],
    status: anomalous ? 'anomalous' : enough ? 'ok' : 'insufficient',
    pFire,
    // The tracked quantiles are a point reading of recent ticks; the evidence, since the onset,
    // says "more than +tolerance": an anomaly reports no less, so its effect is inside its interval.
    effect: Number.isFinite(effect) ? (anomalous ? Math.max(effect, metric.tolerance) : effect) : 0,
    // Rejected: "the canary's tail is at most (1 + tolerance) times the baseline's"; no upper bound.
    interval: anomalous ? finiteInterval(metric.tolerance, Infinity) : [0, 0],
    statistic: `e-detector p=${formatP(pFire)} (tail exceedances of the baseline's p${levels.map((p) => Math.round(p * 1000) / 10).join('/p')}, ${evidenceSamples.canary} pairs; evidence since tick ${cell.j0}, regime ${regime.index})`,
    ...(anomalous ? { severe: false } : {}),
    evidence: { regime: regime.index, fromTick: window.fromTick, samples },
  };
}

// ----------------------------------------------------------------------------- trend

interface TrendState {
  k: number;
  j0: number;
  /** CUSUM log-wealth of growth and of shrinking. */
  up: number;
  dn: number;
  fu: number;
  fd: number;
  /** Earlier per-tick log-ratios of canary to baseline level in this regime. */
  r: number[];
  m1: number;
  m2: number;
  n: number;
}

function trendCell(context: CellContext, state: Json | undefined, data: CellTick | undefined): CellResult {
  const { metric, config, comparisons, regime, tick } = context;
  const previous = isRecord(state) ? state : {};
  const same =
    numberOr(previous.k, -1) === regime.segment.index &&
    numberOr(previous.j0, -1) === regime.segment.sinceTick;
  const cell: TrendState = {
    k: regime.segment.index,
    j0: regime.segment.sinceTick,
    up: same ? numberOr(previous.up, -Infinity) : -Infinity,
    dn: same ? numberOr(previous.dn, -Infinity) : -Infinity,
    fu: same ? numberOr(previous.fu, tick) : tick,
    fd: same ? numberOr(previous.fd, tick) : tick,
    r: same ? numberList(previous.r) : [],
    m1: numberOr(previous.m1, 0),
    m2: numberOr(previous.m2, 0.3),
    n: numberOr(previous.n, 0),
  };
  const level = (target: CellTick['baseline']) => (target.trials > 0 ? target.sum / target.trials : NaN);
  const reading = data
    ? Math.log(Math.max(level(data.canary), 1e-9) / Math.max(level(data.baseline), 1e-9))
    : NaN;
  if (Number.isFinite(reading)) {
    const w = startLogWeight(tick - cell.j0 + 1);
    if (w > cell.up) cell.fu = tick;
    if (w > cell.dn) cell.fd = tick;
    cell.up = Math.max(cell.up, w);
    cell.dn = Math.max(cell.dn, w);
    const random = seededRandom(fnvHash32(`${tick}|${metric.name}|${context.action ?? '*'}|trend`));
    const shift = Math.log(1 + metric.tolerance);
    const growth = trendScore(cell.r, reading, shift, random);
    const shrink = trendScore(
      cell.r.map((r) => -r),
      -reading,
      shift,
      random,
    );
    if (cell.r.length > 0) {
      // One reading per tick: bet harder than on pairs, or a leak takes a day to show.
      const bet = (mean: number) => Math.min(TREND_LAMBDA_MAX, betUp(mean, cell.m2) * 2);
      cell.up += Math.log1p(bet(cell.m1) * growth);
      cell.dn += Math.log1p(bet(-cell.m1) * shrink);
      const beta = 1 / Math.min(10, cell.n + 2);
      cell.m1 += beta * (growth - cell.m1);
      cell.m2 += beta * (growth * growth - cell.m2);
      cell.n += 1;
    }
    cell.r = [...cell.r, Math.round(reading * 1e6) / 1e6].slice(-READINGS_KEPT);
  }
  const sides = directionsOf(metric);
  const scale = (sides.length * comparisons) / regimeShare(regime.segment.index);
  const { pFire, side } = strongestSide(metric, scale, (direction) =>
    direction === 'increase' ? cell.up : cell.dn,
  );
  const anomalous = pFire <= config.alpha;
  const readings = cell.r.length;
  const first = cell.r[0] ?? 0;
  const last = cell.r.at(-1) ?? 0;
  const growth = Math.exp(last - first) - 1;
  const fromTick = side === 'increase' ? cell.fu : cell.fd;
  const window = { fromTick: anomalous ? fromTick : cell.j0, toTick: tick };
  return {
    state: {
      k: cell.k,
      j0: cell.j0,
      up: Number.isFinite(cell.up) ? Math.round(cell.up * 1e5) / 1e5 : null,
      dn: Number.isFinite(cell.dn) ? Math.round(cell.dn * 1e5) / 1e5 : null,
      fu: cell.fu,
      fd: cell.fd,
      r: cell.r,
      m1: Math.round(cell.m1 * 1e5) / 1e5,
      m2: Math.round(cell.m2 * 1e5) / 1e5,
      n: cell.n,
    },
    checks: [
      {
        ...baseCheck(context, { baseline: readings, canary: readings }, window),
        status: anomalous ? 'anomalous' : readings >= metric.minSamples ? 'ok' : 'insufficient',
        pFire,
        effect: growth,
        // Growth of the canary relative to the baseline over the regime; no bound is claimed beyond it.
        interval: finiteInterval(Math.min(0, growth), Math.max(0, growth)),
        statistic: `e-detector p=${formatP(pFire)} (trend of canary/baseline over ${readings} readings since tick ${cell.j0}, regime ${regime.index})`,
        ...(anomalous ? { severe: false } : {}),
        evidence: {
          regime: regime.index,
          fromTick: window.fromTick,
          samples: { baseline: readings, canary: readings },
        },
      },
    ],
  };
}
