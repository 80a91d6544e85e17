/**
 * What a sink was told is going on, folded from the events it was sent for one rollout, and
 * what a new event ends. Pure, so the fold is property-tested without a database.
 *
 * Anomalies stay open until a `resolved` event or the end of the rollout; `paused` and
 * `routing_failed` until the end (the workflow emits no event on resume: stateful sinks let
 * those expire by their ttl).
 */
import { anomalyKey, type Anomaly } from '../rollout/verdict';
import type { AlertEvent } from '../rollout/types';
import type { OpenCondition } from './alert-sink';

/** The part of an earlier event the fold needs (as kept in the delivery record). */
export interface SentEvent {
  eventKind: AlertEvent['kind'];
  at: number;
  tick: number;
  summary: string;
  anomalies: Anomaly[];
}

const TERMINAL: readonly AlertEvent['kind'][] = ['promoted', 'rolled_back', 'aborted'];

function endsAnomalies(kind: AlertEvent['kind']): boolean {
  return kind === 'resolved' || TERMINAL.includes(kind);
}

function before(a: Pick<SentEvent, 'at' | 'tick'>, b: Pick<SentEvent, 'at' | 'tick'>): boolean {
  return a.at < b.at || (a.at === b.at && a.tick < b.tick);
}

/** Conditions open just before `current`, from the other events sent for the same rollout. */
export function openConditionsBefore(history: readonly SentEvent[], current: SentEvent): OpenCondition[] {
  const open = new Map<string, OpenCondition>();
  const ordered = history
    .filter((sent) => before(sent, current))
    .sort((a, b) => a.at - b.at || a.tick - b.tick);
  for (const sent of ordered) {
    if (sent.eventKind === 'anomaly') {
      for (const anomaly of sent.anomalies) {
        const key = `anomaly/${anomalyKey(anomaly)}`;
        const previous = open.get(key);
        open.set(key, { kind: 'anomaly', anomaly, since: previous?.since ?? sent.at });
      }
    } else if (sent.eventKind === 'paused' || sent.eventKind === 'routing_failed') {
      if (!open.has(sent.eventKind))
        open.set(sent.eventKind, { kind: sent.eventKind, summary: sent.summary, since: sent.at });
    } else if (TERMINAL.includes(sent.eventKind)) {
      open.clear();
    } else if (sent.eventKind === 'resolved') {
      for (const [key, condition] of open) if (condition.kind === 'anomaly') open.delete(key);
    }
  }
  return [...open.values()];
}

/** What `current` ends, and when a later event already ended what `current` reports. */
export function conditionsFor(
  history: readonly SentEvent[],
  current: SentEvent,
): { ends: OpenCondition[]; endedAt?: number } {
  const open = openConditionsBefore(history, current);
  const ends = TERMINAL.includes(current.eventKind)
    ? open
    : current.eventKind === 'resolved'
      ? open.filter((condition) => condition.kind === 'anomaly')
      : [];
  const opens =
    current.eventKind === 'anomaly' ||
    current.eventKind === 'paused' ||
    current.eventKind === 'routing_failed';
  if (!opens) return { ends };
  const ender = history
    .filter((sent) => before(current, sent))
    .filter((sent) =>
      current.eventKind === 'anomaly' ? endsAnomalies(sent.eventKind) : TERMINAL.includes(sent.eventKind),
    )
    .sort((a, b) => a.at - b.at)[0];
  return ender ? { ends, endedAt: ender.at } : { ends };
}
