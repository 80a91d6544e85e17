/**
 * The CanaryRollout resource (deploy/kubernetes/crd-canaryrollouts.yaml): its names, the rollout
 * spec it carries, and the status the controller writes. Pure.
 */
import { createHash } from 'node:crypto';
import { parseRolloutSpec, type RolloutSpec } from '../rollout/spec';
import { ValidationError } from '../core/validation';
import type { KubernetesObject, ResourceRef } from '../platform/kubernetes';
import type { RolloutPhase, RolloutStatus } from '../rollout/types';

export const CANARY_GROUP = 'canary.dev';
export const CANARY_VERSION = 'v1';
/** Held while a rollout may still have traffic on the canary: deleting the resource rolls it back first. */
export const ROLLBACK_FINALIZER = 'canary.dev/rollback-on-delete';
/** Set (any value) to promote now; the controller removes it once the signal is sent. */
export const PROMOTE_ANNOTATION = 'canary.dev/promote';
/** Set to a reason to roll back now; the controller removes it once the signal is sent. */
export const ROLLBACK_ANNOTATION = 'canary.dev/rollback';

export interface CanaryRolloutCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime?: string;
  observedGeneration?: number;
}

export interface CanaryRolloutStatus {
  phase?: string;
  share?: number;
  appliedShare?: number | null;
  lastVerdict?: string;
  rolloutId?: string;
  /** Hash of the rollout spec the workflow `rolloutId` runs: a new hash starts a new workflow. */
  specHash?: string;
  observedGeneration?: number;
  /** The rollout is paused because spec.paused asked, so spec.paused=false may resume it. */
  pausedBySpec?: boolean;
  conditions?: CanaryRolloutCondition[];
}

export interface CanaryRollout extends KubernetesObject {
  spec: Record<string, unknown> & { paused?: boolean };
  status?: CanaryRolloutStatus;
}

export function canaryRolloutsRef(namespace?: string, name?: string, subresource?: string): ResourceRef {
  return {
    group: CANARY_GROUP,
    version: CANARY_VERSION,
    plural: 'canaryrollouts',
    ...(namespace === undefined ? {} : { namespace }),
    ...(name === undefined ? {} : { name }),
    ...(subresource === undefined ? {} : { subresource }),
  };
}

/**
 * The rollout spec a resource asks for, checked as the CLI checks it (spec, then each
 * component's options); a ValidationError naming `spec.<field>` otherwise.
 */
export function rolloutSpecOf(
  resource: CanaryRollout,
  checkComponents: (spec: RolloutSpec) => void = () => {},
): RolloutSpec {
  const { paused: _paused, ...rest } = resource.spec ?? {};
  try {
    const spec = parseRolloutSpec(rest);
    checkComponents(spec);
    return spec;
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    throw new ValidationError(
      error.issues.map((issue) => ({
        field: issue.field.startsWith('spec') ? issue.field : `spec.${issue.field}`,
        rule: issue.rule,
      })),
    );
  }
}

/** Stable across key order: the same rollout spec always hashes the same. */
export function specHash(spec: RolloutSpec): string {
  return createHash('sha256').update(canonicalJson(spec)).digest('hex').slice(0, 16);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

/** The status fields that come from the workflow's status query. */
export function statusFromRollout(
  status: RolloutStatus,
): Pick<CanaryRolloutStatus, 'phase' | 'share' | 'appliedShare' | 'lastVerdict'> {
  const verdict = status.lastVerdicts.at(-1);
  return {
    phase: phaseName(status.phase),
    share: status.share,
    appliedShare: status.appliedShare,
    lastVerdict: verdict ? `tick ${verdict.tick}: ${verdict.status}` : '',
  };
}

/** Kubernetes phases are CamelCase by convention (`RolledBack`). */
export function phaseName(phase: RolloutPhase): string {
  return phase
    .split('_')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join('');
}
