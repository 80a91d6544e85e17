/**
 * Kubernetes Gateway API: the canary share is the weight of two backendRefs of one HTTPRoute
 * rule, written by server-side apply. Tested against a real kube-apiserver with the Gateway API
 * CRDs (test/routing/kubernetes-routers.test.ts); no gateway data plane runs there.
 */
import type { AdapterSpec } from '../rollout/spec';
import type { FieldReader } from '../core/validation';
import { ValidationError } from '../core/validation';
import type { KubernetesObject, ResourceRef } from '../platform/kubernetes';
import {
  KUBERNETES_CONNECTION_KEYS,
  KubernetesObjectRouter,
  OBJECT_NAME,
  readKubernetesConnection,
  readServiceRef,
  type KubernetesConnectionOptions,
} from './kubernetes-object-router';
import { RouterUnavailableError, type RoutingObservation } from './traffic-router';
import { shareOfWeights, weightsForShare } from './weights';

/** HTTPRoute backendRef weights go from 0 to 1,000,000. */
const MAX_WEIGHT = 1_000_000;

export interface GatewayApiRouterOptions extends KubernetesConnectionOptions {
  route: string;
  /** Index of the rule in spec.rules whose backendRefs carry the split. */
  rule: number;
  backends: Record<'baseline' | 'canary', { name: string; port: number }>;
  /** How long the gateway controller may take to accept a new generation; 0 = do not wait. */
  settleTimeoutMs: number;
}

export function parseGatewayApiRouterSpec(
  spec: AdapterSpec,
  r: FieldReader,
  field: string,
): GatewayApiRouterOptions | undefined {
  r.onlyKeys(spec, [...KUBERNETES_CONNECTION_KEYS, 'route', 'rule', 'backends', 'settleTimeout'], field);
  const connection = readKubernetesConnection('gateway-api', spec, r, field);
  const route = r.string(spec.route, `${field}.route`, OBJECT_NAME, 'must be an HTTPRoute name');
  const rule = r.number(spec.rule, `${field}.rule`, { min: 0, max: 15, integer: true }, 0);
  const backendsIn = r.object(spec.backends, `${field}.backends`);
  if (backendsIn) r.onlyKeys(backendsIn, ['baseline', 'canary'], `${field}.backends`);
  const baseline = backendsIn && readServiceRef(r, backendsIn.baseline, `${field}.backends.baseline`);
  const canary = backendsIn && readServiceRef(r, backendsIn.canary, `${field}.backends.canary`);
  if (baseline && canary && baseline.name === canary.name)
    r.fail(`${field}.backends.canary.name`, 'must differ from backends.baseline.name');
  const settleTimeoutMs = r.duration(
    spec.settleTimeout,
    `${field}.settleTimeout`,
    { minMs: 0, maxMs: 300_000 },
    30_000,
  );
  if (!connection || !route || rule === undefined || !baseline || !canary || settleTimeoutMs === undefined)
    return undefined;
  return { ...connection, route, rule, backends: { baseline, canary }, settleTimeoutMs };
}

interface BackendRef {
  name: string;
  port?: number;
  weight?: number;
  kind?: string;
  group?: string;
}

type HttpRouteRule = { backendRefs?: BackendRef[] } & Record<string, unknown>;

interface HttpRoute extends KubernetesObject {
  spec: { rules?: HttpRouteRule[] };
  status?: {
    parents?: {
      conditions?: { type: string; status: string; observedGeneration?: number; message?: string }[];
    }[];
  };
}

/**
 * An HTTPRoute's backendRef weights. `spec.rules` is an atomic list, so each change applies the
 * whole list as read with the weights changed, under the route's resourceVersion (a concurrent
 * edit answers 409 and the change is redone on the new version). With a settle timeout the
 * gateway controller's acceptance (status.parents conditions for the new generation) is what
 * "applied" means. The route says nothing about backend health, so neither does this router.
 */
export class GatewayApiRouter extends KubernetesObjectRouter {
  constructor(
    private readonly options: GatewayApiRouterOptions,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    super('gateway-api', options, env);
  }

  async reconcile(): Promise<void> {
    // A missing backend joins with weight 0: reconciling never moves traffic by itself.
    await this.applyRules((refs) => {
      const missing = (['baseline', 'canary'] as const).filter((role) => this.indexOf(refs, role) < 0);
      if (missing.length === 0) return undefined;
      return [...refs, ...missing.map((role) => ({ ...this.options.backends[role], weight: 0 }))];
    });
  }

  protected describeUpstream(role: 'baseline' | 'canary'): string {
    return `${role} Service ${this.options.namespace}/${this.options.backends[role].name}`;
  }

  protected async observe(): Promise<RoutingObservation> {
    const route = await this.read<HttpRoute>(this.routeRef(), 'router.route');
    const refs = this.backendRefs(route);
    return {
      share: shareOfWeights({
        baseline: this.weightOf(refs, 'baseline'),
        canary: this.weightOf(refs, 'canary'),
      }),
      healthy: { baseline: undefined, canary: undefined },
    };
  }

  protected async apply(share: number): Promise<void> {
    const weights = weightsForShare(share, MAX_WEIGHT);
    const stored = await this.applyRules((refs) => {
      for (const role of ['baseline', 'canary'] as const) this.weightOf(refs, role);
      return refs.map((ref, index) => {
        const role = (['baseline', 'canary'] as const).find(
          (candidate) => this.indexOf(refs, candidate) === index,
        );
        return role ? { ...ref, weight: weights[role] } : ref;
      });
    });
    if (stored && this.options.settleTimeoutMs > 0)
      await this.waitForAcceptance(stored.metadata.generation ?? 0);
  }

  /** Applies the route's rules with the chosen rule's backendRefs replaced by `change(refs)`. */
  private applyRules(
    change: (refs: BackendRef[]) => BackendRef[] | undefined,
  ): Promise<HttpRoute | undefined> {
    return this.applyLatest<HttpRoute>(this.routeRef(), 'router.route', (route) => {
      if (!route) return undefined; // applyLatest reports the 404 through read below
      const refs = change(this.backendRefs(route));
      if (!refs) return undefined;
      const rules = (route.spec.rules ?? []).map((rule, index) =>
        index === this.options.rule ? { ...rule, backendRefs: refs } : rule,
      );
      return {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name: this.options.route, namespace: this.options.namespace },
        spec: { rules },
      };
    }).then(async (stored) => stored ?? (await this.read<HttpRoute>(this.routeRef(), 'router.route')));
  }

  private async waitForAcceptance(generation: number): Promise<void> {
    const deadline = Date.now() + this.options.settleTimeoutMs;
    let reason = 'no status yet';
    for (;;) {
      const route = await this.read<HttpRoute>(this.routeRef(), 'router.route');
      const parents = route.status?.parents ?? [];
      const pending = parents.flatMap((parent) =>
        ['Accepted', 'ResolvedRefs'].flatMap((type) => {
          const condition = parent.conditions?.find((candidate) => candidate.type === type);
          if (condition?.status === 'True' && (condition.observedGeneration ?? 0) >= generation) return [];
          return [
            `${type}=${condition?.status ?? 'missing'}${condition?.message ? ` (${condition.message})` : ''}`,
          ];
        }),
      );
      if (parents.length > 0 && pending.length === 0) return;
      if (parents.length > 0) reason = pending.join(', ');
      if (Date.now() >= deadline) {
        throw new RouterUnavailableError(
          `gateway-api router: the gateway has not accepted generation ${generation} of HTTPRoute ${this.options.namespace}/${this.options.route} within ${this.options.settleTimeoutMs} ms: ${reason}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  private backendRefs(route: HttpRoute): BackendRef[] {
    const rule = route.spec.rules?.[this.options.rule];
    if (!rule) {
      throw new ValidationError([
        {
          field: 'router.rule',
          rule: `HTTPRoute ${this.options.namespace}/${this.options.route} has no rule ${this.options.rule}`,
        },
      ]);
    }
    return rule.backendRefs ?? [];
  }

  private weightOf(refs: BackendRef[], role: 'baseline' | 'canary'): number {
    const index = this.indexOf(refs, role);
    if (index < 0)
      throw new RouterUnavailableError(
        `gateway-api router: ${this.describeUpstream(role)} is not a backendRef of HTTPRoute ${this.options.namespace}/${this.options.route}; reconcile first`,
      );
    return refs[index]?.weight ?? 1; // the Gateway API default weight
  }

  private indexOf(refs: BackendRef[], role: 'baseline' | 'canary'): number {
    const name = this.options.backends[role].name;
    return refs.findIndex((ref) => ref.name === name && (ref.kind ?? 'Service') === 'Service' && !ref.group);
  }

  private routeRef(): ResourceRef {
    return {
      group: 'gateway.networking.k8s.io',
      version: 'v1',
      plural: 'httproutes',
      namespace: this.options.namespace,
      name: this.options.route,
    };
  }
}
