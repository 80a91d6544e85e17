/**
 * The rollout's Prober port on the traffic generator. One probe window plays the sampled profiles
 * against baseline and canary in pairs and writes one `probe_results` document per
 * (rolloutId, tick), the analysis engine's input:
 *
 *   { rolloutId, tick, startedAt, endedAt, stats: ActionStats[] }  (+ sessions, unfinished, shards)
 *
 * Retries are safe and sensible: a retry of a window that was written returns the written result;
 * a retry of a window that failed half-way plays only the remaining time and adds it to what the
 * failed attempt had checkpointed; the upsert key makes a rewrite overwrite, never duplicate.
 *
 * Fan-out: with `shard: { index, count }` each activity plays its share of the same seeded
 * workload and stores it in `probe_shards`; the activity that completes the set writes the exact
 * merge to `probe_results` (every finisher checks, so one of them always sees all shards).
 */
import type { Collection, Db } from 'mongodb';
import type { RolloutSpec } from '../rollout/spec';
import type { ProbeSummary } from '../rollout/types';
import { FieldReader, type Json } from '../core/validation';
import type { Logger } from '../platform/logger';
import {
  expiresAfterDays,
  storedNow,
  type CollectionIndexes,
  type StoredAt,
} from '../platform/mongo-indexes';
import { TargetAllowlist } from './allowlist';
import { DEFAULT_LIMITS, resolveLoadOptions, type LoadLimits } from './options';
import { defaultOntology, profilesById, sessionsFromProfiles, type Ontology } from './profile-sessions';
import { playPlan, type LoadSnapshot, type SessionCounts } from './run-load';
import { mergeStats, totalsByTarget, type ActionStats } from './stats';

/** One probe activity's input: the sampled profiles played against both targets. */
export interface ProbeRequest {
  rolloutId: string;
  tick: number;
  targets: RolloutSpec['targets'];
  profileIds: string[];
  durationMs: number;
  concurrency: number;
  seed: number;
  /** Multiplies the profiles' recorded think times; absent = 1 (real time). */
  timeScale?: number;
  /** This activity's part of a fanned-out probe; absent = the whole probe. */
  shard?: { index: number; count: number };
}

/** The port the probe activity calls. */
export interface Prober {
  /** Must stop within a second of `signal` aborting; `progress` is sent as the activity heartbeat. */
  probe(request: ProbeRequest, progress: (details: Json) => void, signal: AbortSignal): Promise<ProbeSummary>;
}

export const PROBE_RESULTS_COLLECTION = 'probe_results';
export const PROBE_SHARDS_COLLECTION = 'probe_shards';
export const PROBE_CHECKPOINTS_COLLECTION = 'probe_checkpoints';

/**
 * Probe windows are per-tick measurements: they expire after the retention. The dashboard and
 * the probe-results source read a rollout's windows by tick; a fanned-out probe finds its shards
 * the same way; checkpoints are read by _id and expire too (an abandoned probe leaves one).
 */
export function probeIndexes(retentionDays: number): CollectionIndexes[] {
  const byTick = { name: 'rolloutId_1_tick_1', key: { rolloutId: 1, tick: 1 } } as const;
  return [
    {
      collection: PROBE_RESULTS_COLLECTION,
      indexes: [{ ...byTick, unique: true }, expiresAfterDays(retentionDays)],
    },
    { collection: PROBE_SHARDS_COLLECTION, indexes: [byTick, expiresAfterDays(retentionDays)] },
    { collection: PROBE_CHECKPOINTS_COLLECTION, indexes: [expiresAfterDays(retentionDays)] },
  ];
}

export interface ProbeShard {
  index: number;
  count: number;
}

export interface ProbeResultDocument {
  _id?: string;
  rolloutId: string;
  tick: number;
  startedAt: number;
  endedAt: number;
  stats: ActionStats[];
  // Additions to the contract:
  sessions: SessionCounts;
  unfinished: number;
  /** How many shards (probe activities) the window was played by. */
  shards: number;
  durationMs: number;
  /** How the window was played, so a person can play its profiles again (investigations). */
  replay?: ProbeReplay;
  /** When it was last written (the TTL index's field); absent before it is written. */
  storedAt?: Date;
}

export interface ProbeReplay {
  targets: { baseline: string; canary: string };
  /** The whole window's, not the part a resumed attempt played. */
  durationMs: number;
  concurrency: number;
  seed: number;
  timeScale: number;
}

interface ShardDocument extends ProbeResultDocument {
  shard: number;
}

interface CheckpointDocument extends StoredAt {
  _id: string;
  rolloutId: string;
  tick: number;
  startedAt: number;
  /** Workload time already played by earlier attempts, ms. */
  playedMs: number;
  stats: ActionStats[];
  sessions: SessionCounts;
  unfinished: number;
  attempts: number;
  updatedAt: number;
}

export interface LoadgenProberOptions {
  db: Db;
  ontology?: Ontology;
  allowlist?: TargetAllowlist;
  limits?: LoadLimits;
  logger?: Logger;
  /** Engine threads per probe (default: the engine's own choice). */
  threads?: number;
  /** Multiplies the profiles' recorded think times (default 1: real time). */
  timeScale?: number;
  snapshotIntervalMs?: number;
  requestTimeoutMs?: number;
}

/** Windows shorter than this are not worth resuming: the retry counts the window as played. */
const MIN_RESUME_MS = 1000;

const addSessions = (a: SessionCounts, b: SessionCounts): SessionCounts => ({
  started: a.started + b.started,
  completed: a.completed + b.completed,
  dropped: a.dropped + b.dropped,
});

export function probeSummaryOf(
  document: Pick<ProbeResultDocument, 'startedAt' | 'endedAt' | 'stats'>,
): ProbeSummary {
  const totals = totalsByTarget(document.stats);
  return {
    startedAt: document.startedAt,
    endedAt: document.endedAt,
    requests: { baseline: totals.baseline?.requests ?? 0, canary: totals.canary?.requests ?? 0 },
    errors: { baseline: totals.baseline?.errors ?? 0, canary: totals.canary?.errors ?? 0 },
  };
}

/** Exact merge of the documents of one window's shards (or of several windows, for reports). */
export function mergeProbeResults(documents: readonly ProbeResultDocument[]): ProbeResultDocument {
  const first = documents[0];
  if (!first) throw new Error('mergeProbeResults needs at least one document');
  return {
    rolloutId: first.rolloutId,
    tick: first.tick,
    startedAt: Math.min(...documents.map((document) => document.startedAt)),
    endedAt: Math.max(...documents.map((document) => document.endedAt)),
    stats: mergeStats(documents.map((document) => document.stats)),
    sessions: documents.reduce((sum, document) => addSessions(sum, document.sessions), {
      started: 0,
      completed: 0,
      dropped: 0,
    }),
    unfinished: documents.reduce((sum, document) => sum + document.unfinished, 0),
    shards: documents.reduce((sum, document) => sum + document.shards, 0),
    durationMs: Math.max(...documents.map((document) => document.durationMs)),
    ...(first.replay ? { replay: first.replay } : {}),
  };
}

export const probeResultId = (rolloutId: string, tick: number) => `${rolloutId}#${tick}`;

export class LoadgenProber implements Prober {
  private readonly results: Collection<ProbeResultDocument>;
  private readonly shards: Collection<ShardDocument>;
  private readonly checkpoints: Collection<CheckpointDocument>;
  private readonly allowlist: TargetAllowlist;

  constructor(private readonly options: LoadgenProberOptions) {
    this.results = options.db.collection<ProbeResultDocument>(PROBE_RESULTS_COLLECTION);
    this.shards = options.db.collection<ShardDocument>(PROBE_SHARDS_COLLECTION);
    this.checkpoints = options.db.collection<CheckpointDocument>(PROBE_CHECKPOINTS_COLLECTION);
    this.allowlist = options.allowlist ?? new TargetAllowlist();
  }

  async probe(
    request: ProbeRequest,
    progress: (details: Json) => void,
    signal: AbortSignal,
  ): Promise<ProbeSummary> {
    const shard = checkRequest(request);
    const resultId = probeResultId(request.rolloutId, request.tick);
    const shardId = `${resultId}#${shard.index}/${shard.count}`;
    const log = this.options.logger?.child({
      rolloutId: request.rolloutId,
      tick: request.tick,
      shard: shardId,
    });

    // A retry after the result was written: the window has been played.
    if (shard.count === 1) {
      const written = await this.results.findOne({ _id: resultId });
      if (written && written.shards === 1) return probeSummaryOf(written);
    } else {
      const written = await this.shards.findOne({ _id: shardId });
      if (written) {
        await this.mergeShardsIfComplete(request, shard.count);
        return probeSummaryOf(written);
      }
    }

    const checkpointId = shardId;
    const checkpoint = await this.checkpoints.findOne({ _id: checkpointId });
    const playedMs = checkpoint?.playedMs ?? 0;
    const remainingMs = request.durationMs - playedMs;
    const previous = {
      stats: checkpoint?.stats ?? [],
      sessions: checkpoint?.sessions ?? { started: 0, completed: 0, dropped: 0 },
      unfinished: checkpoint?.unfinished ?? 0,
    };
    if (checkpoint) log?.info({ playedMs, remainingMs }, 'resuming a probe window after a failed attempt');

    let stats = previous.stats;
    let sessions = previous.sessions;
    let unfinished = previous.unfinished;
    let startedAt = checkpoint?.startedAt ?? Date.now();
    let played = playedMs;

    // A first attempt always plays its window, however short; a resumed one skips a remainder
    // too short to say anything.
    if (!checkpoint || remainingMs >= MIN_RESUME_MS) {
      progress({ phase: 'starting', playedMs, durationMs: request.durationMs });
      const profiles = await profilesById(this.options.db, request.profileIds, 'profileIds');
      const plan = await resolveLoadOptions(
        {
          runId: shard.count === 1 ? resultId : shardId,
          sessions: sessionsFromProfiles(profiles, this.options.ontology ?? defaultOntology(), 'profileIds'),
          targets: [
            { name: 'baseline', url: request.targets.baseline.url },
            { name: 'canary', url: request.targets.canary.url },
          ],
          durationMs: remainingMs,
          concurrency: request.concurrency,
          seed: request.seed >>> 0,
          shard,
          timeScale: request.timeScale ?? this.options.timeScale ?? 1,
          ...(this.options.threads ? { threads: this.options.threads } : {}),
          ...(this.options.requestTimeoutMs ? { timeoutMs: this.options.requestTimeoutMs } : {}),
          // Every snapshot is a heartbeat, and a heartbeat is how a cancellation arrives.
          snapshotIntervalMs: this.options.snapshotIntervalMs ?? 1000,
        },
        {
          limits: this.options.limits ?? DEFAULT_LIMITS,
          allowlist: this.allowlist,
          names: {
            targets: 'targets',
            durationMs: 'durationMs',
            concurrency: 'concurrency',
            sessions: 'profileIds',
          },
        },
      );

      let checkpointWrite: Promise<unknown> = Promise.resolve();
      const saveCheckpoint = (snapshot: LoadSnapshot) => {
        const document: CheckpointDocument = {
          _id: checkpointId,
          rolloutId: request.rolloutId,
          tick: request.tick,
          startedAt: checkpoint?.startedAt ?? snapshot.startedAt,
          playedMs: playedMs + snapshot.elapsedMs,
          stats: mergeStats([previous.stats, snapshot.totals]),
          sessions: addSessions(previous.sessions, snapshot.sessions),
          unfinished: previous.unfinished + snapshot.unfinished,
          attempts: (checkpoint?.attempts ?? 0) + 1,
          updatedAt: Date.now(),
          ...storedNow(),
        };
        // Writes are chained so an older snapshot never overwrites a newer one.
        checkpointWrite = checkpointWrite
          .then(() => this.checkpoints.replaceOne({ _id: checkpointId }, document, { upsert: true }))
          .catch((error: unknown) => log?.warn({ err: error }, 'could not checkpoint the probe'));
      };

      const result = await playPlan(
        plan,
        (snapshot) => {
          const totals = totalsByTarget(snapshot.totals);
          progress({
            runId: snapshot.runId,
            seq: snapshot.seq,
            elapsedMs: playedMs + snapshot.elapsedMs,
            durationMs: request.durationMs,
            requests: { baseline: totals.baseline?.requests ?? 0, canary: totals.canary?.requests ?? 0 },
            errors: { baseline: totals.baseline?.errors ?? 0, canary: totals.canary?.errors ?? 0 },
            sessions: { ...snapshot.sessions },
          });
          saveCheckpoint(snapshot);
        },
        signal,
      );
      await checkpointWrite;
      if (result.status === 'cancelled') {
        log?.info({ elapsedMs: result.elapsedMs }, 'probe cancelled');
        throw signal.reason instanceof Error ? signal.reason : new Error('probe cancelled');
      }
      stats = mergeStats([previous.stats, result.stats]);
      sessions = addSessions(previous.sessions, result.sessions);
      unfinished = previous.unfinished + result.unfinished;
      startedAt = checkpoint?.startedAt ?? result.startedAt;
      played = playedMs + result.elapsedMs;
    }

    const document: ProbeResultDocument = {
      rolloutId: request.rolloutId,
      tick: request.tick,
      startedAt,
      endedAt: Date.now(),
      stats,
      sessions,
      unfinished,
      shards: 1,
      durationMs: played,
      replay: {
        targets: { baseline: request.targets.baseline.url, canary: request.targets.canary.url },
        durationMs: request.durationMs,
        concurrency: request.concurrency,
        seed: request.seed >>> 0,
        timeScale: request.timeScale ?? this.options.timeScale ?? 1,
      },
    };
    if (shard.count === 1) {
      await this.results.replaceOne({ _id: resultId }, { ...document, ...storedNow() }, { upsert: true });
    } else {
      await this.shards.replaceOne(
        { _id: shardId },
        { ...document, shard: shard.index, shards: 1, ...storedNow() },
        { upsert: true },
      );
      await this.mergeShardsIfComplete(request, shard.count);
    }
    await this.checkpoints.deleteOne({ _id: checkpointId });
    log?.info(probeSummaryOf(document), 'probe window written');
    return probeSummaryOf(document);
  }

  private async mergeShardsIfComplete(request: ProbeRequest, count: number): Promise<void> {
    const parts = await this.shards
      .find({ rolloutId: request.rolloutId, tick: request.tick })
      .sort({ _id: 1 })
      .toArray();
    const ofThisFanOut = parts.filter((part) => part._id?.endsWith(`/${count}`));
    if (ofThisFanOut.length < count) return;
    const resultId = probeResultId(request.rolloutId, request.tick);
    const merged = mergeProbeResults(ofThisFanOut.map(({ shard: _shard, _id, ...rest }) => rest));
    await this.results.replaceOne({ _id: resultId }, { ...merged, ...storedNow() }, { upsert: true });
  }
}

function checkRequest(request: ProbeRequest): ProbeShard {
  const r = new FieldReader();
  r.string(request.rolloutId, 'rolloutId');
  r.number(request.tick, 'tick', { min: 0, integer: true });
  if (!Array.isArray(request.profileIds) || request.profileIds.length === 0)
    r.fail('profileIds', 'must name at least one profile');
  r.number(request.seed, 'seed', { integer: true });
  r.number(request.durationMs, 'durationMs', { min: 1, max: 3_600_000, integer: true });
  r.number(request.concurrency, 'concurrency', { min: 1, integer: true });
  const shard = request.shard ?? { index: 0, count: 1 };
  const count = r.number(shard.count, 'shard.count', { min: 1, max: 1000, integer: true });
  r.number(shard.index, 'shard.index', { min: 0, max: Math.max(0, (count ?? 1) - 1), integer: true });
  r.throwIfAny();
  return shard;
}
