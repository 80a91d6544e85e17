/**
 * The rollout spec's adapter sections (router, analysis options, alert sinks, profile criteria)
 * are validated by the components that own them. The CLI and the demo run every check before
 * starting a rollout, so a bad spec starts nothing. Each component adds its validator here.
 */
import { validateAlertSinks } from '../alerts/sinks';
import { validateAnalysisOptions } from '../signals';
import { parseCriteria } from '../profiles/criteria';
import { validateRouterSpec } from '../routing/routers';
import type { RolloutSpec } from '../rollout/spec';
import { ValidationError, type FieldIssue } from '../core/validation';

type ComponentValidator = (spec: RolloutSpec) => void;

const VALIDATORS: ComponentValidator[] = [
  (spec) => void validateRouterSpec(spec.router, spec.targets),
  (spec) => void validateAnalysisOptions(spec.analysis.options, spec.analysis.method, spec.analysis.alpha),
  (spec) => void validateAlertSinks(spec.alerts.sinks),
  (spec) => void parseCriteria(spec.profiles.criteria, 'profiles.criteria'),
];

/** Throws one ValidationError with the issues of every component (paths as in the flat spec). */
export function validateComponentConfig(spec: RolloutSpec): void {
  const issues: FieldIssue[] = [];
  for (const validate of VALIDATORS) {
    try {
      validate(spec);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      issues.push(...error.issues);
    }
  }
  if (issues.length > 0) throw new ValidationError(issues);
}
