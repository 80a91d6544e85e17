import { ValidationError } from '../core/validation';
import { SHARE_PRECISION } from './traffic-router';

export interface ServerWeights {
  baseline: number;
  canary: number;
}

/**
 * Totals tried first, so that weights move in small steps as the share moves (consistent
 * hashing in HAProxy and NGINX then moves few users) and read back as round numbers.
 */
const PREFERRED_TOTALS = [100, 200, 1000, 10_000];

/**
 * Integer weights for a baseline/canary pair that express `share` within 0.005 points, each at
 * most `maxWeight` (HAProxy: 256). Throws a ValidationError naming `share` when no pair can.
 */
export function weightsForShare(share: number, maxWeight: number): ServerWeights {
  const fits = (total: number): ServerWeights | undefined => {
    const canary = Math.round((share * total) / 100);
    const baseline = total - canary;
    if (canary > maxWeight || baseline > maxWeight) return undefined;
    return Math.abs((100 * canary) / total - share) <= SHARE_PRECISION ? { baseline, canary } : undefined;
  };
  for (const total of PREFERRED_TOTALS) {
    const weights = fits(total);
    if (weights) return weights;
  }
  for (let total = 1; total <= 2 * maxWeight; total += 1) {
    const weights = fits(total);
    if (weights) return weights;
  }
  throw new ValidationError([
    {
      field: 'share',
      rule: `cannot be expressed as server weights of at most ${maxWeight} (${share} %); use shares in steps of 0.5`,
    },
  ]);
}

/** The canary's share in percent that a weight pair applies. */
export function shareOfWeights(weights: ServerWeights): number {
  const total = weights.baseline + weights.canary;
  if (total === 0) return 0;
  return (100 * weights.canary) / total;
}
