/**
 * `canary controller`: watches CanaryRollout resources (list, then watch from that
 * resourceVersion with bookmarks; a relist when the server says 410 Gone; a periodic resync)
 * and drives the same rollout workflow as the CLI through RolloutClient. It writes .status
 * through the status subresource and holds a finalizer so that deleting a resource rolls the
 * canary back. With several replicas only the holder of a Lease reconciles.
 */
import type { Logger } from 'pino';
import { type RolloutClient } from '../client/rollout-client';
import {
  RolloutAlreadyStartedError,
  RolloutEndedError,
  RolloutNotFoundError,
} from '../client/rollout-errors';
import { validateComponentConfig } from '../client/validate-spec';
import { messageOf } from '../core/errors';
import { ValidationError } from '../core/validation';
import { KubernetesApiError, type KubernetesClient, type WatchEvent } from '../platform/kubernetes';
import { rolloutIdFor } from '../rollout/spec';
import type { RolloutOutcome, RolloutStatus } from '../rollout/types';
import {
  canaryRolloutsRef,
  phaseName,
  PROMOTE_ANNOTATION,
  ROLLBACK_ANNOTATION,
  ROLLBACK_FINALIZER,
  rolloutSpecOf,
  specHash,
  statusFromRollout,
  type CanaryRollout,
  type CanaryRolloutCondition,
  type CanaryRolloutStatus,
} from './canary-rollout';
import { LeaderElector, sleep } from './leader-election';
import { planReconcile, type ControllerAction, type ControllerView } from './plan';

export const CONTROLLER_FIELD_MANAGER = 'canary-controller';

export interface CanaryControllerOptions {
  kubernetes: KubernetesClient;
  rollouts: RolloutClient;
  logger: Logger;
  /** Watch one namespace; all namespaces when absent. */
  namespace?: string;
  /** Reconcile every known resource this often (status refresh, missed events). */
  resyncMs?: number;
  leaderElection?: { namespace: string; name: string; identity: string; leaseDurationSeconds: number };
}

/** Who the controller says it is in the signals it sends (shows in the rollout's history). */
const BY = 'canary-controller';

export class CanaryController {
  private readonly known = new Map<string, CanaryRollout>();
  private readonly dirty = new Set<string>();
  private wake: (() => void) | undefined;

  constructor(private readonly options: CanaryControllerOptions) {}

  /** Runs until `signal` aborts: campaigns for the Lease (if configured), then reconciles. */
  async run(signal: AbortSignal): Promise<void> {
    const election = this.options.leaderElection;
    if (!election) return this.lead(signal);
    const elector = new LeaderElector(this.options.kubernetes, election);
    await elector.run(async (leadership) => {
      this.options.logger.info({ identity: election.identity }, 'leading: reconciling CanaryRollouts');
      await this.lead(leadership);
      this.options.logger.info({ identity: election.identity }, 'no longer leading');
    }, signal);
  }

  private async lead(signal: AbortSignal): Promise<void> {
    this.known.clear();
    this.dirty.clear();
    await Promise.all([this.watchLoop(signal), this.workLoop(signal), this.resyncLoop(signal)]);
  }

  private async watchLoop(signal: AbortSignal): Promise<void> {
    const ref = canaryRolloutsRef(this.options.namespace);
    while (!signal.aborted) {
      try {
        const listed = await this.options.kubernetes.list<CanaryRollout>(ref);
        const seen = new Set<string>();
        for (const item of listed.items) {
          seen.add(keyOf(item));
          this.remember(item);
        }
        for (const key of [...this.known.keys()]) if (!seen.has(key)) this.known.delete(key);
        let resourceVersion = listed.resourceVersion;
        let gone = false;
        while (!signal.aborted && !gone) {
          await this.options.kubernetes.watch<CanaryRollout>(
            ref,
            resourceVersion,
            (event: WatchEvent<CanaryRollout>) => {
              if (event.type === 'ERROR') {
                gone = true; // 410 Gone (or another error): relist
                return;
              }
              resourceVersion = event.object.metadata.resourceVersion ?? resourceVersion;
              if (event.type === 'BOOKMARK') return;
              if (event.type === 'DELETED') this.known.delete(keyOf(event.object));
              else this.remember(event.object);
            },
            { signal, timeoutSeconds: 60 },
          );
        }
      } catch (error) {
        if (signal.aborted) return;
        this.options.logger.warn({ err: messageOf(error) }, 'watching CanaryRollouts failed; relisting');
        await sleep(1000, signal);
      }
    }
  }

  private async resyncLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await sleep(this.options.resyncMs ?? 5000, signal);
      for (const key of this.known.keys()) this.markDirty(key);
    }
  }

  private async workLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const key = this.dirty.values().next().value;
      if (key === undefined) {
        await new Promise<void>((resolve) => {
          const done = () => {
            signal.removeEventListener('abort', done);
            this.wake = undefined;
            resolve();
          };
          this.wake = done;
          signal.addEventListener('abort', done, { once: true });
        });
        continue;
      }
      this.dirty.delete(key);
      const resource = this.known.get(key);
      if (!resource) continue;
      try {
        await this.reconcile(resource);
      } catch (error) {
        // Gone meanwhile (its finalizer was just removed): the watch will report the deletion.
        if (error instanceof KubernetesApiError && error.status === 404) continue;
        this.options.logger.warn({ resource: key, err: messageOf(error) }, 'reconcile failed; will retry');
      }
    }
  }

  private remember(resource: CanaryRollout): void {
    this.known.set(keyOf(resource), resource);
    this.markDirty(keyOf(resource));
  }

  /** Replaces the cached object with a newer one the controller wrote (never an older one). */
  private refresh(stored: CanaryRollout): void {
    const key = keyOf(stored);
    const known = this.known.get(key);
    if (known && Number(stored.metadata.resourceVersion) >= Number(known.metadata.resourceVersion))
      this.known.set(key, stored);
  }

  private markDirty(key: string): void {
    this.dirty.add(key);
    this.wake?.();
  }

  /** One pass for one resource: plan from what is seen, act, then write the status. */
  async reconcile(resource: CanaryRollout): Promise<void> {
    const { namespace = '', name } = resource.metadata;
    const status = resource.status ?? {};
    const annotations = resource.metadata.annotations ?? {};
    let wantedSpecHash: string | undefined;
    let invalid: string | undefined;
    try {
      wantedSpecHash = specHash(rolloutSpecOf(resource, validateComponentConfig));
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      invalid = error.message;
    }
    const rolloutStatus = status.rolloutId ? await this.rolloutState(status.rolloutId) : undefined;
    const view: ControllerView = {
      generation: resource.metadata.generation ?? 0,
      deleting: resource.metadata.deletionTimestamp !== undefined,
      hasFinalizer: (resource.metadata.finalizers ?? []).includes(ROLLBACK_FINALIZER),
      paused: resource.spec.paused === true,
      wantedSpecHash,
      promoteRequested: PROMOTE_ANNOTATION in annotations,
      rollbackRequested: annotations[ROLLBACK_ANNOTATION],
      status,
      workflow: rolloutStatus && { running: rolloutStatus.running, phase: rolloutStatus.status?.phase },
    };
    const next: CanaryRolloutStatus = { ...status, observedGeneration: view.generation };
    const conditions: CanaryRolloutCondition[] = [];
    if (invalid !== undefined)
      conditions.push({ type: 'SpecValid', status: 'False', reason: 'Invalid', message: invalid });
    else conditions.push({ type: 'SpecValid', status: 'True', reason: 'Valid', message: '' });

    for (const action of planReconcile(view)) {
      const outcome = await this.act(resource, action, next);
      if (outcome) conditions.push(outcome);
    }
    if (view.deleting && !view.hasFinalizer) return;
    if (next.rolloutId && next.rolloutId === status.rolloutId && rolloutStatus?.status)
      Object.assign(next, statusFromRollout(rolloutStatus.status));
    if (next.rolloutId && next.rolloutId === status.rolloutId && rolloutStatus?.outcome)
      next.phase = phaseName(rolloutStatus.outcome);
    if (!next.rolloutId && invalid !== undefined) next.phase = 'Invalid';
    if (next.rolloutId) {
      const running = next.rolloutId === status.rolloutId ? rolloutStatus?.running : true;
      conditions.push({
        type: 'Progressing',
        status: running ? 'True' : 'False',
        reason: running ? 'WorkflowRunning' : 'WorkflowEnded',
        message: `rollout ${next.rolloutId}`,
      });
    }
    if (view.deleting) return; // the resource is going; its status no longer matters
    next.conditions = mergeConditions(status.conditions ?? [], conditions, view.generation);
    if (JSON.stringify(next) === JSON.stringify(status)) return;
    try {
      const stored = await this.options.kubernetes.mergePatch<CanaryRollout>(
        canaryRolloutsRef(namespace, name, 'status'),
        { status: next },
        CONTROLLER_FIELD_MANAGER,
      );
      // The next pass must see this status even before the watch delivers it (no second start).
      this.refresh(stored);
    } catch (error) {
      if (!(error instanceof KubernetesApiError && error.status === 404)) throw error;
    }
  }

  /** Carries out one action; returns the condition it reports, if any (a start, or why not). */
  private async act(
    resource: CanaryRollout,
    action: ControllerAction,
    next: CanaryRolloutStatus,
  ): Promise<CanaryRolloutCondition | undefined> {
    const { namespace = '', name } = resource.metadata;
    const ref = canaryRolloutsRef(namespace, name);
    const kube = this.options.kubernetes;
    const log = this.options.logger.child({ resource: `${namespace}/${name}` });
    switch (action.kind) {
      case 'add-finalizer':
        await kube
          .mergePatch<CanaryRollout>(ref, {
            metadata: {
              resourceVersion: resource.metadata.resourceVersion,
              finalizers: [...(resource.metadata.finalizers ?? []), ROLLBACK_FINALIZER],
            },
          })
          .then((stored) => this.refresh(stored));
        return undefined;
      case 'remove-finalizer':
        await kube.mergePatch(ref, {
          metadata: {
            resourceVersion: resource.metadata.resourceVersion,
            finalizers: (resource.metadata.finalizers ?? []).filter((f) => f !== ROLLBACK_FINALIZER),
          },
        });
        log.info('rollout ended; finalizer removed');
        return undefined;
      case 'clear-annotation':
        await kube.mergePatch(ref, {
          metadata: {
            annotations: {
              [action.annotation === 'promote' ? PROMOTE_ANNOTATION : ROLLBACK_ANNOTATION]: null,
            },
          },
        });
        return undefined;
      case 'signal': {
        const rolloutId = next.rolloutId;
        if (!rolloutId) return undefined;
        try {
          await this.options.rollouts.control(rolloutId, action.signal, { by: BY, reason: action.reason });
        } catch (error) {
          if (!(error instanceof RolloutNotFoundError || error instanceof RolloutEndedError)) throw error;
        }
        if (action.signal === 'pause') next.pausedBySpec = true;
        if (action.signal === 'resume') next.pausedBySpec = false;
        log.info({ rolloutId, signal: action.signal, reason: action.reason }, 'signal sent');
        return undefined;
      }
      case 'start': {
        const spec = rolloutSpecOf(resource);
        try {
          const handle = await this.options.rollouts.start(spec, { allowRestart: action.restart });
          next.rolloutId = handle.workflowId;
        } catch (error) {
          if (!(error instanceof RolloutAlreadyStartedError)) throw error;
          // A start whose status write was lost: the running rollout of this spec is ours.
          const id = rolloutIdFor(spec.service, spec.version);
          if (error.holder || !(await this.options.rollouts.isRunning(id)) || next.rolloutId === id)
            return { type: 'Started', status: 'False', reason: 'AlreadyStarted', message: error.message };
          next.rolloutId = id;
        }
        next.specHash = specHash(spec);
        next.pausedBySpec = false;
        next.phase = 'Starting';
        log.info({ rolloutId: next.rolloutId, generation: resource.metadata.generation }, 'rollout started');
        return { type: 'Started', status: 'True', reason: 'Started', message: `rollout ${next.rolloutId}` };
      }
    }
  }

  /** The workflow's state: its status query while it runs, its outcome once it has ended. */
  private async rolloutState(rolloutId: string): Promise<{
    running: boolean;
    status: RolloutStatus | undefined;
    outcome: RolloutOutcome | undefined;
  }> {
    const running = await this.options.rollouts.isRunning(rolloutId);
    const status = await this.options.rollouts.status(rolloutId).catch(() => undefined);
    const outcome = running
      ? undefined
      : await this.options.rollouts.result(rolloutId).then(
          (result) => result.outcome,
          () => undefined,
        );
    return { running, status, outcome };
  }
}

function keyOf(resource: CanaryRollout): string {
  return `${resource.metadata.namespace ?? ''}/${resource.metadata.name}`;
}

/** Keeps lastTransitionTime when a condition's status did not change. */
function mergeConditions(
  previous: CanaryRolloutCondition[],
  current: CanaryRolloutCondition[],
  generation: number,
): CanaryRolloutCondition[] {
  const byType = new Map(previous.map((condition) => [condition.type, condition]));
  for (const condition of current) {
    const before = byType.get(condition.type);
    const same = before?.status === condition.status && before.reason === condition.reason;
    byType.set(condition.type, {
      ...condition,
      observedGeneration: generation,
      lastTransitionTime:
        same && before.lastTransitionTime
          ? before.lastTransitionTime
          : new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    });
  }
  return [...byType.values()];
}
