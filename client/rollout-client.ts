/**
 * Starting and steering rollouts through the Temporal client: the CLI, the API and the tests
 * share these so the workflow id rule and the message names cannot drift.
 */
import {
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  WorkflowExecutionAlreadyStartedError,
  type Client,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { ROLLOUT_TASK_QUEUE, statusQuery } from '../rollout/messages';
import type { rolloutWorkflow } from '../workflows/rollout';
import { rolloutIdFor, type RolloutSpec } from '../rollout/spec';
import type { RolloutResult, RolloutStatus } from '../rollout/types';

/** The workflow's signature, for typed handles: entry points never import workflow code. */
export type RolloutWorkflow = typeof rolloutWorkflow;

export interface StartRolloutOptions {
  taskQueue?: string;
  /**
   * Allow a new rollout of a service+version whose earlier rollout has ended (e.g. after a
   * rollback). It runs under its own id, `<id>+r2`, `+r3`, ...: probe results, samples, ticks and
   * alert deliveries are keyed by rollout id, and a new run must not find the old run's.
   */
  allowRestart?: boolean;
}

const MAX_RESTARTS = 100;

export async function startRollout(
  client: Client,
  spec: RolloutSpec,
  options: StartRolloutOptions = {},
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof rolloutWorkflow>> {
  const baseId = rolloutIdFor(spec.service, spec.version);
  const start = (workflowId: string) =>
    client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
      taskQueue: options.taskQueue ?? ROLLOUT_TASK_QUEUE,
      workflowId,
      args: [{ spec }],
      staticSummary: `Canary rollout of ${spec.service} ${spec.version}`,
      memo: {
        service: spec.service,
        version: spec.version,
        baseline: spec.targets.baseline.url,
        canary: spec.targets.canary.url,
      },
      // The same deployment started twice is refused, not duplicated, and an id is never reused.
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    });
  for (let run = 1; ; run++) {
    const workflowId = run === 1 ? baseId : `${baseId}+r${run}`;
    try {
      return await start(workflowId);
    } catch (error) {
      if (!options.allowRestart || !(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
      const { status } = await client.workflow.getHandle(workflowId).describe();
      // A run still going is never doubled, restart or not.
      if (status.name === 'RUNNING' || run >= MAX_RESTARTS) throw error;
    }
  }
}

/**
 * Polls a rollout's status every second until it ends and returns its result; `onStatus` sees
 * each status (a query that fails, e.g. while the worker restarts, is skipped). A failed or
 * terminated workflow rejects with the client's error, never as an unhandled rejection.
 */
export async function watchRollout(
  client: Client,
  rolloutId: string,
  onStatus: (status: RolloutStatus) => void | Promise<void>,
  pollMs = 1000,
): Promise<RolloutResult> {
  const handle = client.workflow.getHandle<typeof rolloutWorkflow>(rolloutId);
  let ended = false;
  const result = handle.result();
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
