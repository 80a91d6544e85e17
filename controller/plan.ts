/**
 * What the controller does for one CanaryRollout, decided from what it sees: the resource and
 * the state of the workflow its status names. Pure, so its rules are tested on their own
 * (test/controller/plan.test.ts); the controller carries the actions out and plans again.
 */
import type { RolloutPhase } from '../rollout/types';

export interface ControllerView {
  generation: number;
  deleting: boolean;
  hasFinalizer: boolean;
  paused: boolean;
  /** Hash of the rollout spec the resource asks for; undefined when the spec is invalid. */
  wantedSpecHash: string | undefined;
  promoteRequested: boolean;
  /** The reason given, when a rollback is requested by annotation. */
  rollbackRequested: string | undefined;
  status: { rolloutId?: string; specHash?: string; pausedBySpec?: boolean };
  /** The workflow `status.rolloutId` names: undefined when there is none. */
  workflow: { running: boolean; phase: RolloutPhase | undefined } | undefined;
}

export type ControllerAction =
  | { kind: 'add-finalizer' }
  | { kind: 'remove-finalizer' }
  | { kind: 'start'; restart: boolean }
  | { kind: 'signal'; signal: 'pause' | 'resume' | 'promote' | 'rollback'; reason: string }
  | { kind: 'clear-annotation'; annotation: 'promote' | 'rollback' };

/**
 * Rules: a deleted resource rolls its running rollout back and only then lets go (finalizer);
 * each new rollout spec gets one workflow, started once the previous one has ended (a running
 * one is rolled back first); spec.paused pauses, and resumes only what it paused; annotations
 * promote or roll back once and are cleared.
 */
export function planReconcile(view: ControllerView): ControllerAction[] {
  const running = view.workflow?.running === true;
  // A workflow that has decided (promoted, rolled back) is only finishing: nothing to signal.
  const deciding = running && !['promoted', 'rolled_back', 'aborted'].includes(view.workflow?.phase ?? '');
  if (view.deleting) {
    if (!view.hasFinalizer) return [];
    if (deciding) return [{ kind: 'signal', signal: 'rollback', reason: 'the CanaryRollout was deleted' }];
    if (running) return [];
    return [{ kind: 'remove-finalizer' }];
  }
  if (!view.hasFinalizer) return [{ kind: 'add-finalizer' }];

  const actions: ControllerAction[] = [];
  const current = view.wantedSpecHash !== undefined && view.status.specHash === view.wantedSpecHash;
  if (!current && view.wantedSpecHash !== undefined) {
    if (deciding)
      return [
        {
          kind: 'signal',
          signal: 'rollback',
          reason: `superseded by generation ${view.generation} of the CanaryRollout`,
        },
      ];
    if (running) return [];
    return [{ kind: 'start', restart: view.status.rolloutId !== undefined }];
  }
  if (deciding) {
    const phase = view.workflow?.phase;
    if (view.paused && phase !== 'paused')
      actions.push({ kind: 'signal', signal: 'pause', reason: 'spec.paused is true' });
    if (!view.paused && phase === 'paused' && view.status.pausedBySpec === true)
      actions.push({ kind: 'signal', signal: 'resume', reason: 'spec.paused is false' });
    if (view.rollbackRequested !== undefined)
      actions.push({
        kind: 'signal',
        signal: 'rollback',
        reason: view.rollbackRequested || 'requested by annotation',
      });
    else if (view.promoteRequested)
      actions.push({ kind: 'signal', signal: 'promote', reason: 'requested by annotation' });
  }
  if (view.rollbackRequested !== undefined)
    actions.push({ kind: 'clear-annotation', annotation: 'rollback' });
  if (view.promoteRequested) actions.push({ kind: 'clear-annotation', annotation: 'promote' });
  return actions;
}
