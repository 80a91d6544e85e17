/**
 * The load runs of one service instance: started, observed, cancelled. Runs are CPU-heavy, so
 * only a few run at once; finished runs are kept (bounded) so their results can be fetched.
 */
import type { Logger } from '../../platform/logger';
import type { EnginePlan } from '../options';
import { playPlan, type LoadResult, type LoadSnapshot, type SessionCounts } from '../run-load';
import { summarize, type ActionStats, type ActionSummary } from '../stats';
import { messageOf } from '../../core/errors';

export type RunState = 'running' | 'completed' | 'cancelled' | 'failed';

export interface SnapshotView {
  seq: number;
  at: number;
  elapsed_ms: number;
  interval: ActionSummary[];
  sessions: SessionCounts;
  in_flight: number;
}

export interface RunView {
  id: string;
  status: RunState;
  created_at: string;
  request: Record<string, unknown>;
  snapshots: SnapshotView[];
  summary: {
    status: string;
    started_at: number;
    ended_at: number;
    elapsed_ms: number;
    actions: ActionSummary[];
    /** Mergeable per (target, action) stats with encoded HDR histograms (µs). */
    stats: ActionStats[];
    sessions: SessionCounts;
    unfinished: number;
  } | null;
  /** While running: the totals so far. */
  progress: { elapsed_ms: number; actions: ActionSummary[]; sessions: SessionCounts } | null;
  error: string | null;
}

interface RunRecord {
  id: string;
  status: RunState;
  createdAt: number;
  request: Record<string, unknown>;
  snapshots: SnapshotView[];
  latest: LoadSnapshot | null;
  result: LoadResult | null;
  error: string | null;
  controller: AbortController;
  done: Promise<void>;
}

export class TooManyRunsError extends Error {}

export class RunRegistry {
  private readonly runs = new Map<string, RunRecord>();

  constructor(
    private readonly options: {
      maxActive: number;
      keepFinished: number;
      maxSnapshots: number;
      logger?: Logger;
    },
  ) {}

  get active(): number {
    return [...this.runs.values()].filter((run) => run.status === 'running').length;
  }

  start(plan: EnginePlan, request: Record<string, unknown>): RunView {
    if (this.active >= this.options.maxActive)
      throw new TooManyRunsError(
        `${this.active} runs are in progress (the limit is ${this.options.maxActive})`,
      );
    const controller = new AbortController();
    const record: RunRecord = {
      id: plan.runId,
      status: 'running',
      createdAt: Date.now(),
      request,
      snapshots: [],
      latest: null,
      result: null,
      error: null,
      controller,
      done: Promise.resolve(),
    };
    record.done = playPlan(
      plan,
      (snapshot) => {
        record.latest = snapshot;
        if (snapshot.final) return;
        record.snapshots.push({
          seq: snapshot.seq,
          at: snapshot.at,
          elapsed_ms: snapshot.elapsedMs,
          interval: summarize(
            snapshot.interval.stats,
            Math.max(1, snapshot.interval.to - snapshot.interval.from),
          ),
          sessions: snapshot.sessions,
          in_flight: snapshot.inFlight,
        });
        if (record.snapshots.length > this.options.maxSnapshots) record.snapshots.shift();
      },
      controller.signal,
    ).then(
      (result) => {
        record.result = result;
        record.status = result.status;
        this.options.logger?.info({ runId: record.id, status: result.status }, 'load run finished');
      },
      (error: unknown) => {
        record.status = 'failed';
        record.error = messageOf(error);
        this.options.logger?.error({ runId: record.id, err: error }, 'load run failed');
      },
    );
    this.runs.set(record.id, record);
    this.prune();
    return this.view(record);
  }

  get(id: string): RunView | undefined {
    const record = this.runs.get(id);
    return record ? this.view(record) : undefined;
  }

  list(): RunView[] {
    return [...this.runs.values()].map((record) => ({ ...this.view(record), snapshots: [] }));
  }

  /** Cancels a running run; resolves once its engine threads are gone (well within a second). */
  async cancel(id: string): Promise<RunView | undefined> {
    const record = this.runs.get(id);
    if (!record) return undefined;
    record.controller.abort();
    await record.done;
    return this.view(record);
  }

  async close(): Promise<void> {
    await Promise.all([...this.runs.keys()].map((id) => this.cancel(id)));
  }

  private prune(): void {
    const finished = [...this.runs.values()].filter((run) => run.status !== 'running');
    for (const run of finished.slice(0, Math.max(0, finished.length - this.options.keepFinished)))
      this.runs.delete(run.id);
  }

  private view(record: RunRecord): RunView {
    const result = record.result;
    const latest = record.latest;
    return {
      id: record.id,
      status: record.status,
      created_at: new Date(record.createdAt).toISOString(),
      request: record.request,
      snapshots: record.snapshots,
      summary: result
        ? {
            status: result.status,
            started_at: result.startedAt,
            ended_at: result.endedAt,
            elapsed_ms: result.elapsedMs,
            actions: result.summary,
            stats: result.stats,
            sessions: result.sessions,
            unfinished: result.unfinished,
          }
        : null,
      progress:
        !result && latest
          ? {
              elapsed_ms: latest.elapsedMs,
              actions: summarize(latest.totals, Math.max(1, latest.elapsedMs)),
              sessions: latest.sessions,
            }
          : null,
      error: record.error,
    };
  }
}
