/**
 * Rollouts as rows: one visibility query (bounded), newest first, then what each row needs of
 * its workflow (a running one's status query, a completed one's result) with a bounded number in
 * flight. Finished rollouts never change, so their rows are kept (bounded).
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { ROLLOUT_WORKFLOW_TYPE } from '../rollout/messages';
import type { RolloutResult, RolloutStatus, VerdictDigest } from '../rollout/types';
import { messageOf } from '../core/errors';

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

export interface ListedRollout {
  summary: RolloutSummary;
  /** When the current run started, as visibility has it (the list's order). */
  runStartedAt: number;
}

export interface ListOptions {
  /** Running rollouts only, or all that visibility still holds. */
  running: boolean;
  limit: number;
}

/** What a row asks of one rollout; each call is bounded by its caller. */
export interface RolloutReads {
  status(rolloutId: string): Promise<RolloutStatus>;
  result(rolloutId: string): Promise<RolloutResult>;
  /** The last verdict of a finished rollout (from its tick log); rows have none without it. */
  lastVerdictOf?(rolloutId: string): Promise<VerdictDigest | null>;
}

export type ExecutionRecord = Pick<
  WorkflowExecutionInfo,
  'workflowId' | 'status' | 'memo' | 'startTime' | 'closeTime'
>;

const FINISHED_ROWS_KEPT = 2000;

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

export function summaryFromStatus(status: RolloutStatus): Partial<RolloutSummary> {
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

export class RolloutList {
  /** Finished rollouts never change: their summaries are kept (bounded). */
  private readonly finished = new Map<string, RolloutSummary>();
  private readonly cache = new Map<string, { at: number; value: Promise<ListedRollout[]> }>();

  constructor(
    private readonly temporal: Client,
    private readonly reads: RolloutReads,
    private readonly options: { listTimeoutMs: number; concurrency: number; cacheMs: number },
  ) {}

  /** Rollouts, newest first; an answer younger than `cacheMs` is served again. */
  async list(options: ListOptions): Promise<ListedRollout[]> {
    const cacheKey = `${options.running}:${options.limit}`;
    const cached = this.cache.get(cacheKey);
    if (cached && Date.now() - cached.at < this.options.cacheMs) return cached.value;
    const value = this.listUncached(options);
    this.cache.set(cacheKey, { at: Date.now(), value });
    value.catch(() => this.cache.delete(cacheKey));
    return value;
  }

  /** After a control the next list asks again. */
  forget(): void {
    this.cache.clear();
  }

  private async listUncached(options: ListOptions): Promise<ListedRollout[]> {
    const query = `WorkflowType = '${ROLLOUT_WORKFLOW_TYPE}'${options.running ? " AND ExecutionStatus = 'Running'" : ''}`;
    const executions: WorkflowExecutionInfo[] = [];
    // Bounded: a scrape or a page load must not hang on an unreachable Temporal.
    await this.temporal.withDeadline(Date.now() + this.options.listTimeoutMs, async () => {
      const pageSize = Math.min(options.limit, 1000);
      for await (const execution of this.temporal.workflow.list({ query, pageSize })) {
        executions.push(execution);
        if (executions.length >= options.limit) break;
      }
    });
    // Visibility lists running ones first, then by close time.
    executions.sort((a, b) => b.startTime.getTime() - a.startTime.getTime());
    return mapLimited(executions, this.options.concurrency, async (execution) => ({
      summary: await this.summarize(execution),
      runStartedAt: execution.startTime.getTime(),
    }));
  }

  async summarize(execution: ExecutionRecord): Promise<RolloutSummary> {
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
        return { ...base, ...summaryFromStatus(await this.reads.status(execution.workflowId)) };
      } catch (error) {
        return { ...base, phase: 'unknown', statusError: messageOf(error) };
      }
    }
    let summary = base;
    if (execution.status.name === 'COMPLETED') {
      try {
        const result = await this.reads.result(execution.workflowId);
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
    summary.lastVerdict = this.reads.lastVerdictOf
      ? await this.reads.lastVerdictOf(execution.workflowId).catch(() => null)
      : null;
    if (!summary.statusError) this.remember(summary);
    return summary;
  }

  private remember(summary: RolloutSummary): void {
    if (this.finished.size >= FINISHED_ROWS_KEPT) {
      const oldest = this.finished.keys().next().value;
      if (oldest !== undefined) this.finished.delete(oldest);
    }
    this.finished.set(summary.rolloutId, summary);
  }
}
