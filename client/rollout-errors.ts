/**
 * What the rollout client throws for the cases its callers answer differently (the CLI with a
 * line and exit 2, the dashboard with 404, 409 or 400): Temporal's own error classes stay inside
 * client/, so entry points never import @temporalio/client values.
 */
import { ServiceError } from '@temporalio/client';
import { ValidationError, type FieldIssue } from '../core/validation';

/** No workflow with that id, or one that is not a rollout. */
export class RolloutNotFoundError extends Error {
  constructor(readonly rolloutId: string) {
    super(`no rollout ${rolloutId}`);
    this.name = 'RolloutNotFoundError';
  }
}

/** A control or policy change for a rollout whose workflow is no longer running. */
export class RolloutEndedError extends Error {
  constructor(
    readonly rolloutId: string,
    readonly execution: string,
  ) {
    super(`rollout ${rolloutId} has ended (${execution.toLowerCase()}): it takes no more controls`);
    this.name = 'RolloutEndedError';
  }
}

/** The deployment's rollout id is taken: by an earlier rollout of it, or (a collision) of another deployment. */
export class RolloutAlreadyStartedError extends Error {
  constructor(
    readonly rolloutId: string,
    /** The deployment that holds the id, when it is another one. */
    readonly holder?: { service: string; version: string },
  ) {
    super(
      holder
        ? `${rolloutId} is the rollout of service ${holder.service} version ${holder.version}: ids of different deployments collide; use another version string`
        : `${rolloutId} was already started: a deployment is rolled out once`,
    );
    this.name = 'RolloutAlreadyStartedError';
  }
}

/**
 * The workflow's update validator refused a policy change (it saw a newer policy than the check
 * before sending did). `refusal` is its message as sent; the issues are parsed back from it.
 */
export class PolicyUpdateRefusedError extends ValidationError {
  constructor(
    readonly rolloutId: string,
    readonly refusal: string,
  ) {
    super(issuesOf(refusal));
    this.name = 'PolicyUpdateRefusedError';
  }
}

/** `policy.stepUp: must be > 0; policy.x: ...` back into field issues. */
function issuesOf(message: string): FieldIssue[] {
  return message.split('; ').map((part) => {
    const colon = part.indexOf(': ');
    return colon > 0
      ? { field: part.slice(0, colon), rule: part.slice(colon + 2) }
      : { field: 'body', rule: part };
  });
}

/** Temporal could not be reached or did not answer in time (a 503, not a 500). */
export function isTemporalUnavailable(error: unknown): boolean {
  return error instanceof ServiceError;
}
