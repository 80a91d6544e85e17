/**
 * The dashboard's view of rollouts through the Temporal client only: visibility lists them,
 * the workflow's status query says where a running one is, the workflow result says how a
 * finished one ended, the start event of the current run gives the spec and the profile sample
 * (or the carried-over state after continue-as-new), and controls are the workflow's own
 * signals and update. Nothing here reaches into workflow internals.
 */
import {
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowExecutionInfo,
} from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import {
  pauseSignal,
  promoteSignal,
  resumeSignal,
  rollbackSignal,
  ROLLOUT_WORKFLOW_TYPE,
  setPolicyUpdate,
  statusQuery,
  type ControlRequest,
} from '../rollout/messages';
import type { RolloutWorkflow } from '../client/rollout-client';
import { mergePolicy, type RolloutSpec, type TrafficPolicy } from '../rollout/spec';
import type {
  ProfileSelection,
  RolloutInput,
  RolloutResult,
  RolloutStatus,
  VerdictDigest,
} from '../rollout/types';
import { ValidationError } from '../core/validation';

/** A row of the rollouts list. `phase` is the workflow's phase, or the execution status once it did not complete. */
export interface RolloutSummary {
  rolloutId: string;
  service: string;
  version: string;
  phase: string;
  share: number | null;
  tick: number | null;
  startedAt: number;
  closedAt: number | null;
  execution: string;
  lastVerdict: VerdictDigest | null;
  anomalyCount: number | null;
  pausedReason: string | null;
  /** Why the live status is missing (no worker answered the query in time), if it is. */
  statusError?: string;
}

/** What the dashboard shows of the spec: no sink options (a webhook URL may carry a token). */
export interface SpecOverview {
  targets: RolloutSpec['targets'];
  router: string;
  probe: RolloutSpec['probe'];
  intervalMs: number;
  analysis: { method: string; alpha: number };
  alertSinks: string[];
  onAnomaly: RolloutSpec['onAnomaly'];
  profiles: { criteria: RolloutSpec['profiles']['criteria']; sampleSize: number };
}

export interface RolloutDetail {
  summary: RolloutSummary;
  /** The live status (status query); null when the workflow could not answer. */
  status: RolloutStatus | null;
  result: RolloutResult | null;
  spec: SpecOverview | null;
  /** The sample of simulated users the rollout probes with, by stratum. */
  profiles: { count: number; mix: Record<string, number> } | null;
  runId: string;
  historyLength: number;
}

export type ControlKind = 'pause' | 'resume' | 'rollback' | 'promote';

export class RolloutNotFoundError extends Error {
  constructor(rolloutId: string) {
    super(`no rollout ${rolloutId}`);
    this.name = 'RolloutNotFoundError';
  }
}

export class RolloutEndedError extends Error {
  constructor(
    rolloutId: string,
    readonly execution: string,
  ) {
    super(`rollout ${rolloutId} has ended (${execution.toLowerCase()}): it takes no more controls`);
    this.name = 'RolloutEndedError';
  }
}

export interface DirectoryOptions {
  /** How long a status query may take before the row shows without it. */
  queryTimeoutMs?: number;
  /** How long listing rollouts (visibility) may take. */
  listTimeoutMs?: number;
  /** Status queries in flight at once while listing. */
  concurrency?: number;
  /** Answers younger than this are served from memory (many viewers, one query). */
  cacheMs?: number;
}

const TERMINAL_CACHE_LIMIT = 2000;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function overview(spec: RolloutSpec): SpecOverview {
  return {
    targets: spec.targets,
    router: spec.router.kind,
    probe: spec.probe,
    intervalMs: spec.intervalMs,
    analysis: { method: spec.analysis.method, alpha: spec.analysis.alpha },
    alertSinks: spec.alerts.sinks.map((sink) => sink.kind),
    onAnomaly: spec.onAnomaly,
    profiles: { criteria: spec.profiles.criteria, sampleSize: spec.profiles.sampleSize },
  };
}

/** Runs `work` over `items` with at most `limit` at once, keeping the order. */
async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  });
  await Promise.all(lanes);
  return results;
}

export class RolloutDirectory {
  private readonly queryTimeoutMs: number;
  private readonly listTimeoutMs: number;
  private readonly concurrency: number;
  private readonly cacheMs: number;
  private readonly statusCache = new Map<string, { at: number; value: Promise<RolloutStatus> }>();
  /** Finished rollouts never change: their summaries are kept (bounded). */
  private readonly finished = new Map<string, RolloutSummary>();
  private readonly listCache = new Map<string, { at: number; value: Promise<RolloutSummary[]> }>();

  constructor(
    readonly client: Client,
    private readonly lastVerdictOf: (rolloutId: string) => Promise<VerdictDigest | null>,
    options: DirectoryOptions = {},
  ) {
    this.queryTimeoutMs = options.queryTimeoutMs ?? 3000;
    this.listTimeoutMs = options.listTimeoutMs ?? 5000;
    this.concurrency = options.concurrency ?? 8;
    this.cacheMs = options.cacheMs ?? 1000;
  }

  get namespace(): string {
    return this.client.options.namespace;
  }

  /** Rollouts, newest first: running ones only, or all that visibility still holds. */
  async list(options: { running: boolean; limit: number }): Promise<RolloutSummary[]> {
    const cacheKey = `${options.running}:${options.limit}`;
    const cached = this.listCache.get(cacheKey);
    if (cached && Date.now() - cached.at < this.cacheMs) return cached.value;
    const value = this.listUncached(options);
    this.listCache.set(cacheKey, { at: Date.now(), value });
    value.catch(() => this.listCache.delete(cacheKey));
    return value;
  }

  private async listUncached(options: { running: boolean; limit: number }): Promise<RolloutSummary[]> {
    const query = `WorkflowType = '${ROLLOUT_WORKFLOW_TYPE}'${options.running ? " AND ExecutionStatus = 'Running'" : ''}`;
    const executions: WorkflowExecutionInfo[] = [];
    // Bounded: a scrape or a page load must not hang on an unreachable Temporal.
    await this.client.withDeadline(Date.now() + this.listTimeoutMs, async () => {
      const pageSize = Math.min(options.limit, 1000);
      for await (const execution of this.client.workflow.list({ query, pageSize })) {
        executions.push(execution);
        if (executions.length >= options.limit) break;
      }
    });
    executions.sort((a, b) => b.startTime.getTime() - a.startTime.getTime());
    return mapLimited(executions, this.concurrency, (execution) => this.summarize(execution));
  }

  private async summarize(
    execution: Pick<WorkflowExecutionInfo, 'workflowId' | 'status' | 'memo' | 'startTime' | 'closeTime'>,
  ): Promise<RolloutSummary> {
    const known = this.finished.get(execution.workflowId);
    if (known && known.execution === execution.status.name) return known;
    const memo = (execution.memo ?? {}) as { service?: unknown; version?: unknown };
    const base: RolloutSummary = {
      rolloutId: execution.workflowId,
      service: typeof memo.service === 'string' ? memo.service : '',
      version: typeof memo.version === 'string' ? memo.version : '',
      phase: execution.status.name.toLowerCase(),
      share: null,
      tick: null,
      startedAt: execution.startTime.getTime(),
      closedAt: execution.closeTime?.getTime() ?? null,
      execution: execution.status.name,
      lastVerdict: null,
      anomalyCount: null,
      pausedReason: null,
    };
    if (execution.status.name === 'RUNNING') {
      try {
        return { ...base, ...fromStatus(await this.status(execution.workflowId)) };
      } catch (error) {
        return { ...base, phase: 'unknown', statusError: messageOf(error) };
      }
    }
    let summary = base;
    if (execution.status.name === 'COMPLETED') {
      try {
        const result = await this.result(execution.workflowId);
        summary = {
          ...base,
          phase: result.outcome,
          share: result.finalShare,
          tick: result.ticks,
          anomalyCount: result.anomalyCount,
        };
      } catch (error) {
        summary = { ...base, statusError: messageOf(error) };
      }
    }
    summary.lastVerdict = await this.lastVerdictOf(execution.workflowId).catch(() => null);
    if (!summary.statusError) this.remember(summary);
    return summary;
  }

  private remember(summary: RolloutSummary): void {
    if (this.finished.size >= TERMINAL_CACHE_LIMIT) {
      const oldest = this.finished.keys().next().value;
      if (oldest !== undefined) this.finished.delete(oldest);
    }
    this.finished.set(summary.rolloutId, summary);
  }

  /** The workflow's status query, cached briefly and bounded by the query timeout. */
  async status(rolloutId: string): Promise<RolloutStatus> {
    const cached = this.statusCache.get(rolloutId);
    if (cached && Date.now() - cached.at < this.cacheMs) return cached.value;
    const value = this.client.withDeadline(Date.now() + this.queryTimeoutMs, () =>
      this.client.workflow.getHandle<RolloutWorkflow>(rolloutId).query(statusQuery),
    );
    this.statusCache.set(rolloutId, { at: Date.now(), value });
    value.catch(() => this.statusCache.delete(rolloutId));
    if (this.statusCache.size > 10_000) this.statusCache.clear();
    return value;
  }

  private async result(rolloutId: string): Promise<RolloutResult> {
    return this.client.withDeadline(Date.now() + this.queryTimeoutMs, () =>
      this.client.workflow.getHandle<RolloutWorkflow>(rolloutId).result(),
    );
  }

  /** Any call to Temporal that a person waits for gets a deadline (an unreachable server is a 503, not a hang). */
  private bounded<T>(call: () => Promise<T>): Promise<T> {
    return this.client.withDeadline(Date.now() + this.queryTimeoutMs, call);
  }

  /** The rollout's handle and description; a missing workflow or one of another type is not a rollout. */
  private async describeRollout(rolloutId: string) {
    const handle = this.client.workflow.getHandle<RolloutWorkflow>(rolloutId);
    try {
      const description = await this.bounded(() => handle.describe());
      if (description.type !== ROLLOUT_WORKFLOW_TYPE) throw new RolloutNotFoundError(rolloutId);
      return { handle, description };
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw new RolloutNotFoundError(rolloutId);
      throw error;
    }
  }

  async detail(rolloutId: string): Promise<RolloutDetail> {
    const { description } = await this.describeRollout(rolloutId);
    const running = description.status.name === 'RUNNING';
    const [summary, status, result, start] = await Promise.all([
      this.summarize(description),
      // A finished workflow still answers queries while a worker can replay it; it may not.
      this.status(rolloutId).catch(() => null),
      !running && description.status.name === 'COMPLETED' ? this.result(rolloutId).catch(() => null) : null,
      this.startOfRun(rolloutId, description.runId).catch(() => null),
    ]);
    return {
      summary: status ? { ...summary, ...fromStatus(status) } : summary,
      status,
      result,
      spec: start?.input ? overview(start.input.spec) : null,
      profiles: start?.profiles ? { count: start.profiles.profileIds.length, mix: start.profiles.mix } : null,
      runId: description.runId,
      historyLength: description.historyLength,
    };
  }

  /**
   * The input of the current run and the profile sample: carried over after continue-as-new,
   * else the result of the first run's lookupProfiles local activity (its marker, near the top).
   */
  private async startOfRun(
    rolloutId: string,
    runId: string,
  ): Promise<{ input: RolloutInput | null; profiles: ProfileSelection | null }> {
    const response = await this.client.withDeadline(Date.now() + this.queryTimeoutMs, () =>
      this.client.workflowService.getWorkflowExecutionHistory({
        namespace: this.namespace,
        execution: { workflowId: rolloutId, runId },
        maximumPageSize: 40,
      }),
    );
    const events = response.history?.events ?? [];
    const started = events[0]?.workflowExecutionStartedEventAttributes;
    const input = started?.input?.payloads?.[0]
      ? await this.decode<RolloutInput>(started.input.payloads[0])
      : null;
    if (input?.carryOver) return { input, profiles: input.carryOver.profiles };
    for (const event of events) {
      const details = event.markerRecordedEventAttributes?.details;
      if (!details) continue;
      const data = details.data?.payloads?.[0];
      const result = details.result?.payloads?.[0];
      if (!data || !result) continue;
      const marker = await this.decode<{ activity_type?: string }>(data);
      if (marker?.activity_type === 'lookupProfiles')
        return { input, profiles: await this.decode<ProfileSelection>(result) };
    }
    return { input, profiles: null };
  }

  private async decode<T>(payload: Payload): Promise<T | null> {
    const converter = this.client.options.loadedDataConverter;
    let payloads = [payload];
    for (const codec of [...converter.payloadCodecs].reverse()) payloads = await codec.decode(payloads);
    return converter.payloadConverter.fromPayload<T>(payloads[0] as Payload);
  }

  /** Sends a control signal to a running rollout. */
  async control(rolloutId: string, kind: ControlKind, request: ControlRequest): Promise<void> {
    const handle = await this.runningHandle(rolloutId);
    const signal = {
      pause: pauseSignal,
      resume: resumeSignal,
      rollback: rollbackSignal,
      promote: promoteSignal,
    }[kind];
    await this.bounded(() => handle.signal(signal, request));
    this.statusCache.delete(rolloutId);
    this.listCache.clear();
  }

  /**
   * Changes policy fields through the workflow's update. The patch is checked against the
   * current policy first, so a bad field is a 400 naming it rather than a failed update.
   */
  async setPolicy(rolloutId: string, patch: Partial<TrafficPolicy>): Promise<TrafficPolicy> {
    const handle = await this.runningHandle(rolloutId);
    const current = await this.status(rolloutId);
    mergePolicy(current.policy, patch);
    try {
      // An update waits for a worker to run the validator and handler: longer than a query, but bounded.
      const policy = await this.client.withDeadline(Date.now() + 4 * this.queryTimeoutMs, () =>
        handle.executeUpdate(setPolicyUpdate, { args: [patch] }),
      );
      this.statusCache.delete(rolloutId);
      return policy;
    } catch (error) {
      // The workflow's validator saw a newer policy than we did: its message names the field.
      if (error instanceof WorkflowUpdateFailedError && error.cause?.message)
        throw new ValidationError(parseIssues(error.cause.message));
      throw error;
    }
  }

  private async runningHandle(rolloutId: string) {
    const { handle, description } = await this.describeRollout(rolloutId);
    if (description.status.name !== 'RUNNING')
      throw new RolloutEndedError(rolloutId, description.status.name);
    return handle;
  }
}

function fromStatus(status: RolloutStatus): Partial<RolloutSummary> {
  return {
    service: status.service,
    version: status.version,
    phase: status.phase,
    share: status.share,
    tick: status.tick,
    startedAt: status.startedAt,
    lastVerdict: status.lastVerdicts.at(-1) ?? null,
    anomalyCount: status.anomalyCount,
    pausedReason: status.pausedReason,
  };
}

/** `policy.stepUp: must be > 0; policy.x: ...` back into field issues. */
function parseIssues(message: string) {
  return message.split('; ').map((part) => {
    const colon = part.indexOf(': ');
    return colon > 0
      ? { field: part.slice(0, colon), rule: part.slice(colon + 2) }
      : { field: 'body', rule: part };
  });
}
