/**
 * The Kubernetes routers (Gateway API HTTPRoute, Istio VirtualService + DestinationRule,
 * ingress-nginx canary Ingress) against a real kube-apiserver on kine, with the CRDs from the
 * Gateway API and Istio modules and a least-privilege ServiceAccount token. The router contract
 * here is about the objects: weights written, read back, kept under concurrent edits, refused
 * clearly. No gateway, istiod or ingress controller runs, so no request crosses a data plane.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRolloutActivities } from '../../activities';
import { crdFiles, KubernetesStack, readCrdFiles, type PolicyRule } from '../../devstack/kubernetes';
import type { KubernetesObject, ResourceRef } from '../../platform/kubernetes';
import { RouterRegistry, routerTemplateVariables } from '../../routing/routers';
import { RouterUnavailableError, type TrafficRouter } from '../../routing/traffic-router';
import { ValidationError } from '../../core/validation';
import type { AdapterSpec, RolloutSpec } from '../../rollout/spec';
import { routingOnlyDeps } from './support';

const NAMESPACE = 'shop';
const MANAGER = 'shop-gitops';
const targets: RolloutSpec['targets'] = {
  baseline: { url: 'http://127.0.0.1:8081' },
  canary: { url: 'http://127.0.0.1:8082' },
};

let dir: string;
let stack: KubernetesStack;
let token: string;

/** One kind of routing object: how to create it as a GitOps tool would, and read its weights. */
interface KubernetesRouterCase {
  kind: string;
  spec: (apiServer: string) => AdapterSpec;
  /** The object the router changes, as the operator's tooling applies it first. */
  seed: () => Promise<unknown>;
  weighted: ResourceRef;
  /** The canary share the stored object says, computed from its raw fields. */
  shareIn: (object: KubernetesObject) => number;
}

const ref = (group: string, plural: string, name: string): ResourceRef => ({
  group,
  version: 'v1',
  plural,
  namespace: NAMESPACE,
  name,
});

const httpRoute = ref('gateway.networking.k8s.io', 'httproutes', 'web');
const virtualService = ref('networking.istio.io', 'virtualservices', 'web');
const mainIngress = ref('networking.k8s.io', 'ingresses', 'web');
const canaryIngress = ref('networking.k8s.io', 'ingresses', 'web-canary');

type Weighted = { weight?: number; name?: string; destination?: { subset?: string } };

function shareOfRefs(refs: Weighted[], isCanary: (entry: Weighted) => boolean): number {
  const total = refs.reduce((sum, entry) => sum + (entry.weight ?? 0), 0);
  const canary = refs.filter(isCanary).reduce((sum, entry) => sum + (entry.weight ?? 0), 0);
  return total === 0 ? 0 : (100 * canary) / total;
}

const seedHttpRoute = (backendRefs: unknown[]) =>
  stack.admin.apply(
    httpRoute,
    {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: { name: 'web', namespace: NAMESPACE },
      spec: {
        parentRefs: [{ name: 'public' }],
        hostnames: ['shop.example.com'],
        rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs }],
      },
    },
    MANAGER,
    { force: true },
  );

const CASES: KubernetesRouterCase[] = [
  {
    kind: 'gateway-api',
    spec: (apiServer) => ({
      kind: 'gateway-api',
      apiServer,
      caEnv: 'CANARY_KUBERNETES_CA',
      namespace: NAMESPACE,
      route: 'web',
      backends: { baseline: { name: 'web-v1', port: 80 }, canary: { name: 'web-v2', port: 80 } },
      settleTimeout: '0s',
    }),
    seed: () => seedHttpRoute([{ name: 'web-v1', port: 80 }]),
    weighted: httpRoute,
    shareIn: (route) => {
      const refs = (route.spec as { rules: { backendRefs: Weighted[] }[] }).rules[0]!.backendRefs;
      return shareOfRefs(refs, (entry) => entry.name === 'web-v2');
    },
  },
  {
    kind: 'istio',
    spec: (apiServer) => ({
      kind: 'istio',
      apiServer,
      caEnv: 'CANARY_KUBERNETES_CA',
      namespace: NAMESPACE,
      virtualService: 'web',
      host: 'web',
      subsets: {
        baseline: { name: 'stable', labels: { track: 'stable' } },
        canary: { name: 'canary', labels: { track: 'canary' } },
      },
    }),
    seed: () =>
      stack.admin.apply(
        virtualService,
        {
          apiVersion: 'networking.istio.io/v1',
          kind: 'VirtualService',
          metadata: { name: 'web', namespace: NAMESPACE },
          spec: {
            hosts: ['shop.example.com'],
            gateways: ['public'],
            http: [{ route: [{ destination: { host: 'web', subset: 'stable' } }] }],
          },
        },
        MANAGER,
        { force: true },
      ),
    weighted: virtualService,
    shareIn: (service) => {
      const routes = (service.spec as { http: { route: Weighted[] }[] }).http[0]!.route;
      return shareOfRefs(routes, (entry) => entry.destination?.subset === 'canary');
    },
  },
  {
    kind: 'ingress-nginx',
    spec: (apiServer) => ({
      kind: 'ingress-nginx',
      apiServer,
      caEnv: 'CANARY_KUBERNETES_CA',
      namespace: NAMESPACE,
      ingress: 'web',
      canaryService: { name: 'web-v2', port: 80 },
    }),
    seed: () =>
      stack.admin.apply(
        mainIngress,
        {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'Ingress',
          metadata: { name: 'web', namespace: NAMESPACE },
          spec: {
            ingressClassName: 'nginx',
            rules: [
              {
                host: 'shop.example.com',
                http: {
                  paths: [
                    {
                      path: '/',
                      pathType: 'Prefix',
                      backend: { service: { name: 'web-v1', port: { number: 80 } } },
                    },
                  ],
                },
              },
            ],
          },
        },
        MANAGER,
        { force: true },
      ),
    weighted: canaryIngress,
    shareIn: (ingress) => {
      const annotations = ingress.metadata.annotations ?? {};
      const weight = Number(annotations['nginx.ingress.kubernetes.io/canary-weight']);
      const total = Number(annotations['nginx.ingress.kubernetes.io/canary-weight-total'] ?? 100);
      return (100 * weight) / total;
    },
  },
];

/** Exactly what the three routers need, on exactly their objects. */
const ROUTER_RULES: PolicyRule[] = [
  {
    apiGroups: ['gateway.networking.k8s.io'],
    resources: ['httproutes'],
    resourceNames: ['web'],
    verbs: ['get', 'patch'],
  },
  {
    apiGroups: ['networking.istio.io'],
    resources: ['virtualservices'],
    resourceNames: ['web'],
    verbs: ['get', 'patch'],
  },
  { apiGroups: ['networking.istio.io'], resources: ['destinationrules'], verbs: ['get', 'create', 'patch'] },
  { apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: ['get', 'create', 'patch'] },
];

function env(): NodeJS.ProcessEnv {
  return { KUBERNETES_TOKEN: token, CANARY_KUBERNETES_CA: stack.caPem() };
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'canary-kubernetes-routers-'));
  stack = await KubernetesStack.start({ dir });
  await stack.installCrds(
    readCrdFiles([
      ...crdFiles(/_httproutes\.yaml$/),
      ...crdFiles(/^istio-customresourcedefinitions\.yaml$/),
    ]).filter((crd) =>
      [
        'httproutes.gateway.networking.k8s.io',
        'virtualservices.networking.istio.io',
        'destinationrules.networking.istio.io',
      ].includes(crd.metadata.name),
    ),
  );
  token = await stack.serviceAccountToken(NAMESPACE, 'canary-router', ROUTER_RULES);
  for (const routerCase of CASES) await routerCase.seed();
});

afterAll(async () => {
  await stack?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.each(CASES)('$kind router against the API server', (routerCase) => {
  let registry: RouterRegistry;
  let router: TrafficRouter;
  let activities: ReturnType<typeof createRolloutActivities>;
  let spec: AdapterSpec;
  const rolloutId = `rollout-web-${routerCase.kind}`;
  const setShare = (share: number) => activities.setCanaryWeight({ rolloutId, router: spec, targets, share });
  const stored = () => stack.admin.get(routerCase.weighted);

  beforeAll(() => {
    spec = routerCase.spec(stack.server);
    registry = new RouterRegistry({ env: env() });
    router = registry.routerFor(rolloutId, spec, targets);
    activities = createRolloutActivities(routingOnlyDeps(registry));
  });

  afterAll(() => registry?.close());

  test('reconcile adds the canary at 0 %, and a second reconcile changes nothing', async () => {
    await router.reconcile();
    const first = await stored();
    expect(routerCase.shareIn(first)).toBe(0);
    await expect(router.getCanaryWeight()).resolves.toBe(0);
    await router.reconcile();
    expect((await stored()).metadata.resourceVersion).toBe(first.metadata.resourceVersion);
  });

  test.each([0, 5, 50, 100])('sets %d %%, reads it back, and stores it in the object', async (share) => {
    await expect(setShare(share)).resolves.toEqual({ share });
    await expect(router.getCanaryWeight()).resolves.toBeCloseTo(share, 2);
    expect(routerCase.shareIn(await stored())).toBeCloseTo(share, 2);
    const version = (await stored()).metadata.resourceVersion;
    await setShare(share); // activities retry: the same share again writes nothing
    expect((await stored()).metadata.resourceVersion).toBe(version);
  });

  test('writes under its own field manager and keeps what the GitOps tool owns', async () => {
    await setShare(20);
    const object = await stored();
    const managers = (object.metadata as { managedFields?: { manager: string }[] }).managedFields ?? [];
    expect(managers.map((entry) => entry.manager)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^canary-platform/)]),
    );
    if (routerCase.kind === 'gateway-api')
      expect((object.spec as { hostnames: string[] }).hostnames).toEqual(['shop.example.com']);
  });

  test('another writer editing the object every 10 ms: every share still lands', async () => {
    let running = true;
    let edits = 0;
    const writer = (async () => {
      while (running) {
        await stack.admin.mergePatch(routerCase.weighted, {
          metadata: { labels: { 'edited-by': `writer-${edits}` } },
        });
        edits += 1;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    try {
      for (const share of [10, 30, 60]) {
        await expect(setShare(share)).resolves.toEqual({ share });
        expect(routerCase.shareIn(await stored())).toBeCloseTo(share, 2);
      }
    } finally {
      running = false;
      await writer;
    }
    expect(edits).toBeGreaterThan(3);
  });

  test('a token without RBAC permission is refused with the object named, not retried', async () => {
    const unprivileged = await stack.serviceAccountToken(NAMESPACE, `nobody-${routerCase.kind}`, []);
    const refused = new RouterRegistry({ env: { ...env(), KUBERNETES_TOKEN: unprivileged } });
    try {
      const failure = refused.routerFor(rolloutId, spec, targets).getCanaryWeight();
      await expect(failure).rejects.toThrow(ValidationError);
      await expect(failure).rejects.toThrow(
        new RegExp(
          `router.tokenEnv: RBAC refused .* ${routerCase.weighted.plural}\\.${routerCase.weighted.group} shop/${routerCase.weighted.name}`,
        ),
      );
    } finally {
      await refused.close();
    }
  });

  test('finalize leaves all traffic on the promoted or the kept side', async () => {
    await router.finalize('promoted');
    expect(routerCase.shareIn(await stored())).toBe(100);
    await router.finalize('rolled_back');
    expect(routerCase.shareIn(await stored())).toBe(0);
  });

  test('gives metric templates no variables (its data plane labels nothing per target it knows)', () => {
    expect(routerTemplateVariables(spec, targets)).toEqual({ baseline: {}, canary: {} });
  });
});

describe('refusals by the API server', () => {
  test("the HTTPRoute schema's refusal names the object and the field", async () => {
    await stack.admin.apply(
      ref('gateway.networking.k8s.io', 'httproutes', 'crowded'),
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name: 'crowded', namespace: NAMESPACE },
        spec: {
          rules: [{ backendRefs: Array.from({ length: 16 }, (_, i) => ({ name: `old-${i}`, port: 80 })) }],
        },
      },
      MANAGER,
    );
    const registry = new RouterRegistry({ env: { ...env(), KUBERNETES_TOKEN: stack.adminToken } });
    const spec = { ...CASES[0]!.spec(stack.server), route: 'crowded' };
    try {
      const failure = registry.routerFor('rollout-crowded', spec, targets).reconcile();
      await expect(failure).rejects.toThrow(ValidationError);
      await expect(failure).rejects.toThrow(
        /router: the API server's schema refused apply httproutes\.gateway\.networking\.k8s\.io shop\/crowded: .*backendRefs/,
      );
    } finally {
      await registry.close();
    }
  });

  test('the API server down: every router fails retryably, then works once it is back', async () => {
    const registry = new RouterRegistry({ env: env() });
    const routers = CASES.map((routerCase) =>
      registry.routerFor(`rollout-down-${routerCase.kind}`, routerCase.spec(stack.server), targets),
    );
    try {
      await stack.stopApiserver();
      try {
        for (const router of routers) {
          const failure = router.setCanaryWeight(15);
          await expect(failure).rejects.toThrow(RouterUnavailableError);
          await expect(failure).rejects.not.toHaveProperty('nonRetryable', true);
        }
      } finally {
        await stack.restartApiserver();
      }
      for (const router of routers) {
        await router.setCanaryWeight(15);
        await expect(router.getCanaryWeight()).resolves.toBeCloseTo(15, 2);
      }
    } finally {
      await registry.close();
    }
  });
});
