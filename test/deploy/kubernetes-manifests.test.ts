/**
 * deploy/kubernetes against a real kube-apiserver: every manifest passes a server-side dry-run
 * apply (the API server's own schemas, RBAC objects and the CanaryRollout CRD's), and the CRD
 * refuses what its schema forbids.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubernetesStack, readManifests, refOf } from '../../devstack/kubernetes';
import { projectRoot } from '../../devstack/tools';
import { KubernetesApiError, type KubernetesObject } from '../../platform/kubernetes';
import { parse as parseYaml } from 'yaml';
import { rolloutSpecOf, type CanaryRollout } from '../../controller/canary-rollout';
import { checkSpecAgainstWorkerPolicy, parseWorkerPolicy } from '../../rollout/worker-policy';
import { ValidationError } from '../../core/validation';

const DEPLOY = path.join(projectRoot, 'deploy', 'kubernetes');
const MANAGER = 'kubectl';

let dir: string;
let stack: KubernetesStack;
let manifests: KubernetesObject[];

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'canary-kubernetes-manifests-'));
  stack = await KubernetesStack.start({ dir });
  const files = readdirSync(DEPLOY)
    .filter((file) => file.endsWith('.yaml') && file !== 'kustomization.yaml')
    .map((file) => path.join(DEPLOY, file));
  manifests = readManifests(files);
  // A dry run creates nothing, so what namespaced objects need (their namespace, the CRD) is real.
  for (const object of manifests.filter(
    (o) => o.kind === 'Namespace' || o.kind === 'CustomResourceDefinition',
  ))
    await stack.admin.apply(refOf(object), object, MANAGER);
  await stack.installCrds(manifests.filter((o) => o.kind === 'CustomResourceDefinition'));
  await stack.admin.apply(
    { group: '', version: 'v1', plural: 'namespaces', name: 'shop' },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } },
    MANAGER,
  );
});

afterAll(async () => {
  await stack?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the kustomization lists every manifest of the directory', () => {
  const listed = readManifests([path.join(DEPLOY, 'kustomization.yaml')])[0] as unknown as {
    resources: string[];
  };
  const files = readdirSync(DEPLOY).filter((file) => file.endsWith('.yaml') && file !== 'kustomization.yaml');
  expect([...listed.resources].sort()).toEqual(files.sort());
});

test('every manifest passes a server-side dry-run apply', async () => {
  const kinds = new Set<string>();
  for (const object of manifests) {
    const stored = await stack.admin.apply<KubernetesObject>(refOf(object), object, MANAGER, {
      dryRun: true,
    });
    expect(stored.metadata.name).toBe(object.metadata.name);
    kinds.add(object.kind ?? '');
  }
  expect([...kinds].sort()).toEqual(
    [
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'CustomResourceDefinition',
      'Deployment',
      'Namespace',
      'Role',
      'RoleBinding',
      'Secret',
      'Service',
      'ServiceAccount',
    ].sort(),
  );
});

test('the example CanaryRollout passes; one its schema forbids is refused naming the field', async () => {
  const [example] = readManifests([path.join(DEPLOY, 'examples', 'canaryrollout-web.yaml')]);
  await expect(stack.admin.apply(refOf(example!), example, MANAGER, { dryRun: true })).resolves.toBeDefined();
  const bad = {
    ...example!,
    spec: { ...(example!.spec as object), policy: { stepUp: 500 }, analysis: { method: 'guess' } },
  };
  const refusal = await stack.admin
    .apply(refOf(bad), bad, MANAGER, { dryRun: true })
    .catch((error: unknown) => error);
  expect(refusal).toBeInstanceOf(KubernetesApiError);
  expect((refusal as KubernetesApiError).status).toBe(422);
  expect((refusal as KubernetesApiError).message).toMatch(/spec\.policy\.stepUp/);
  expect((refusal as KubernetesApiError).message).toMatch(/spec\.analysis\.method/);
});

test("the manifests' worker policy allows the example's router and refuses other API servers and secrets", () => {
  const config = manifests.find((o) => o.metadata.name === 'canary-worker-policy') as unknown as {
    data: Record<string, string>;
  };
  const policy = parseWorkerPolicy(parseYaml(config.data['worker-policy.yaml']!), 'worker-policy.yaml');
  const [example] = readManifests([path.join(DEPLOY, 'examples', 'canaryrollout-web.yaml')]);
  const spec = rolloutSpecOf(example as CanaryRollout);
  expect(() => checkSpecAgainstWorkerPolicy(spec, policy)).not.toThrow();
  const issues = (router: Record<string, unknown>) => {
    try {
      checkSpecAgainstWorkerPolicy({ ...spec, router: router as typeof spec.router }, policy);
    } catch (error) {
      if (error instanceof ValidationError)
        return error.issues.map((issue) => `${issue.field}: ${issue.rule}`);
      throw error;
    }
    return [];
  };
  for (const kind of ['istio', 'ingress-nginx', 'gateway-api'])
    expect(issues({ kind, apiServer: 'https://evil.example:6443', caEnv: 'AWS_SECRET_ACCESS_KEY' })).toEqual([
      "router.caEnv: AWS_SECRET_ACCESS_KEY is not in the worker's allowed secret names",
      "router.apiServer: https://evil.example:6443 is not in the worker's allowed router endpoints",
    ]);
});
