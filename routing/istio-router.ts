/**
 * Istio: the canary share is the weight of two destinations (subsets of one host) of one HTTP
 * route of a VirtualService; a DestinationRule that this router owns defines the two subsets by
 * pod labels. Written by server-side apply; tested against a real kube-apiserver with Istio's CRDs
 * (no istiod and no sidecars run there).
 */
import type { AdapterSpec } from '../rollout/spec';
import { ValidationError, type FieldReader } from '../core/validation';
import type { KubernetesObject, ResourceRef } from '../platform/kubernetes';
import {
  KUBERNETES_CONNECTION_KEYS,
  KubernetesObjectRouter,
  OBJECT_NAME,
  readKubernetesConnection,
  type KubernetesConnectionOptions,
} from './kubernetes-object-router';
import { RouterUnavailableError, type RoutingObservation } from './traffic-router';

const LABEL_KEY = /^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$/;
const HOST = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
const ROLES = ['baseline', 'canary'] as const;
type Role = (typeof ROLES)[number];

export interface IstioSubset {
  name: string;
  labels: Record<string, string>;
}

export interface IstioRouterOptions extends KubernetesConnectionOptions {
  virtualService: string;
  /** Index of the route in spec.http whose destinations carry the split. */
  route: number;
  /** The Service host both subsets belong to, as the VirtualService names it. */
  host: string;
  destinationRule: string;
  subsets: Record<Role, IstioSubset>;
}

export function parseIstioRouterSpec(
  spec: AdapterSpec,
  r: FieldReader,
  field: string,
): IstioRouterOptions | undefined {
  r.onlyKeys(
    spec,
    [...KUBERNETES_CONNECTION_KEYS, 'virtualService', 'route', 'host', 'destinationRule', 'subsets'],
    field,
  );
  const connection = readKubernetesConnection('istio', spec, r, field);
  const virtualService = r.string(
    spec.virtualService,
    `${field}.virtualService`,
    OBJECT_NAME,
    'must be a VirtualService name',
  );
  const route = r.number(spec.route, `${field}.route`, { min: 0, max: 63, integer: true }, 0);
  const host = r.string(spec.host, `${field}.host`, HOST, 'must be a Service host name');
  const destinationRule =
    spec.destinationRule === undefined
      ? virtualService
      : r.string(
          spec.destinationRule,
          `${field}.destinationRule`,
          OBJECT_NAME,
          'must be a DestinationRule name',
        );
  const subsetsIn = r.object(spec.subsets, `${field}.subsets`);
  if (subsetsIn) r.onlyKeys(subsetsIn, ROLES, `${field}.subsets`);
  const readSubset = (role: Role): IstioSubset | undefined => {
    const at = `${field}.subsets.${role}`;
    const subset = subsetsIn && r.object(subsetsIn[role], at);
    if (!subset) return undefined;
    r.onlyKeys(subset, ['name', 'labels'], at);
    const name = r.string(
      subset.name,
      `${at}.name`,
      /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
      'must be a subset name',
    );
    const labelsIn = r.object(subset.labels, `${at}.labels`);
    if (!labelsIn) return undefined;
    const labels: Record<string, string> = {};
    for (const [key, value] of Object.entries(labelsIn)) {
      if (!LABEL_KEY.test(key)) r.fail(`${at}.labels`, `${key} is not a label key`);
      else if (typeof value !== 'string' || !LABEL_VALUE.test(value))
        r.fail(`${at}.labels.${key}`, 'must be a label value');
      else labels[key] = value;
    }
    if (Object.keys(labelsIn).length === 0) r.fail(`${at}.labels`, 'must name at least one pod label');
    return name ? { name, labels } : undefined;
  };
  const baseline = readSubset('baseline');
  const canary = readSubset('canary');
  if (baseline && canary && baseline.name === canary.name)
    r.fail(`${field}.subsets.canary.name`, 'must differ from subsets.baseline.name');
  if (
    !connection ||
    !virtualService ||
    route === undefined ||
    !host ||
    !destinationRule ||
    !baseline ||
    !canary
  )
    return undefined;
  return { ...connection, virtualService, route, host, destinationRule, subsets: { baseline, canary } };
}

interface Destination {
  destination: { host: string; subset?: string; port?: unknown };
  weight?: number;
}

type HttpRoute = { route?: Destination[] } & Record<string, unknown>;

interface VirtualService extends KubernetesObject {
  spec: { http?: HttpRoute[] };
}

/** Istio refuses weights that do not add up to 100, so shares are whole percents. */
function istioWeights(share: number): Record<Role, number> {
  if (!Number.isInteger(share))
    throw new ValidationError([
      { field: 'share', rule: `must be a whole percent for the istio router (${share} %)` },
    ]);
  return { baseline: 100 - share, canary: share };
}

/**
 * `spec.http` is an atomic list, so each change applies the whole list as read with the weights
 * changed, under the object's resourceVersion (a concurrent edit answers 409 and is retried).
 */
export class IstioRouter extends KubernetesObjectRouter {
  constructor(
    private readonly options: IstioRouterOptions,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    super('istio', options, env);
  }

  async reconcile(): Promise<void> {
    const { namespace, destinationRule, host, subsets } = this.options;
    await this.applyLatest(this.destinationRuleRef(), 'router.destinationRule', () => ({
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: destinationRule, namespace },
      spec: { host, subsets: ROLES.map((role) => subsets[role]) },
    }));
    // A missing destination joins with weight 0 (a lone one keeps all traffic): no traffic moves.
    await this.applyDestinations((destinations) => {
      const missing = ROLES.filter((role) => this.indexOf(destinations, role) < 0);
      if (missing.length === 0) return undefined;
      const kept = destinations.map((destination) => ({
        ...destination,
        weight: this.weightIn(destinations, destination),
      }));
      return [
        ...kept,
        ...missing.map((role) => ({
          destination: { host, subset: subsets[role].name },
          weight: kept.length === 0 && role === 'baseline' ? 100 : 0,
        })),
      ];
    });
  }

  protected describeUpstream(role: Role): string {
    return `${role} subset ${this.options.subsets[role].name} of ${this.options.host}`;
  }

  protected async observe(): Promise<RoutingObservation> {
    const service = await this.read<VirtualService>(this.virtualServiceRef(), 'router.virtualService');
    const destinations = this.destinations(service);
    const weight = (role: Role) => {
      const index = this.indexOf(destinations, role);
      if (index < 0)
        throw new RouterUnavailableError(
          `istio router: ${this.describeUpstream(role)} is not a destination of VirtualService ${this.options.namespace}/${this.options.virtualService}; reconcile first`,
        );
      return this.weightIn(destinations, destinations[index]!);
    };
    const [baseline, canary] = [weight('baseline'), weight('canary')];
    const total = baseline + canary;
    return {
      share: total === 0 ? 0 : (100 * canary) / total,
      healthy: { baseline: undefined, canary: undefined },
    };
  }

  protected async apply(share: number): Promise<void> {
    const weights = istioWeights(share);
    await this.applyDestinations((destinations) =>
      destinations.map((destination) => {
        const role = ROLES.find((candidate) => this.matches(destination, candidate));
        return { ...destination, weight: role ? weights[role] : 0 };
      }),
    );
  }

  /** Istio's default: a destination without a weight takes all traffic when it is alone. */
  private weightIn(destinations: Destination[], destination: Destination): number {
    return destination.weight ?? (destinations.length === 1 ? 100 : 0);
  }

  private applyDestinations(
    change: (destinations: Destination[]) => Destination[] | undefined,
  ): Promise<unknown> {
    return this.applyLatest<VirtualService>(this.virtualServiceRef(), 'router.virtualService', (service) => {
      if (!service) return undefined;
      const destinations = change(this.destinations(service));
      if (!destinations) return undefined;
      const http = (service.spec.http ?? []).map((route, index) =>
        index === this.options.route ? { ...route, route: destinations } : route,
      );
      return {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: this.options.virtualService, namespace: this.options.namespace },
        spec: { http },
      };
    }).then(
      (stored) => stored ?? this.read<VirtualService>(this.virtualServiceRef(), 'router.virtualService'),
    );
  }

  private destinations(service: VirtualService): Destination[] {
    const route = service.spec.http?.[this.options.route];
    if (!route)
      throw new ValidationError([
        {
          field: 'router.route',
          rule: `VirtualService ${this.options.namespace}/${this.options.virtualService} has no http route ${this.options.route}`,
        },
      ]);
    return route.route ?? [];
  }

  private matches(destination: Destination, role: Role): boolean {
    return (
      destination.destination.host === this.options.host &&
      destination.destination.subset === this.options.subsets[role].name
    );
  }

  private indexOf(destinations: Destination[], role: Role): number {
    return destinations.findIndex((destination) => this.matches(destination, role));
  }

  private virtualServiceRef(): ResourceRef {
    return this.istioRef('virtualservices', this.options.virtualService);
  }

  private destinationRuleRef(): ResourceRef {
    return this.istioRef('destinationrules', this.options.destinationRule);
  }

  private istioRef(plural: string, name: string): ResourceRef {
    return { group: 'networking.istio.io', version: 'v1', plural, namespace: this.options.namespace, name };
  }
}
