import { ValidationError } from '../../core/validation';

/** The `field: rule` lines of the ValidationError `run` throws; [] when it throws none. */
export function issuesOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ValidationError) return error.issues.map((issue) => `${issue.field}: ${issue.rule}`);
    throw error;
  }
  return [];
}
