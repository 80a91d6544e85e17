/**
 * ingress-nginx canary: a second Ingress, owned by this router, copies the host and path rules
 * of the main Ingress, sends them to the canary Service and carries the `canary-weight`
 * annotations that ingress-nginx reads. Written by server-side apply; tested against a real
 * kube-apiserver (no ingress-nginx controller runs there).
 */
import type { AdapterSpec } from '../rollout/spec';
import type { FieldReader } from '../core/validation';
import type { KubernetesObject, ResourceRef } from '../platform/kubernetes';
import {
  KUBERNETES_CONNECTION_KEYS,
  KUBERNETES_FIELD_MANAGER,
  KubernetesObjectRouter,
  OBJECT_NAME,
  readKubernetesConnection,
  readServiceRef,
  type KubernetesConnectionOptions,
} from './kubernetes-object-router';
import { RouterUnavailableError, type RoutingObservation } from './traffic-router';
import { shareOfWeights, weightsForShare } from './weights';

const ANNOTATION = 'nginx.ingress.kubernetes.io';
/** ingress-nginx takes canary-weight out of canary-weight-total (default 100); 10,000 gives 0.01 %. */
const MAX_TOTAL = 10_000;
/** The weight annotations have their own field manager, so that reconciling never resets them. */
const WEIGHT_FIELD_MANAGER = `${KUBERNETES_FIELD_MANAGER}-weight`;

export interface IngressNginxRouterOptions extends KubernetesConnectionOptions {
  /** The main Ingress, which sends traffic to the baseline. */
  ingress: string;
  /** The canary Ingress this router creates and owns. */
  canaryIngress: string;
  canaryService: { name: string; port: number };
}

export function parseIngressNginxRouterSpec(
  spec: AdapterSpec,
  r: FieldReader,
  field: string,
): IngressNginxRouterOptions | undefined {
  r.onlyKeys(spec, [...KUBERNETES_CONNECTION_KEYS, 'ingress', 'canaryIngress', 'canaryService'], field);
  const connection = readKubernetesConnection('ingress-nginx', spec, r, field);
  const ingress = r.string(spec.ingress, `${field}.ingress`, OBJECT_NAME, 'must be an Ingress name');
  const canaryIngress =
    spec.canaryIngress === undefined
      ? ingress && `${ingress}-canary`
      : r.string(spec.canaryIngress, `${field}.canaryIngress`, OBJECT_NAME, 'must be an Ingress name');
  if (ingress && canaryIngress === ingress)
    r.fail(`${field}.canaryIngress`, 'must differ from router.ingress');
  const canaryService = readServiceRef(r, spec.canaryService, `${field}.canaryService`);
  if (!connection || !ingress || !canaryIngress || !canaryService) return undefined;
  return { ...connection, ingress, canaryIngress, canaryService };
}

interface IngressBackend {
  service?: { name: string; port: { number?: number; name?: string } };
  [key: string]: unknown;
}

interface Ingress extends KubernetesObject {
  spec: {
    ingressClassName?: string;
    defaultBackend?: IngressBackend;
    rules?: {
      host?: string;
      http?: { paths: { path?: string; pathType: string; backend: IngressBackend }[] };
    }[];
  };
}

export class IngressNginxRouter extends KubernetesObjectRouter {
  constructor(
    private readonly options: IngressNginxRouterOptions,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    super('ingress-nginx', options, env);
  }

  async reconcile(): Promise<void> {
    const main = await this.read<Ingress>(this.ingressRef(this.options.ingress), 'router.ingress');
    const backend = {
      service: { name: this.options.canaryService.name, port: { number: this.options.canaryService.port } },
    };
    const rules = (main.spec.rules ?? []).map((rule) => ({
      ...rule,
      ...(rule.http ? { http: { paths: rule.http.paths.map((entry) => ({ ...entry, backend })) } } : {}),
    }));
    const ref = this.canaryRef();
    await this.applyLatest(ref, 'router.canaryIngress', () => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: {
        name: this.options.canaryIngress,
        namespace: this.options.namespace,
        annotations: { [`${ANNOTATION}/canary`]: 'true' },
      },
      spec: {
        ...(main.spec.ingressClassName ? { ingressClassName: main.spec.ingressClassName } : {}),
        ...(main.spec.defaultBackend ? { defaultBackend: backend } : {}),
        rules,
      },
    }));
    // A new canary Ingress starts at weight 0: reconciling never moves traffic by itself.
    await this.applyWeights(
      0,
      (current) => current?.metadata.annotations?.[`${ANNOTATION}/canary-weight`] === undefined,
    );
  }

  protected describeUpstream(role: 'baseline' | 'canary'): string {
    return role === 'canary'
      ? `canary Service ${this.options.namespace}/${this.options.canaryService.name}`
      : `baseline behind Ingress ${this.options.namespace}/${this.options.ingress}`;
  }

  protected async observe(): Promise<RoutingObservation> {
    const canary = await this.readIfExists<Ingress>(this.canaryRef());
    const annotations = canary?.metadata.annotations ?? {};
    const weight = annotations[`${ANNOTATION}/canary-weight`];
    if (!canary || annotations[`${ANNOTATION}/canary`] !== 'true' || weight === undefined)
      throw new RouterUnavailableError(
        `ingress-nginx router: canary Ingress ${this.options.namespace}/${this.options.canaryIngress} is missing or has no canary weight; reconcile first`,
      );
    const total = Number(annotations[`${ANNOTATION}/canary-weight-total`] ?? '100');
    const canaryWeight = Math.min(Number(weight), total);
    return {
      share: shareOfWeights({ baseline: total - canaryWeight, canary: canaryWeight }),
      healthy: { baseline: undefined, canary: undefined },
    };
  }

  protected async apply(share: number): Promise<void> {
    await this.applyWeights(share, () => true);
  }

  private async applyWeights(share: number, when: (current: Ingress | undefined) => boolean): Promise<void> {
    const weights = weightsForShare(share, MAX_TOTAL);
    await this.applyLatest<Ingress>(
      this.canaryRef(),
      'router.canaryIngress',
      (current) =>
        current && when(current)
          ? {
              apiVersion: 'networking.k8s.io/v1',
              kind: 'Ingress',
              metadata: {
                name: this.options.canaryIngress,
                namespace: this.options.namespace,
                annotations: {
                  [`${ANNOTATION}/canary-weight`]: String(weights.canary),
                  [`${ANNOTATION}/canary-weight-total`]: String(weights.baseline + weights.canary),
                },
              },
            }
          : undefined,
      WEIGHT_FIELD_MANAGER,
    );
  }

  private canaryRef(): ResourceRef {
    return this.ingressRef(this.options.canaryIngress);
  }

  private ingressRef(name: string): ResourceRef {
    return {
      group: 'networking.k8s.io',
      version: 'v1',
      plural: 'ingresses',
      namespace: this.options.namespace,
      name,
    };
  }
}
