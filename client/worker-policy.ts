/**
 * Loads the worker policy (rollout/worker-policy.ts) from the worker's environment: a JSON or
 * YAML file named by CANARY_WORKER_POLICY, lists in CANARY_ALLOWED_* variables (added to the
 * file's), and CANARY_WORKER_PROFILE. The worker and `canary rollout start` read the same
 * variables, so the CLI refuses what the worker would refuse.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { FieldReader, ValidationError } from '../core/validation';
import { oneOf, readConfig, text, variable, type ConfigOf } from '../platform/config';
import type { RolloutSpec } from '../rollout/spec';
import {
  addEntries,
  checkSpecAgainstWorkerPolicy,
  emptyWorkerPolicy,
  parseWorkerPolicy,
  readPolicyEntries,
  WORKER_POLICY_PROFILES,
  type WorkerPolicy,
  type WorkerPolicyList,
} from '../rollout/worker-policy';

const LIST_VARIABLES: Record<WorkerPolicyList, string> = {
  routerEndpoints: 'CANARY_ALLOWED_ROUTER_ENDPOINTS',
  alertHosts: 'CANARY_ALLOWED_ALERT_HOSTS',
  prometheusHosts: 'CANARY_ALLOWED_PROMETHEUS_HOSTS',
  secretNames: 'CANARY_ALLOWED_SECRET_NAMES',
  'nginx.binaries': 'CANARY_ALLOWED_NGINX_BINARIES',
  'nginx.configPaths': 'CANARY_ALLOWED_NGINX_CONFIG_PATHS',
  'nginx.pidFiles': 'CANARY_ALLOWED_NGINX_PID_FILES',
};

export const WORKER_POLICY_VARIABLES = {
  workerPolicyFile: variable('CANARY_WORKER_POLICY', text),
  workerProfile: variable('CANARY_WORKER_PROFILE', oneOf(WORKER_POLICY_PROFILES)),
  ...(Object.fromEntries(
    Object.entries(LIST_VARIABLES).map(([list, name]) => [list, variable(name, text)]),
  ) as Record<WorkerPolicyList, ReturnType<typeof variable<string>>>),
};

export type WorkerPolicyConfig = ConfigOf<typeof WORKER_POLICY_VARIABLES>;

/** Whether this process's environment says anything about a worker policy (the edges check only then). */
export function workerPolicyConfigured(values: WorkerPolicyConfig): boolean {
  return Object.values(values).some((value) => value !== undefined);
}

/**
 * The policy from the variables' values. The profile: CANARY_WORKER_PROFILE, else the file's
 * `profile`, else `production` when there is a file and `development` when there is none.
 * A file that cannot be read or parsed is a ValidationError naming CANARY_WORKER_POLICY.
 */
export function workerPolicyOf(values: WorkerPolicyConfig): WorkerPolicy {
  const file = values.workerPolicyFile;
  let policy = emptyWorkerPolicy(values.workerProfile ?? 'development');
  if (file !== undefined) {
    let document: unknown;
    try {
      document = parseYaml(readFileSync(file, 'utf8'));
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? 'not valid JSON or YAML';
      throw new ValidationError([
        { field: 'CANARY_WORKER_POLICY', rule: `${file} cannot be read (${reason})` },
      ]);
    }
    policy = parseWorkerPolicy(document, `CANARY_WORKER_POLICY (${file})`);
    if (values.workerProfile) policy.profile = values.workerProfile;
  }
  const r = new FieldReader();
  for (const [list, name] of Object.entries(LIST_VARIABLES) as [WorkerPolicyList, string][]) {
    const listed = values[list];
    if (listed === undefined) continue;
    const entries = listed
      .split(',')
      .map((entry) => entry.trim())
      .filter(Boolean);
    addEntries(policy, list, readPolicyEntries(r, list, entries, name));
  }
  r.throwIfAny();
  return policy;
}

export function loadWorkerPolicy(env: NodeJS.ProcessEnv): WorkerPolicy {
  return workerPolicyOf(readConfig(env, WORKER_POLICY_VARIABLES));
}

/**
 * What the edges run before starting a rollout: the spec against the worker policy this
 * process's environment describes, when it describes one (the same variables as the workers').
 * Without any of them it checks nothing; the workflow still checks on the worker.
 */
export function checkSpecAgainstConfiguredPolicy(spec: RolloutSpec, env: NodeJS.ProcessEnv): void {
  const values = readConfig(env, WORKER_POLICY_VARIABLES);
  if (workerPolicyConfigured(values)) checkSpecAgainstWorkerPolicy(spec, workerPolicyOf(values));
}
