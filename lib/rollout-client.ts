/**
 * Starting and steering rollouts through the Temporal client: the CLI, the API and the tests
 * share these so the workflow id rule and the message names cannot drift.
 */
import {
  WorkflowIdConflictPolicy,
  WorkflowIdReusePolicy,
  type Client,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { ROLLOUT_TASK_QUEUE, statusQuery } from '../workflows/messages';
import type { rolloutWorkflow } from '../workflows/rollout';
import { rolloutIdFor, type RolloutSpec } from '../workflows/spec';
import type { RolloutStatus } from '../workflows/types';

export interface StartRolloutOptions {
  taskQueue?: string;
  /** Allow a new rollout of a service+version whose earlier rollout has ended (e.g. after a rollback). */
  allowRestart?: boolean;
}

export async function startRollout(
  client: Client,
  spec: RolloutSpec,
  options: StartRolloutOptions = {},
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof rolloutWorkflow>> {
  return client.workflow.start<typeof rolloutWorkflow>('rolloutWorkflow', {
    taskQueue: options.taskQueue ?? ROLLOUT_TASK_QUEUE,
    workflowId: rolloutIdFor(spec.service, spec.version),
    args: [{ spec }],
    staticSummary: `Canary rollout of ${spec.service} ${spec.version}`,
    memo: {
      service: spec.service,
      version: spec.version,
      baseline: spec.targets.baseline.url,
      canary: spec.targets.canary.url,
    },
    // The same deployment started twice is refused, not duplicated.
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
    workflowIdReusePolicy: options.allowRestart
      ? WorkflowIdReusePolicy.ALLOW_DUPLICATE
      : WorkflowIdReusePolicy.REJECT_DUPLICATE,
  });
}

export async function rolloutStatus(client: Client, rolloutId: string): Promise<RolloutStatus> {
  return client.workflow.getHandle<typeof rolloutWorkflow>(rolloutId).query(statusQuery);
}
