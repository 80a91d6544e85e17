import type { AnalysisMethod } from '../../rollout/spec';
import { bettingMethod, robustBettingMethod } from './betting';
import { mannWhitneyMethod } from './mann-whitney';
import type { MethodImplementation } from './method';
import { seedMethod } from './seed';
import { sequentialMethod } from './sequential';

export type { MethodImplementation } from './method';

/** The method for a name; throws on an unknown one rather than falling back silently. */
export function methodFor(method: AnalysisMethod): MethodImplementation {
  switch (method) {
    case 'betting':
      return bettingMethod;
    case 'betting-robust':
      return robustBettingMethod;
    case 'sequential':
      return sequentialMethod;
    case 'mann-whitney':
      return mannWhitneyMethod;
    case 'seed':
      return seedMethod;
    default:
      throw new Error(`unknown analysis method: ${String(method)}`);
  }
}
