// The worker bundles this module; it exports workflow functions only.
export { rolloutWorkflow } from './rollout';
