/**
 * The library entry: `runLoad(options, onSnapshot)`. The engine runs in worker threads, so the
 * caller's event loop (a Temporal worker, the HTTP service, the CLI's progress line) stays free
 * and several cores generate load. This thread only starts them on a common clock, collects an
 * encoded delta from each every interval and merges them exactly.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { TargetAllowlist } from './allowlist';
import type { EngineCounters, EngineDelta } from './engine';
import {
  resolveLoadOptions,
  type EnginePlan,
  type FieldNames,
  type LoadLimits,
  type LoadModel,
  type LoadOptions,
} from './options';
import { mergeStats, summarize, type ActionStats, type ActionSummary } from './stats';
import type { MainMessage, ThreadMessage } from './thread-protocol';

export type RunStatus = 'running' | 'completed' | 'cancelled';

export interface SessionCounts {
  started: number;
  completed: number;
  dropped: number;
}

export interface LoadSnapshot {
  runId: string;
  seq: number;
  status: RunStatus;
  final: boolean;
  model: LoadModel;
  targets: string[];
  tags: Record<string, string>;
  /** Epoch ms. */
  startedAt: number;
  at: number;
  elapsedMs: number;
  /** What happened since the previous snapshot. */
  interval: { from: number; to: number; stats: ActionStats[] };
  /** Everything since the start (merge of all intervals). */
  totals: ActionStats[];
  sessions: SessionCounts;
  /** Requests cut by the end of the run or a cancellation: neither successes nor errors. */
  unfinished: number;
  inFlight: number;
}

export interface LoadResult {
  runId: string;
  status: Exclude<RunStatus, 'running'>;
  startedAt: number;
  endedAt: number;
  /** Time the workload was played (the duration, or less when cancelled), ms. */
  elapsedMs: number;
  stats: ActionStats[];
  summary: ActionSummary[];
  sessions: SessionCounts;
  unfinished: number;
  snapshots: number;
}

export interface RunContext {
  limits?: LoadLimits;
  allowlist?: TargetAllowlist;
  names?: FieldNames;
  signal?: AbortSignal;
}

export type SnapshotListener = (snapshot: LoadSnapshot) => void;

/** Validates, then plays the load. Throws ValidationError on bad options before any request. */
export async function runLoad(
  options: LoadOptions,
  onSnapshot?: SnapshotListener,
  context: RunContext = {},
): Promise<LoadResult> {
  const plan = await resolveLoadOptions(options, context);
  return playPlan(plan, onSnapshot, context.signal);
}

/** One engine worker thread, seen from the main thread. Exported for tests. */
export class EngineThread {
  readonly worker: Worker;
  private readonly waiting = new Map<string, (message: ThreadMessage) => void>();
  /**
   * Deltas that arrived after their wait gave up. The thread reset its counters when it sent
   * them, so they are the only record of that interval: the next collection takes them.
   */
  private late: EngineDelta[] = [];
  failure: Error | undefined;
  exited = false;
  private terminating = false;
  private finished = false;
  private onFailure: ((error: Error) => void) | undefined;

  constructor(plan: EnginePlan, index: number) {
    const workerData = { plan, threadIndex: index };
    const extension = path.extname(__filename);
    const entry = path.join(__dirname, `engine-thread${extension}`);
    if (extension === '.ts') {
      // Running from source (tsx, jest): the thread registers tsx's require hook first.
      const tsx = require.resolve('tsx/cjs');
      this.worker = new Worker(`require(${JSON.stringify(tsx)});require(${JSON.stringify(entry)});`, {
        eval: true,
        workerData,
      });
    } else this.worker = new Worker(entry, { workerData });
    this.worker.on('message', (message: ThreadMessage) => {
      if (message.type === 'fatal') return this.fail(new Error(`engine thread ${index}: ${message.message}`));
      if (message.type === 'done') this.finished = true;
      const key = message.type === 'delta' ? `delta:${message.seq}` : message.type;
      const resolve = this.waiting.get(key);
      this.waiting.delete(key);
      if (resolve) resolve(message);
      else if (message.type === 'delta' || message.type === 'done') this.late.push(message.delta);
    });
    this.worker.on('error', (error) => this.fail(error));
    this.worker.on('exit', (code) => {
      this.exited = true;
      // Only terminate() ends a thread; one that stops before its final delta lost its share.
      if (!this.terminating && !this.finished)
        this.fail(new Error(`engine thread ${index} exited unexpectedly (exit code ${code})`));
      for (const resolve of this.waiting.values()) resolve({ type: 'fatal', message: 'exited' });
      this.waiting.clear();
    });
  }

  onFail(listener: (error: Error) => void): void {
    this.onFailure = listener;
    if (this.failure) listener(this.failure);
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.onFailure?.(error);
    for (const resolve of this.waiting.values()) resolve({ type: 'fatal', message: error.message });
    this.waiting.clear();
  }

  post(message: MainMessage): void {
    if (!this.exited) this.worker.postMessage(message);
  }

  /**
   * Resolves with the message, or undefined after `timeoutMs`, when `until` settles first, or
   * if the thread fails. A delta that arrives after that is kept for `takeLate`.
   */
  wait(key: string, timeoutMs: number, until?: Promise<unknown>): Promise<ThreadMessage | undefined> {
    if (this.exited || this.failure) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      let settled = false;
      const giveUp = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.waiting.delete(key);
        resolve(undefined);
      };
      const timer = setTimeout(giveUp, timeoutMs);
      void until?.then(giveUp, giveUp);
      this.waiting.set(key, (message) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(message.type === 'fatal' ? undefined : message);
      });
    });
  }

  /** The deltas that arrived after their wait gave up, once. */
  takeLate(): EngineDelta[] {
    const late = this.late;
    this.late = [];
    return late;
  }

  async terminate(): Promise<void> {
    this.terminating = true;
    if (!this.exited) await this.worker.terminate();
  }
}

const emptyCounters = (): EngineCounters => ({
  sessionsStarted: 0,
  sessionsCompleted: 0,
  sessionsDropped: 0,
  unfinished: 0,
});

/** Plays a validated plan. Resolves when the duration is over (and in-flight requests drained) or the signal aborts. */
export async function playPlan(
  plan: EnginePlan,
  onSnapshot?: SnapshotListener,
  signal?: AbortSignal,
): Promise<LoadResult> {
  const threads = Array.from({ length: plan.threads }, (_, index) => new EngineThread(plan, index));
  // Set from thread callbacks: a holder, so the checks below see the update.
  const failure: { error?: Error } = {};
  let wake: (() => void) | undefined;
  for (const thread of threads)
    thread.onFail((error) => {
      failure.error ??= error;
      wake?.();
    });
  const throwIfFailed = (): void => {
    if (failure.error) throw failure.error;
  };
  try {
    // A cancellation while the threads start (they load and compile the engine) ends it at once.
    let onStartAbort: (() => void) | undefined;
    const aborted = new Promise<'aborted'>((resolve) => {
      onStartAbort = () => resolve('aborted');
      if (signal?.aborted) resolve('aborted');
      signal?.addEventListener('abort', onStartAbort, { once: true });
    });
    const ready = await Promise.race([
      Promise.all(threads.map((thread) => thread.wait('ready', 60_000))),
      aborted,
    ]);
    if (onStartAbort) signal?.removeEventListener('abort', onStartAbort);
    if (ready === 'aborted' || signal?.aborted) return emptyResult(plan, Date.now(), 'cancelled');
    throwIfFailed();
    if (ready.some((message) => message === undefined))
      throw new Error('an engine thread did not start within 60 s');

    const startedAt = Date.now() + 20;
    const endAt = startedAt + plan.durationMs;
    for (const thread of threads) thread.post({ type: 'start', startAt: startedAt });

    let totals: ActionStats[] = [];
    const sessions: SessionCounts = { started: 0, completed: 0, dropped: 0 };
    let unfinished = 0;
    let seq = 0;
    let intervalFrom = startedAt;
    let cancelled = false;
    let finals: (ThreadMessage | undefined)[] = [];

    const absorb = (deltas: (EngineDelta | undefined)[]) => {
      const present = deltas.filter((delta): delta is EngineDelta => delta !== undefined);
      // A late delta's in-flight count is stale: only the current replies give `inFlight`.
      const inFlight = present.reduce((sum, delta) => sum + delta.inFlight, 0);
      for (const thread of threads) present.push(...thread.takeLate());
      const counters = present.reduce((sum, delta) => {
        sum.sessionsStarted += delta.counters.sessionsStarted;
        sum.sessionsCompleted += delta.counters.sessionsCompleted;
        sum.sessionsDropped += delta.counters.sessionsDropped;
        sum.unfinished += delta.counters.unfinished;
        return sum;
      }, emptyCounters());
      sessions.started += counters.sessionsStarted;
      sessions.completed += counters.sessionsCompleted;
      sessions.dropped += counters.sessionsDropped;
      unfinished += counters.unfinished;
      const interval = mergeStats(present.map((delta) => delta.stats));
      totals = mergeStats([totals, interval]);
      return { interval, inFlight };
    };

    const emit = (interval: ActionStats[], inFlight: number, status: RunStatus) => {
      const at = Date.now();
      const snapshot: LoadSnapshot = {
        runId: plan.runId,
        seq: seq,
        status,
        final: status !== 'running',
        model: plan.model,
        targets: plan.targets.map((target) => target.name),
        tags: plan.tags,
        startedAt,
        at,
        elapsedMs: Math.max(0, Math.min(at, endAt) - startedAt),
        interval: { from: intervalFrom, to: at, stats: interval },
        totals,
        sessions: { ...sessions },
        unfinished,
        inFlight,
      };
      intervalFrom = at;
      try {
        onSnapshot?.(snapshot);
      } catch {
        // A listener's failure must not stop the load or leak threads.
      }
      return snapshot;
    };

    // Set while the threads drain after the duration: a cancellation then cuts the drain short.
    let cutDrain: (() => void) | undefined;
    const onAbort = () => {
      cancelled = true;
      wake?.();
      cutDrain?.();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      // Interval snapshots until the duration is over or the run is cancelled.
      for (;;) {
        const now = Date.now();
        const nextSnapshot = startedAt + (seq + 1) * plan.snapshotIntervalMs;
        const wakeAt = Math.min(nextSnapshot, endAt);
        if (!cancelled && !failure.error && wakeAt > now) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, wakeAt - now);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wake = undefined;
        }
        throwIfFailed();
        if (cancelled || Date.now() >= endAt) break;
        seq++;
        const currentSeq = seq;
        for (const thread of threads) thread.post({ type: 'collect', seq: currentSeq });
        const replies = await Promise.all(threads.map((thread) => thread.wait(`delta:${currentSeq}`, 5000)));
        const { interval, inFlight } = absorb(
          replies.map((reply) => (reply?.type === 'delta' ? reply.delta : undefined)),
        );
        emit(interval, inFlight, 'running');
      }

      // The end: a cancellation cuts in-flight requests at once; the end of the duration gives
      // them drainMs. The abort listener stays on, so a cancellation during the drain still ends
      // the run within a second instead of after drainMs + 5 s.
      const cancelGrace = 700;
      const how = cancelled ? 'cancel' : 'finish';
      for (const thread of threads) thread.post({ type: how });
      const cut = new Promise<void>((resolve) => {
        cutDrain = () => {
          cutDrain = undefined;
          for (const thread of threads) thread.post({ type: 'cancel' });
          setTimeout(resolve, cancelGrace);
        };
      });
      finals = await Promise.all(
        threads.map((thread) => thread.wait('done', cancelled ? cancelGrace : plan.drainMs + 5000, cut)),
      );
      cutDrain = undefined;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }

    throwIfFailed();
    seq++;
    const { interval } = absorb(finals.map((reply) => (reply?.type === 'done' ? reply.delta : undefined)));
    const status = cancelled ? 'cancelled' : 'completed';
    const last = emit(interval, 0, status);
    return {
      runId: plan.runId,
      status,
      startedAt,
      endedAt: last.at,
      elapsedMs: last.elapsedMs,
      stats: totals,
      summary: summarize(totals, last.elapsedMs),
      sessions: { ...sessions },
      unfinished,
      snapshots: seq,
    };
  } finally {
    await Promise.all(threads.map((thread) => thread.terminate()));
  }
}

function emptyResult(plan: EnginePlan, at: number, status: 'cancelled'): LoadResult {
  return {
    runId: plan.runId,
    status,
    startedAt: at,
    endedAt: at,
    elapsedMs: 0,
    stats: [],
    summary: [],
    sessions: { started: 0, completed: 0, dropped: 0 },
    unfinished: 0,
    snapshots: 0,
  };
}
