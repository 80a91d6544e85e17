/**
 * Exemplars for an investigation: when a verdict blames an action, the slowest and the failed
 * probe requests of that action on the blamed target, from the last few probe windows the
 * evidence covers, and one `canary loadgen` line that plays those profiles against baseline
 * and canary again. Read from `probe_results`, where the prober keeps them (loadgen/exemplars.ts).
 */
import type { Db } from 'mongodb';
import type { AnomalyExemplars, RequestExemplar } from '../rollout/exemplars';
import type { Anomaly, Verdict } from '../rollout/verdict';
import { mergeExemplars } from '../loadgen/exemplars';
import { PROFILE_ID_LIST } from '../loadgen/profile-sessions';
import type { ProbeReplay } from '../loadgen/prober';
import { PROBE_RESULTS_COLLECTION, type ProbeResultDocument } from './probe-results';

/** Probe windows searched per anomaly, the latest ones: enough to see it, few enough to read fast. */
export const EXEMPLAR_TICKS = 3;
/** Profiles named in one reproduction line. */
const REPRODUCED_PROFILES = 10;

/** The port the analyze activity calls when a verdict is anomalous. */
export interface ExemplarFinder {
  /** The verdict with exemplars on every anomaly that names an action and has some. */
  attach(rolloutId: string, tick: number, verdict: Verdict): Promise<Verdict>;
}

export class ProbeExemplars implements ExemplarFinder {
  constructor(private readonly db: Db) {}

  async attach(rolloutId: string, tick: number, verdict: Verdict): Promise<Verdict> {
    const blamed = verdict.anomalies.filter((anomaly) => anomaly.action !== undefined);
    if (blamed.length === 0) return verdict;
    const from = Math.min(...blamed.map((anomaly) => firstTickOf(anomaly, tick)));
    const windows = await this.db
      .collection<ProbeResultDocument>(PROBE_RESULTS_COLLECTION)
      .find({ rolloutId, tick: { $gte: from, $lte: tick } })
      .toArray();
    return {
      ...verdict,
      anomalies: verdict.anomalies.map((anomaly) => {
        const exemplars = anomaly.action === undefined ? undefined : exemplarsOf(anomaly, tick, windows);
        return exemplars ? { ...anomaly, exemplars } : anomaly;
      }),
    };
  }
}

/** The latest windows of those the evidence rests on (its regime or onset, else its window). */
function firstTickOf(anomaly: Anomaly, tick: number): number {
  const from = anomaly.evidence?.fromTick ?? anomaly.window?.fromTick ?? tick;
  return Math.max(from, tick - EXEMPLAR_TICKS + 1);
}

export function exemplarsOf(
  anomaly: Anomaly,
  tick: number,
  windows: readonly ProbeResultDocument[],
): AnomalyExemplars | undefined {
  const fromTick = firstTickOf(anomaly, tick);
  const target = anomaly.target ?? 'canary';
  const covered = windows.filter((window) => window.tick >= fromTick && window.tick <= tick);
  const kept = mergeExemplars(
    covered.flatMap((window) =>
      window.stats
        .filter((stats) => stats.action === anomaly.action && stats.target === target)
        .map((stats) => stats.exemplars),
    ),
  );
  if (!kept || (kept.slowest.length === 0 && kept.failed.length === 0)) return undefined;
  const replay = [...covered].sort((a, b) => b.tick - a.tick).find((window) => window.replay)?.replay;
  const reproduce = replay && reproductionLine(replay, [...kept.failed, ...kept.slowest]);
  return { ...kept, fromTick, toTick: tick, ...(reproduce ? { reproduce } : {}) };
}

/**
 * `canary loadgen` playing the exemplars' profiles against both targets as the probe did (same
 * seed, think-time scale and window length; one virtual user per profile). Undefined when no
 * profile id can be named on a command line.
 */
export function reproductionLine(
  replay: ProbeReplay,
  requests: readonly RequestExemplar[],
): string | undefined {
  const profiles = [...new Set(requests.map((request) => request.profileId))]
    .filter((id) => PROFILE_ID_LIST.test(id))
    .slice(0, REPRODUCED_PROFILES);
  if (profiles.length === 0) return undefined;
  const words = [
    'canary',
    'loadgen',
    '--profiles',
    profiles.join(','),
    '--baseline',
    withoutUserInfo(replay.targets.baseline),
    '--canary',
    withoutUserInfo(replay.targets.canary),
    '--duration',
    `${Math.max(1, Math.round(replay.durationMs))}ms`,
    '--concurrency',
    String(profiles.length),
    '--time-scale',
    String(replay.timeScale),
    '--seed',
    String(replay.seed),
  ];
  return words.map(shellWord).join(' ');
}

function withoutUserInfo(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#]*@/, '$1');
}

/** A word as a POSIX shell reads it back: bare when safe, else single-quoted. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=,@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
