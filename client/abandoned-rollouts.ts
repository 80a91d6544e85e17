/**
 * Rollouts that ended without finish(): terminated, failed or timed out. finish() is what takes
 * the canary out of real traffic, so such a rollout may have left it serving a share that no one
 * is watching any more. A rollout worker looks for them when it starts and raises one critical
 * `abandoned` alert per run (its key names the run, so the delivery store deduplicates it across
 * worker restarts for as long as it keeps delivery records).
 */
import type { Client } from '@temporalio/client';
import type { AlertDispatcherPort } from '../alerts/dispatcher';
import type { Logger } from '../platform/logger';
import { ROLLOUT_WORKFLOW_TYPE, statusQuery } from '../rollout/messages';
import type { AlertEvent, RolloutStatus } from '../rollout/types';
import { checkSpecAgainstWorkerPolicy, type WorkerPolicy } from '../rollout/worker-policy';
import { messageOf } from '../core/errors';
import { readRunStart } from './rollout-detail';
import type { RolloutStore } from './rollout-store';

const ABNORMAL_STATUSES = ['Terminated', 'Failed', 'TimedOut'];

export interface AbandonedRollout {
  rolloutId: string;
  runId: string;
  /** TERMINATED, FAILED or TIMED_OUT. */
  status: string;
  closedAt: number;
  /** The highest canary share the rollout's records show at its end: last tick, status, applied share. */
  share: number;
  tick: number;
}

export interface AbandonedRolloutDeps {
  temporal: Client;
  store: Pick<RolloutStore, 'lastTick'>;
  alerts: AlertDispatcherPort;
  /** The worker's own: a spec's sinks it would refuse get no alert (the log still does). */
  workerPolicy: WorkerPolicy;
  logger: Logger;
  /** Rollouts closed within this many days (the delivery records' retention: older ones would alert again). */
  lookbackDays: number;
  timeoutMs?: number;
}

/** The rollouts closed abnormally within the lookback whose canary was above 0 % at the end. */
export async function findAbandonedRollouts(
  deps: Pick<AbandonedRolloutDeps, 'temporal' | 'store' | 'lookbackDays' | 'timeoutMs'>,
): Promise<AbandonedRollout[]> {
  const timeoutMs = deps.timeoutMs ?? 10_000;
  const since = new Date(Date.now() - deps.lookbackDays * 86_400_000).toISOString();
  const statuses = ABNORMAL_STATUSES.map((status) => `ExecutionStatus = '${status}'`).join(' OR ');
  const query = `WorkflowType = '${ROLLOUT_WORKFLOW_TYPE}' AND (${statuses}) AND CloseTime > '${since}'`;
  const found: AbandonedRollout[] = [];
  for await (const execution of deps.temporal.workflow.list({ query })) {
    const [last, status] = await Promise.all([
      deps.store.lastTick(execution.workflowId),
      lastStatus(deps.temporal, execution.workflowId, execution.runId, timeoutMs),
    ]);
    const share = Math.max(last?.shareAfter ?? 0, status?.share ?? 0, status?.appliedShare ?? 0);
    if (share <= 0) continue;
    found.push({
      rolloutId: execution.workflowId,
      runId: execution.runId,
      status: execution.status.name,
      closedAt: execution.closeTime?.getTime() ?? Date.now(),
      share,
      tick: Math.max(last?.tick ?? 0, status?.tick ?? 0),
    });
  }
  return found;
}

/** The status a closed run ends with (a worker replays it); null when no worker answers in time. */
async function lastStatus(
  temporal: Client,
  workflowId: string,
  runId: string,
  timeoutMs: number,
): Promise<RolloutStatus | null> {
  try {
    return await temporal.withDeadline(Date.now() + timeoutMs, () =>
      temporal.workflow.getHandle(workflowId, runId).query(statusQuery),
    );
  } catch {
    return null;
  }
}

/** Finds abandoned rollouts and alerts each once; returns what it found. Never throws for one rollout. */
export async function alertAbandonedRollouts(deps: AbandonedRolloutDeps): Promise<AbandonedRollout[]> {
  const abandoned = await findAbandonedRollouts(deps);
  for (const rollout of abandoned) {
    try {
      await deps.alerts.dispatch(...(await abandonedAlert(deps, rollout)));
    } catch (error) {
      deps.logger.error(
        { rolloutId: rollout.rolloutId, runId: rollout.runId, error: messageOf(error) },
        'could not alert a rollout that ended with the canary in traffic',
      );
    }
  }
  return abandoned;
}

async function abandonedAlert(
  deps: AbandonedRolloutDeps,
  rollout: AbandonedRollout,
): Promise<Parameters<AlertDispatcherPort['dispatch']>> {
  const run = { workflowId: rollout.rolloutId, runId: rollout.runId };
  const { input } = await readRunStart(deps.temporal, run, deps.timeoutMs ?? 10_000);
  const spec = input?.spec;
  let sinks = spec?.alerts.sinks ?? [];
  try {
    if (spec) checkSpecAgainstWorkerPolicy(spec, deps.workerPolicy);
  } catch (error) {
    deps.logger.warn(
      { rolloutId: rollout.rolloutId, error: messageOf(error) },
      "the rollout's alert sinks are outside this worker's policy: alerting the log only",
    );
    sinks = [];
  }
  const how = rollout.status.toLowerCase().replace('_', ' ');
  const event: AlertEvent = {
    key: `${rollout.rolloutId}/abandoned/${rollout.runId}`,
    rolloutId: rollout.rolloutId,
    service: spec?.service ?? '',
    version: spec?.version ?? '',
    kind: 'abandoned',
    severity: 'critical',
    tick: rollout.tick,
    summary: `the rollout ${how} with the canary at ${rollout.share} % of real traffic and nothing took it out: set the router's canary weight to 0 (or start the rollout again with --allow-restart)`,
    anomalies: [],
    shareBefore: rollout.share,
    shareAfter: rollout.share,
    links: spec?.links ?? {},
    at: rollout.closedAt,
  };
  return [event, sinks];
}
