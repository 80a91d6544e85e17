/**
 * Kubernetes-native mode end to end: a real kube-apiserver (kine) with the CanaryRollout and
 * HTTPRoute CRDs, a real Temporal dev server and a rollout worker whose router is the real
 * gateway-api router (scripted verdicts and a sleeping probe keep a rollout to seconds), and two
 * controllers sharing a Lease with least-privilege ServiceAccount tokens: one in this process, then
 * the real `canary controller` command, which steers every rollout after the first.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { Worker } from '@temporalio/worker';
import { RolloutClient } from '../../client/rollout-client';
import { CanaryController } from '../../controller/controller';
import {
  canaryRolloutsRef,
  PROMOTE_ANNOTATION,
  ROLLBACK_FINALIZER,
  type CanaryRollout,
} from '../../controller/canary-rollout';
import { crdFiles, KubernetesStack, readCrdFiles, readManifests } from '../../devstack/kubernetes';
import { projectRoot } from '../../devstack/tools';
import { ManagedProcess } from '../../devstack/managed-process';
import type { KubernetesClient, KubernetesObject, ResourceRef } from '../../platform/kubernetes';
import { RouterRegistry } from '../../routing/routers';
import { messageOf } from '../../core/errors';
import { startTestServers, type TestServers } from '../support/environment';
import { testWorker } from '../support/worker';

const NAMESPACE = 'shop';
const route: ResourceRef = {
  group: 'gateway.networking.k8s.io',
  version: 'v1',
  plural: 'httproutes',
  namespace: NAMESPACE,
  name: 'web',
};
const lease: ResourceRef = {
  group: 'coordination.k8s.io',
  version: 'v1',
  plural: 'leases',
  namespace: NAMESPACE,
  name: 'canary-controller',
};

let dir: string;
let stack: KubernetesStack;
let servers: TestServers;
let worker: Worker;
let workerRun: Promise<void>;
/** controller-a runs in this process; controller-b is the real `canary controller` command. */
let inProcess: { stop: AbortController; run: Promise<void>; client: KubernetesClient } | undefined;
let command: ManagedProcess | undefined;

function rolloutDocument(version: string, extra: Record<string, unknown> = {}): KubernetesObject {
  return {
    apiVersion: 'canary.dev/v1',
    kind: 'CanaryRollout',
    metadata: { name: 'web', namespace: NAMESPACE },
    spec: {
      service: 'web',
      version,
      targets: { baseline: { url: 'http://127.0.0.1:18081' }, canary: { url: 'http://127.0.0.1:18082' } },
      router: {
        kind: 'gateway-api',
        apiServer: stack.server,
        tokenEnv: 'CANARY_KUBERNETES_TOKEN',
        caEnv: 'CANARY_KUBERNETES_CA',
        namespace: NAMESPACE,
        route: 'web',
        backends: { baseline: { name: 'web-v1', port: 80 }, canary: { name: 'web-v2', port: 80 } },
        settleTimeout: '0s',
      },
      probe: { duration: '100ms', concurrency: 2 },
      interval: '300ms',
      policy: { initialShare: 10, stepUp: 20, promoteAt: 90, probingTicks: 0 },
      ...extra,
    },
  };
}

const apply = (object: KubernetesObject) =>
  stack.admin.apply(canaryRolloutsRef(NAMESPACE, 'web'), object, 'kubectl', { force: true });
const read = () => stack.admin.find<CanaryRollout>(canaryRolloutsRef(NAMESPACE, 'web'));
const canaryShare = async () => {
  const stored = await stack.admin.get<{
    spec: { rules: { backendRefs: { name: string; weight?: number }[] }[] };
  }>(route);
  const refs = stored.spec.rules[0]!.backendRefs;
  const weight = (name: string) => refs.find((ref) => ref.name === name)?.weight ?? 0;
  return (100 * weight('web-v2')) / (weight('web-v1') + weight('web-v2'));
};

async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${messageOf(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

const phaseIs = (phase: string) => async () => {
  const resource = await read();
  return resource?.status?.phase === phase ? resource : undefined;
};

/** The controller's RBAC as in deploy/kubernetes/rbac.yaml, bound in the one namespace it watches. */
function controllerRules() {
  const rbac = readManifests([path.join(projectRoot, 'deploy', 'kubernetes', 'rbac.yaml')]);
  const role = rbac.find(
    (o) => o.kind === 'ClusterRole' && o.metadata.name === 'canary-controller',
  ) as unknown as {
    rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
  };
  const leaseRole = rbac.find((o) => o.kind === 'Role') as unknown as {
    rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
  };
  return [...role.rules, ...leaseRole.rules];
}

function startInProcessController(token: string): void {
  const client = stack.client(token);
  const stop = new AbortController();
  const controller = new CanaryController({
    kubernetes: client,
    rollouts: new RolloutClient(servers.env.client),
    logger: pino({ level: process.env.CONTROLLER_TEST_LOG ?? 'warn' }),
    namespace: NAMESPACE,
    resyncMs: 300,
    leaderElection: {
      namespace: NAMESPACE,
      name: 'canary-controller',
      identity: 'controller-a',
      leaseDurationSeconds: 3,
    },
  });
  inProcess = { stop, run: controller.run(stop.signal), client };
}

async function startCommandController(token: string): Promise<ManagedProcess> {
  const tokenFile = path.join(dir, 'controller.token');
  const caFile = path.join(dir, 'ca.crt');
  writeFileSync(tokenFile, token, { mode: 0o600 });
  writeFileSync(caFile, stack.caPem() ?? '');
  const logFile = path.join(dir, 'canary-controller.log');
  return ManagedProcess.start({
    name: 'canary controller',
    command: process.execPath,
    args: [
      '--import',
      'tsx',
      path.join(projectRoot, 'cli', 'main.ts'),
      'controller',
      ...['--api-server', stack.server, '--token-file', tokenFile, '--ca-file', caFile],
      ...['--namespace', NAMESPACE, '--lease-namespace', NAMESPACE, '--identity', 'controller-b'],
      ...['--resync', '300ms', '--address', servers.temporal.address],
    ],
    env: { KUBERNETES_SERVICE_HOST: '', LOG_LEVEL: 'info' },
    cwd: projectRoot,
    logFile,
    isReady: async () => readFileSync(logFile, 'utf8').includes('controller started'),
  });
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'canary-controller-'));
  [stack, servers] = await Promise.all([KubernetesStack.start({ dir }), startTestServers('controller')]);
  await stack.installCrds([
    ...readCrdFiles([path.join(projectRoot, 'deploy', 'kubernetes', 'crd-canaryrollouts.yaml')]),
    ...readCrdFiles(crdFiles(/_httproutes\.yaml$/)),
  ]);
  const routerToken = await stack.serviceAccountToken(NAMESPACE, 'canary-worker', [
    { apiGroups: ['gateway.networking.k8s.io'], resources: ['httproutes'], verbs: ['get', 'patch'] },
  ]);
  const controllerToken = await stack.serviceAccountToken(NAMESPACE, 'canary-controller', controllerRules());
  await stack.admin.apply(
    route,
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'web', namespace: NAMESPACE },
      spec: {
        parentRefs: [{ name: 'public' }],
        rules: [{ backendRefs: [{ name: 'web-v1', port: 80, weight: 1 }] }],
      },
    },
    'kubectl',
  );
  const routers = new RouterRegistry({
    env: { CANARY_KUBERNETES_TOKEN: routerToken, CANARY_KUBERNETES_CA: stack.caPem() },
  });
  worker = await testWorker(servers, 'rollouts', { deps: { routers } });
  workerRun = worker.run();
  startInProcessController(controllerToken);
  await until('controller-a to hold the Lease', async () => {
    const held = await stack.admin.find<{ spec: { holderIdentity?: string } } & KubernetesObject>(lease);
    return held?.spec.holderIdentity === 'controller-a';
  });
  command = await startCommandController(controllerToken);
});

afterAll(async () => {
  inProcess?.stop.abort();
  await inProcess?.run.catch(() => undefined);
  await inProcess?.client.close();
  await command?.stop();
  worker?.shutdown();
  await workerRun?.catch(() => undefined);
  await servers?.stop();
  await stack?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a CanaryRollout applied like any manifest rolls out to promotion, its status written live', async () => {
  await apply(rolloutDocument('1.0.0'));
  const progressing = await until('a share above 0', async () => {
    const resource = await read();
    return (resource?.status?.share ?? 0) > 0 ? resource : undefined;
  });
  expect(progressing.metadata.finalizers).toContain(ROLLBACK_FINALIZER);
  expect(progressing.status?.rolloutId).toBe('rollout-web-1.0.0');
  const promoted = await until('phase Promoted and the workflow ended', async () => {
    const resource = await read();
    const progressing = resource?.status?.conditions?.find((condition) => condition.type === 'Progressing');
    return resource?.status?.phase === 'Promoted' && progressing?.status === 'False' ? resource : undefined;
  });
  expect(promoted.status).toMatchObject({ share: 100, observedGeneration: promoted.metadata.generation });
  expect(promoted.status?.lastVerdict).toMatch(/^tick \d+: healthy$/);
  expect(promoted.status?.conditions).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ type: 'SpecValid', status: 'True' }),
      expect.objectContaining({ type: 'Started', status: 'True', message: 'rollout rollout-web-1.0.0' }),
      expect.objectContaining({ type: 'Progressing', status: 'False', reason: 'WorkflowEnded' }),
    ]),
  );
  expect(await canaryShare()).toBe(100);
  // What `kubectl get canaryrollouts -n shop` prints: the server renders the printer columns.
  const table = await stack.admin.table(canaryRolloutsRef(NAMESPACE));
  expect(table.columns).toEqual(['Name', 'Phase', 'Share', 'Applied', 'Verdict', 'Rollout', 'Age']);
  expect(table.rows[0]?.slice(0, 6)).toEqual([
    'web',
    'Promoted',
    100,
    100,
    promoted.status?.lastVerdict,
    'rollout-web-1.0.0',
  ]);
});

test('one controller leads through the Lease; the `canary controller` command takes over when it stops', async () => {
  const held = await stack.admin.get<{ spec: { holderIdentity: string } }>(lease);
  expect(held.spec.holderIdentity).toBe('controller-a');
  inProcess!.stop.abort();
  await inProcess!.run;
  // The command's Lease: 15 s, tried every 5 s; controller-a gave it up when it stopped.
  await until(
    'controller-b to hold the Lease',
    async () =>
      (await stack.admin.get<{ spec: { holderIdentity: string } }>(lease)).spec.holderIdentity ===
      'controller-b',
    20_000,
  );
  expect(command?.running).toBe(true);
});

test('a new version starts one new workflow; spec.paused pauses it, the promote annotation promotes it', async () => {
  // Slow steps: the rollout cannot finish by itself within the test.
  await apply(
    rolloutDocument('1.1.0', {
      paused: true,
      policy: { initialShare: 5, stepUp: 1, promoteAt: 100, probingTicks: 0 },
    }),
  );
  const paused = await until('phase Paused', phaseIs('Paused'));
  expect(paused.status).toMatchObject({ rolloutId: 'rollout-web-1.1.0', pausedBySpec: true });
  const shareWhilePaused = await canaryShare();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  expect(await canaryShare()).toBe(shareWhilePaused);

  await apply(
    rolloutDocument('1.1.0', {
      paused: false,
      policy: { initialShare: 5, stepUp: 1, promoteAt: 100, probingTicks: 0 },
    }),
  );
  await until('resumed', async () => {
    const resource = await read();
    return resource?.status?.phase !== 'Paused' && resource?.status?.pausedBySpec === false;
  });
  await stack.admin.mergePatch(canaryRolloutsRef(NAMESPACE, 'web'), {
    metadata: { annotations: { [PROMOTE_ANNOTATION]: 'now' } },
  });
  await until('phase Promoted', phaseIs('Promoted'));
  const resource = await read();
  expect(resource?.metadata.annotations?.[PROMOTE_ANNOTATION]).toBeUndefined();
  expect(await canaryShare()).toBe(100);
});

test('deleting the resource rolls the running canary back before the resource goes', async () => {
  await apply(
    rolloutDocument('1.2.0', { policy: { initialShare: 20, stepUp: 1, promoteAt: 100, probingTicks: 0 } }),
  );
  await until('rollout 1.2.0 at 20 %', async () => {
    const resource = await read();
    return resource?.status?.rolloutId === 'rollout-web-1.2.0' && (resource.status.share ?? 0) >= 20;
  });
  await until('the route at 20 %', async () => (await canaryShare()) >= 20);
  await stack.admin.delete(canaryRolloutsRef(NAMESPACE, 'web'));
  await until('the resource to be gone', async () => (await read()) === undefined);
  expect(await canaryShare()).toBe(0);
  const result = await new RolloutClient(servers.env.client).result('rollout-web-1.2.0');
  expect(result.outcome).toBe('rolled_back');
});

test('a CanaryRollout the validators refuse starts nothing; its status names each field and rule', async () => {
  const broken = rolloutDocument('3.0.0', { policy: { initialShare: 60, promoteAt: 50 } });
  await stack.admin.apply(
    canaryRolloutsRef(NAMESPACE, 'broken'),
    { ...broken, metadata: { name: 'broken', namespace: NAMESPACE } },
    'kubectl',
  );
  const refused = await until('phase Invalid', async () => {
    const resource = await stack.admin.find<CanaryRollout>(canaryRolloutsRef(NAMESPACE, 'broken'));
    return resource?.status?.phase === 'Invalid' ? resource : undefined;
  });
  const condition = refused.status?.conditions?.find((c) => c.type === 'SpecValid');
  expect(condition).toMatchObject({ status: 'False', reason: 'Invalid' });
  expect(condition?.message).toContain('spec.policy.initialShare: must not exceed policy.promoteAt (50)');
  expect(refused.status?.rolloutId).toBeUndefined();
});

test('the watch outlives an API server restart: a change made after it is reconciled', async () => {
  await stack.restartApiserver();
  await apply(rolloutDocument('4.0.0'));
  const promoted = await until('rollout 4.0.0 promoted', async () => {
    const resource = await read();
    return resource?.status?.rolloutId === 'rollout-web-4.0.0' && resource.status.phase === 'Promoted'
      ? resource
      : undefined;
  });
  expect(promoted.status?.share).toBe(100);
});
