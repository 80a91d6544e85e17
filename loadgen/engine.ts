/**
 * The load engine of one thread. It plays its share of the seeded workload (virtual users in the
 * closed model, arrivals in the open model) against every target, in pairs: a step goes to all
 * targets at the same moment and the session moves on when all have answered, so baseline and
 * canary see the same requests at the same times.
 *
 * The hot path is undici's `dispatch` through one reused Exchange per (session slot, target)
 * (exchange.ts), dispatch options prepared once per (step, target), and recorders indexed by
 * (target, action): after warm-up a request allocates only what undici itself needs. Timers and
 * open-model arrivals are in scheduler.ts.
 */
import { performance } from 'node:perf_hooks';
import { Agent, Client, Pool, type Dispatcher } from 'undici';
import { TargetAllowlist } from './allowlist';
import {
  Exchange,
  type ExchangeOwner,
  type ExchangeRunner,
  type PreparedStep,
  type TargetRuntime,
} from './exchange';
import { ActionRecorder, type ActionStats } from './stats';
import type { EnginePlan, RequestStep } from './options';
import { closedSessionIndex, openSessionIndex, owns, seededOrder } from './schedule';
import { ArrivalSource, Scheduler, type ArrivalOwner, type ScheduledItem } from './scheduler';

export interface EngineCounters {
  sessionsStarted: number;
  sessionsCompleted: number;
  /** Open model: arrivals that found every session slot busy and were not played. */
  sessionsDropped: number;
  /** Requests cut at the end of the run or by cancellation (neither successes nor errors). */
  unfinished: number;
}

export interface EngineDelta {
  stats: ActionStats[];
  counters: EngineCounters;
  inFlight: number;
}

interface PreparedSession {
  id: string;
  steps: PreparedStep[];
}

/** Plays sessions one after another (closed model) or one arrival's session (open model). */
class Runner implements ExchangeRunner, ScheduledItem {
  exchanges: Exchange[] = [];
  session!: PreparedSession;
  sessionNumber = 0;
  stepIndex = 0;
  sessionStart = 0;
  pending = 0;
  iteration = 0;
  active = false;
  /** Heap bookkeeping for the scheduler. */
  dueAt = 0;
  heapIndex = -1;
  private sending = false;
  private completedWhileSending = false;

  constructor(
    private readonly engine: Engine,
    /** Closed model: the global virtual-user index. */
    readonly vu: number,
  ) {}

  startSession(session: PreparedSession, sessionNumber: number, startAt: number): void {
    this.session = session;
    this.sessionNumber = sessionNumber;
    this.stepIndex = 0;
    this.sessionStart = startAt;
    this.active = true;
    for (const exchange of this.exchanges) exchange.resetSession();
    this.engine.counters.sessionsStarted++;
    this.scheduleStep(false);
  }

  /**
   * Sends the current step to every target, now or at its time. `lateIsTheServers`: the step is
   * overdue because the previous answer came late (open model), so its latency counts from when
   * it was due, and a stall cannot hide behind the requests it delayed (coordinated omission).
   * Lateness of the generator's own timers is not the server's and is not counted.
   */
  private scheduleStep(lateIsTheServers: boolean): void {
    const step = this.session.steps[this.stepIndex] as PreparedStep;
    const dueAt = this.sessionStart + step.offsetMs;
    const now = performance.now();
    if (dueAt > now + 0.5) this.engine.scheduler.schedule(this, dueAt);
    else this.sendStep(now, lateIsTheServers && dueAt < now - 0.5 ? dueAt : NaN);
  }

  /** Scheduler callback. */
  fire(now: number): void {
    if (this.engine.stopping) return;
    this.sendStep(now, NaN);
  }

  private sendStep(now: number, overdueSince: number): void {
    const step = this.session.steps[this.stepIndex] as PreparedStep;
    const tag = this.engine.tagFor(this.sessionNumber, this.stepIndex);
    this.pending = this.exchanges.length;
    this.sending = true;
    this.completedWhileSending = false;
    // Paired probes alternate which target is sent first: the second request of a pair is always
    // a little later and meets a busier CPU, a bias the analysis would otherwise take for the
    // canary being slower (seen as +15 % on sub-millisecond page views).
    const count = this.exchanges.length;
    const reversed = count > 1 && ((this.sessionNumber + this.stepIndex) & 1) === 1;
    for (let i = 0; i < count; i++) {
      (this.exchanges[reversed ? count - 1 - i : i] as (typeof this.exchanges)[number]).send(
        step,
        now,
        overdueSince,
        tag,
      );
    }
    this.sending = false;
    // Completions inside dispatch (a synchronous failure) continue on the next turn, so a dead
    // target cannot recurse through the whole session in one stack.
    if (this.completedWhileSending) setImmediate(() => this.advance());
  }

  exchangeDone(): void {
    if (--this.pending > 0) return;
    if (this.sending) {
      this.completedWhileSending = true;
      return;
    }
    this.advance();
  }

  private advance(): void {
    if (this.engine.stopping) {
      this.active = false;
      return;
    }
    this.stepIndex++;
    if (this.stepIndex < this.session.steps.length) {
      if (this.engine.openModel) this.scheduleStep(true);
      else {
        // Closed model: the recorded gap is think time after the previous answer.
        const previous = this.session.steps[this.stepIndex - 1] as PreparedStep;
        const step = this.session.steps[this.stepIndex] as PreparedStep;
        this.sessionStart = performance.now() - previous.offsetMs;
        if (step.offsetMs - previous.offsetMs <= 0) this.sendStep(performance.now(), NaN);
        else this.scheduleStep(false);
      }
      return;
    }
    this.engine.counters.sessionsCompleted++;
    this.active = false;
    this.engine.sessionEnded(this);
  }
}

export class Engine implements ExchangeOwner, ArrivalOwner {
  readonly openModel: boolean;
  readonly scheduler = new Scheduler();
  readonly counters: EngineCounters = {
    sessionsStarted: 0,
    sessionsCompleted: 0,
    sessionsDropped: 0,
    unfinished: 0,
  };
  inFlight = 0;
  stopping = false;
  /** Set once the dispatchers are being torn down: failures from here on are cuts, not errors. */
  closing = false;
  readonly tagHeader: string | null;
  /** This thread's partition of the workload: index `share` of `shares`. */
  readonly share: number;
  readonly shares: number;
  private readonly recorders: ActionRecorder[][];
  private readonly actions: string[];
  private readonly sessions: PreparedSession[];
  private readonly order: Uint32Array;
  private readonly targets: TargetRuntime[];
  private readonly runners: Runner[] = [];
  private readonly idle: Runner[] = [];
  private readonly dispatchers: Dispatcher[] = [];
  private readonly allowlist: TargetAllowlist;
  private agent: Agent | null = null;
  private readonly tagPrefix: string;
  private finishWaiter: (() => void) | null = null;
  private closed: Promise<void> | null = null;

  constructor(
    readonly plan: EnginePlan,
    threadIndex: number,
  ) {
    this.openModel = plan.model === 'open';
    this.tagHeader = plan.tagHeader;
    // Shard first, then thread within the shard: `i % (count * threads) === thread * count + index`
    // holds exactly when `i % count === index` and `floor(i / count) % threads === thread`. So a
    // shard owns the same items whatever its thread count, and shards of one probe whose workers
    // run different thread counts still partition the schedule (test/loadgen/shards.test.ts).
    this.shares = plan.shard.count * plan.threads;
    this.share = threadIndex * plan.shard.count + plan.shard.index;
    this.allowlist = new TargetAllowlist(plan.allowlist);
    const tags = Object.entries(plan.tags)
      .map(([key, value]) => `${key}=${value};`)
      .join('');
    this.tagPrefix = `run=${plan.runId};${tags}`;

    this.actions = [
      ...new Set(plan.sessions.flatMap((session) => session.steps.map((step) => step.action))),
    ].sort();
    this.recorders = plan.targets.map((target) =>
      this.actions.map((action) => new ActionRecorder(target.name, action)),
    );
    this.targets = plan.targets.map((target, index) => {
      const url = new URL(target.url);
      return {
        index,
        name: target.name,
        origin: url.origin,
        basePath: url.pathname.replace(/\/$/, ''),
        pool: null,
      };
    });
    const actionIndex = new Map(this.actions.map((action, index) => [action, index]));
    this.sessions = plan.sessions.map((session) => ({
      id: session.id,
      steps: session.steps.map((step) => {
        const body = step.body === undefined ? null : Buffer.from(step.body);
        // The ontology's headers, then the session's, then the run's: the later ones win.
        const headers = mergeHeaders(mergeHeaders(step.headers, session.headers ?? []), plan.headers);
        const prepared: RequestStep = { ...step, headers };
        return {
          step: prepared,
          actionIndex: actionIndex.get(step.action) as number,
          body,
          options: this.targets.map((target) => ({
            origin: target.origin,
            path: target.basePath + step.path,
            method: step.method,
            headers,
            body,
            headersTimeout: plan.timeoutMs,
            bodyTimeout: plan.timeoutMs,
            reset: !plan.keepAlive,
            blocking: false,
          })),
          expectStatus: step.expect.status,
          expectJson: step.expect.json ? step.expect.json.split('.') : null,
          offsetMs: step.offsetMs * plan.timeScale,
        };
      }),
    }));
    this.order = seededOrder(this.sessions.length, plan.seed);

    let slots = 0;
    for (let vu = 0; vu < plan.concurrency; vu++) if (owns(vu, this.share, this.shares)) slots++;
    if (this.openModel) {
      for (const target of this.targets) {
        target.pool = new Pool(target.origin, { ...this.clientOptions(), connections: Math.max(1, slots) });
        this.dispatchers.push(target.pool);
      }
    }
    for (let vu = 0; vu < plan.concurrency; vu++) {
      if (!owns(vu, this.share, this.shares)) continue;
      const runner = new Runner(this, vu);
      runner.exchanges = this.targets.map((target) => {
        let dispatcher: Dispatcher;
        if (target.pool) dispatcher = target.pool;
        else {
          dispatcher = new Client(target.origin, this.clientOptions());
          this.dispatchers.push(dispatcher);
        }
        return new Exchange(this, runner, target, dispatcher);
      });
      this.runners.push(runner);
      this.idle.push(runner);
    }
  }

  private clientOptions(): Client.Options {
    const plan = this.plan;
    return {
      pipelining: 1,
      headersTimeout: plan.timeoutMs,
      bodyTimeout: plan.timeoutMs,
      keepAliveTimeout: 30_000,
      connect: {
        timeout: plan.timeoutMs,
        rejectUnauthorized: !plan.tls.insecure,
        ...(plan.tls.ca ? { ca: plan.tls.ca } : {}),
        lookup: this.allowlist.guardedLookup(),
      },
    };
  }

  /** Begins at `startAt` (this thread's performance.now() scale) and plays until `endAt`. */
  start(startAt: number, endAt: number): void {
    if (this.openModel) {
      new ArrivalSource(this, startAt, endAt).begin();
      return;
    }
    for (const runner of this.idle.splice(0)) {
      const begin = {
        dueAt: 0,
        heapIndex: -1,
        fire: () => this.nextClosedSession(runner),
      };
      this.scheduler.schedule(begin, startAt);
    }
  }

  private nextClosedSession(runner: Runner): void {
    if (this.stopping) return;
    const users = this.plan.concurrency;
    const index = closedSessionIndex(this.order, runner.vu, runner.iteration, users);
    const sessionNumber = runner.vu + runner.iteration * users;
    runner.iteration++;
    runner.startSession(this.sessions[index] as PreparedSession, sessionNumber, performance.now());
  }

  /** Open model: an arrival due at `dueAt` takes a free slot or is dropped. */
  arrive(index: number, dueAt: number, _now: number): void {
    const runner = this.idle.pop();
    if (!runner) {
      this.counters.sessionsDropped++;
      return;
    }
    const session = this.sessions[openSessionIndex(this.order, index)] as PreparedSession;
    runner.startSession(session, index, dueAt);
  }

  sessionEnded(runner: Runner): void {
    if (this.openModel) {
      this.idle.push(runner);
      this.checkFinished();
      return;
    }
    if (this.stopping) {
      this.checkFinished();
      return;
    }
    this.nextClosedSession(runner);
  }

  recorderFor(target: number, action: number): ActionRecorder {
    return (this.recorders[target] as ActionRecorder[])[action] as ActionRecorder;
  }

  tagFor(sessionNumber: number, step: number): string | null {
    if (this.tagHeader === null) return null;
    return `${this.tagPrefix}session=${sessionNumber};seq=${step}`;
  }

  mayRedirectTo(url: URL): boolean {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    // Names not listed by name are checked against the ranges when the agent connects.
    return (
      !/^[\d.]+$|:/.test(host) || this.allowlist.allowsAddress(host) || this.allowlist.allowsHostName(host)
    );
  }

  redirectAgent(): Agent {
    this.agent ??= new Agent({ ...this.clientOptions(), connections: 4 });
    if (!this.dispatchers.includes(this.agent)) this.dispatchers.push(this.agent);
    return this.agent;
  }

  /** What was recorded since the last call. */
  drain(): EngineDelta {
    const stats: ActionStats[] = [];
    for (const row of this.recorders) {
      for (const recorder of row) {
        if (recorder.requests > 0) stats.push(recorder.drain());
      }
    }
    const counters = { ...this.counters };
    this.counters.sessionsStarted = 0;
    this.counters.sessionsCompleted = 0;
    this.counters.sessionsDropped = 0;
    this.counters.unfinished = 0;
    return { stats, counters, inFlight: this.inFlight };
  }

  /** Stops starting requests, lets those in flight finish for `drainMs`, then cuts the rest. */
  async finish(drainMs: number): Promise<void> {
    this.stopping = true;
    this.scheduler.stop();
    if (this.inFlight > 0 && drainMs > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainMs);
        this.finishWaiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    await this.close();
  }

  /** Cuts everything in flight now, also during a `finish` drain (which then ends at once). */
  async cancel(): Promise<void> {
    this.stopping = true;
    this.scheduler.stop();
    const closed = this.close();
    this.finishWaiter?.();
    await closed;
  }

  private checkFinished(): void {
    if (this.stopping && this.inFlight === 0) this.finishWaiter?.();
  }

  private close(): Promise<void> {
    this.closed ??= this.closeOnce();
    return this.closed;
  }

  private async closeOnce(): Promise<void> {
    this.closing = true;
    for (const runner of this.runners) for (const exchange of runner.exchanges) exchange.cut();
    // A connection still resolving or connecting can hold destroy() for seconds: do not wait.
    const destroyed = Promise.all(
      this.dispatchers.map((dispatcher) => dispatcher.destroy().catch(() => undefined)),
    );
    await Promise.race([destroyed, new Promise((resolve) => setTimeout(resolve, 200).unref())]);
  }

  /** Called by exchanges when the last request of a stopping engine settles. */
  settled(): void {
    this.checkFinished();
  }
}

function mergeHeaders(base: string[], extra: string[]): string[] {
  if (extra.length === 0) return base;
  const names = new Set<string>();
  for (let i = 0; i < extra.length; i += 2) names.add(extra[i] as string);
  const merged: string[] = [];
  for (let i = 0; i < base.length; i += 2) {
    if (!names.has(base[i] as string)) merged.push(base[i] as string, base[i + 1] as string);
  }
  return merged.concat(extra);
}
