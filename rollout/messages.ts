/**
 * Signals, queries and updates of the rollout workflow. The workflow, the CLI and the API
 * import these same constants, so a name cannot drift between sender and receiver.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { TrafficPolicy } from './spec';
import type { RolloutStatus } from './types';

export interface ControlRequest {
  /** Who or what asked, e.g. `cli:alice` or `dashboard`. */
  by?: string;
  reason?: string;
}

export const pauseSignal = defineSignal<[ControlRequest?]>('pause');
export const resumeSignal = defineSignal<[ControlRequest?]>('resume');
export const rollbackSignal = defineSignal<[ControlRequest]>('rollback');
export const promoteSignal = defineSignal<[ControlRequest?]>('promote');

export const statusQuery = defineQuery<RolloutStatus>('status');

/** Changes policy fields at run time; the validator rejects bad input before it is recorded. */
export const setPolicyUpdate = defineUpdate<TrafficPolicy, [Partial<TrafficPolicy>]>('setPolicy');

export const ROLLOUT_WORKFLOW_TYPE = 'rolloutWorkflow';
export const ROLLOUT_TASK_QUEUE = 'rollouts';
export const LOADGEN_TASK_QUEUE = 'loadgen';
