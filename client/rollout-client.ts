/**
 * The one way to start, follow, read and steer rollouts: the CLI, the dashboard, the demo and
 * the tests share it, so the workflow id rule, the message names and the error cases cannot
 * drift. It reaches the workflow only through its type name, signals, query and update
 * (rollout/messages.ts) and its history; nothing here reaches into workflow internals.
 */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import {
  pauseSignal,
  promoteSignal,
  resumeSignal,
  rollbackSignal,
  ROLLOUT_TASK_QUEUE,
  ROLLOUT_WORKFLOW_TYPE,
  setPolicyUpdate,
  statusQuery,
  type ControlRequest,
} from '../rollout/messages';
import { mergePolicy, rolloutIdFor, type RolloutSpec, type TrafficPolicy } from '../rollout/spec';
import type { RolloutResult, RolloutStatus, VerdictDigest } from '../rollout/types';
import type { rolloutWorkflow } from '../workflows/rollout';
import { readRunStart, specOverview, type RolloutDetail } from './rollout-detail';
import {
  PolicyUpdateRefusedError,
  RolloutAlreadyStartedError,
  RolloutEndedError,
  RolloutNotFoundError,
} from './rollout-errors';
import { RolloutList, summaryFromStatus, type ListedRollout, type ListOptions } from './rollout-list';

/** The workflow's signature, for typed handles: entry points never import workflow code. */
export type RolloutWorkflow = typeof rolloutWorkflow;
export type RolloutHandle = WorkflowHandleWithFirstExecutionRunId<RolloutWorkflow>;
export type ControlKind = 'pause' | 'resume' | 'rollback' | 'promote';

export interface StartRolloutOptions {
  taskQueue?: string;
  /**
   * Allow a new rollout of a service+version whose earlier rollout has ended (e.g. after a
   * rollback). It runs under its own id, `<id>+r2`, `+r3`, ...: probe results, samples, ticks and
   * alert deliveries are keyed by rollout id, and a new run must not find the old run's.
   */
  allowRestart?: boolean;
}

export interface RolloutClientOptions {
  /** How long a query, a signal or reading a finished result may take. */
  queryTimeoutMs?: number;
  /** How long listing rollouts (visibility) may take. */
  listTimeoutMs?: number;
  /** Status queries in flight at once while listing. */
  concurrency?: number;
  /** Status and list answers younger than this are served from memory (many viewers, one query). */
  cacheMs?: number;
  /** Where a finished rollout's last verdict is read (its tick log); list rows have none without it. */
  lastVerdictOf?: (rolloutId: string) => Promise<VerdictDigest | null>;
}

const MAX_RESTARTS = 100;

const CONTROL_SIGNALS = {
  pause: pauseSignal,
  resume: resumeSignal,
  rollback: rollbackSignal,
  promote: promoteSignal,
};

export class RolloutClient {
  private readonly queryTimeoutMs: number;
  private readonly cacheMs: number;
  private readonly statusCache = new Map<string, { at: number; value: Promise<RolloutStatus> }>();
  private readonly rows: RolloutList;

  constructor(
    private readonly temporal: Client,
    options: RolloutClientOptions = {},
  ) {
    this.queryTimeoutMs = options.queryTimeoutMs ?? 3000;
    this.cacheMs = options.cacheMs ?? 0;
    this.rows = new RolloutList(
      temporal,
      {
        status: (rolloutId) => this.status(rolloutId),
        result: (rolloutId) => this.bounded(() => this.handle(rolloutId).result()),
        lastVerdictOf: options.lastVerdictOf,
      },
      {
        listTimeoutMs: options.listTimeoutMs ?? 5000,
        concurrency: options.concurrency ?? 8,
        cacheMs: this.cacheMs,
      },
    );
  }

  get namespace(): string {
    return this.temporal.options.namespace;
  }

  /**
   * Starts the rollout of `spec` under `rolloutIdFor(service, version)`. The same deployment
   * started twice is refused (RolloutAlreadyStartedError), not duplicated, and an id is never reused.
   */
  async start(spec: RolloutSpec, options: StartRolloutOptions = {}): Promise<RolloutHandle> {
    const baseId = rolloutIdFor(spec.service, spec.version);
    for (let run = 1; ; run++) {
      const workflowId = run === 1 ? baseId : `${baseId}+r${run}`;
      try {
        return await this.startRun(spec, workflowId, options.taskQueue ?? ROLLOUT_TASK_QUEUE);
      } catch (error) {
        if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
        // A run still going is never doubled, restart or not.
        if (options.allowRestart && run < MAX_RESTARTS) {
          const { status } = await this.handle(workflowId).describe();
          if (status.name !== 'RUNNING') continue;
        }
        throw await this.alreadyStarted(spec, baseId);
      }
    }
  }

  private startRun(spec: RolloutSpec, workflowId: string, taskQueue: string): Promise<RolloutHandle> {
    return this.temporal.workflow.start<RolloutWorkflow>(ROLLOUT_WORKFLOW_TYPE, {
      taskQueue,
      workflowId,
      args: [{ spec }],
      staticSummary: `Canary rollout of ${spec.service} ${spec.version}`,
      memo: {
        service: spec.service,
        version: spec.version,
        baseline: spec.targets.baseline.url,
        canary: spec.targets.canary.url,
      },
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    });
  }

  /** rollout-<service>-<version> can collide across services with hyphens (a + b-1, a-b + 1). */
  private async alreadyStarted(spec: RolloutSpec, rolloutId: string): Promise<RolloutAlreadyStartedError> {
    const memo = (
      await this.handle(rolloutId)
        .describe()
        .catch(() => undefined)
    )?.memo;
    if (memo && (memo.service !== spec.service || memo.version !== spec.version))
      return new RolloutAlreadyStartedError(rolloutId, {
        service: String(memo.service),
        version: String(memo.version),
      });
    return new RolloutAlreadyStartedError(rolloutId);
  }

  /**
   * Polls a rollout's status every `pollMs` until it ends and returns its result; `onStatus` sees
   * each status (a query that fails, e.g. while the worker restarts, is skipped). A failed or
   * terminated workflow rejects with the client's error, never as an unhandled rejection.
   */
  async watch(
    rolloutId: string,
    onStatus: (status: RolloutStatus) => void | Promise<void>,
    pollMs = 1000,
  ): Promise<RolloutResult> {
    const handle = this.handle(rolloutId);
    let ended = false;
    const result = this.result(rolloutId);
    const settled = result.then(
      () => (ended = true),
      () => (ended = true),
    );
    while (!ended) {
      const status = await handle.query(statusQuery).catch(() => undefined);
      if (status) await onStatus(status);
      await Promise.race([settled, new Promise((resolve) => setTimeout(resolve, pollMs))]);
    }
    return result;
  }

  /** Waits for the rollout to end (across continue-as-new) and returns how it ended. */
  result(rolloutId: string): Promise<RolloutResult> {
    return this.asRollout(rolloutId, () => this.handle(rolloutId).result());
  }

  /** The workflow's status query, bounded by the query timeout and cached for `cacheMs`. */
  async status(rolloutId: string): Promise<RolloutStatus> {
    const cached = this.statusCache.get(rolloutId);
    if (cached && Date.now() - cached.at < this.cacheMs) return cached.value;
    const value = this.asRollout(rolloutId, () =>
      this.bounded(() => this.handle(rolloutId).query(statusQuery)),
    );
    this.statusCache.set(rolloutId, { at: Date.now(), value });
    value.catch(() => this.statusCache.delete(rolloutId));
    if (this.statusCache.size > 10_000) this.statusCache.clear();
    return value;
  }

  /** Whether the rollout's workflow is still running; false when there is no such rollout. */
  async isRunning(rolloutId: string): Promise<boolean> {
    try {
      return (await this.describe(rolloutId)).status.name === 'RUNNING';
    } catch (error) {
      if (error instanceof RolloutNotFoundError) return false;
      throw error;
    }
  }

  /** Rollouts, newest first: running ones only, or all that visibility still holds. */
  list(options: ListOptions): Promise<ListedRollout[]> {
    return this.rows.list(options);
  }

  async detail(rolloutId: string): Promise<RolloutDetail> {
    const description = await this.describe(rolloutId);
    const running = description.status.name === 'RUNNING';
    const [summary, status, result, start] = await Promise.all([
      this.rows.summarize(description),
      // A finished workflow still answers queries while a worker can replay it; it may not.
      this.status(rolloutId).catch(() => null),
      !running && description.status.name === 'COMPLETED'
        ? this.bounded(() => this.handle(rolloutId).result()).catch(() => null)
        : null,
      readRunStart(this.temporal, description, this.queryTimeoutMs).catch(() => null),
    ]);
    return {
      summary: status ? { ...summary, ...summaryFromStatus(status) } : summary,
      status,
      result,
      spec: start?.input ? specOverview(start.input.spec) : null,
      profiles: start?.profiles ? { count: start.profiles.profileIds.length, mix: start.profiles.mix } : null,
      runId: description.runId,
      historyLength: description.historyLength,
    };
  }

  /** Sends a control signal to a running rollout; the workflow applies it on its next task. */
  async control(rolloutId: string, kind: ControlKind, request: ControlRequest): Promise<void> {
    const handle = await this.runningHandle(rolloutId);
    await this.bounded(() => handle.signal(CONTROL_SIGNALS[kind], request));
    this.statusCache.delete(rolloutId);
    this.rows.forget();
  }

  pause(rolloutId: string, request: ControlRequest = {}): Promise<void> {
    return this.control(rolloutId, 'pause', request);
  }

  resume(rolloutId: string, request: ControlRequest = {}): Promise<void> {
    return this.control(rolloutId, 'resume', request);
  }

  rollback(rolloutId: string, request: ControlRequest & { reason: string }): Promise<void> {
    return this.control(rolloutId, 'rollback', request);
  }

  promote(rolloutId: string, request: ControlRequest = {}): Promise<void> {
    return this.control(rolloutId, 'promote', request);
  }

  /**
   * Cancels the rollout's workflow: it takes the canary out of real traffic (finish() runs, unlike
   * on terminate), delivers its last alerts and ends `aborted`. For when the rollout itself cannot
   * be trusted any more; a rollback decision is the usual way to stop.
   */
  async abort(rolloutId: string): Promise<void> {
    const handle = await this.runningHandle(rolloutId);
    await this.bounded(() => handle.cancel());
    this.statusCache.delete(rolloutId);
    this.rows.forget();
  }

  /**
   * Changes policy fields through the workflow's update. The patch is checked against the
   * current policy first (a ValidationError naming `policy.<field>`) rather than sent to fail.
   */
  async setPolicy(rolloutId: string, patch: Partial<TrafficPolicy>): Promise<TrafficPolicy> {
    const handle = await this.runningHandle(rolloutId);
    const current = await this.status(rolloutId);
    mergePolicy(current.policy, patch);
    try {
      // An update waits for a worker to run the validator and handler: longer than a query, but bounded.
      const policy = await this.temporal.withDeadline(Date.now() + 4 * this.queryTimeoutMs, () =>
        handle.executeUpdate(setPolicyUpdate, { args: [patch] }),
      );
      this.statusCache.delete(rolloutId);
      return policy;
    } catch (error) {
      // The workflow's validator saw a newer policy than we did: its message names the field.
      if (error instanceof WorkflowUpdateFailedError && error.cause?.message)
        throw new PolicyUpdateRefusedError(rolloutId, error.cause.message);
      throw error;
    }
  }

  private handle(rolloutId: string) {
    return this.temporal.workflow.getHandle<RolloutWorkflow>(rolloutId);
  }

  /** Any call to Temporal that a person waits for gets a deadline (an unreachable server is a 503, not a hang). */
  private bounded<T>(call: () => Promise<T>): Promise<T> {
    return this.temporal.withDeadline(Date.now() + this.queryTimeoutMs, call);
  }

  private async asRollout<T>(rolloutId: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw new RolloutNotFoundError(rolloutId);
      throw error;
    }
  }

  /** The rollout's description; a missing workflow or one of another type is not a rollout. */
  private async describe(rolloutId: string) {
    const description = await this.asRollout(rolloutId, () =>
      this.bounded(() => this.handle(rolloutId).describe()),
    );
    if (description.type !== ROLLOUT_WORKFLOW_TYPE) throw new RolloutNotFoundError(rolloutId);
    return description;
  }

  private async runningHandle(rolloutId: string) {
    const description = await this.describe(rolloutId);
    if (description.status.name !== 'RUNNING')
      throw new RolloutEndedError(rolloutId, description.status.name);
    return this.handle(rolloutId);
  }
}
