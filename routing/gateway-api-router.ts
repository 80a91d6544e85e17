/**
 * EXPERIMENTAL: Kubernetes Gateway API. Tested only against a recorded request/response
 * contract (test/routing/gateway-api-router.test.ts), never against a real cluster.
 */
import { request } from 'undici';
import { ROUTER_DEFAULT_TOKEN_ENV } from '../rollout/worker-policy';
import type { AdapterSpec } from '../rollout/spec';
import type { FieldReader } from '../core/validation';
import { ValidationError } from '../core/validation';
import { bearerFromTokenEnv, readCallTimeout } from './spec-fields';
import {
  ObservedRouter,
  RouterUnavailableError,
  unavailable,
  type RoutingObservation,
} from './traffic-router';
import { shareOfWeights, weightsForShare } from './weights';

/** HTTPRoute backendRef weights go from 0 to 1,000,000. */
const MAX_WEIGHT = 1_000_000;
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface GatewayApiRouterOptions {
  /** The Kubernetes API server, e.g. https://kubernetes.default.svc (system CAs; NODE_EXTRA_CA_CERTS for others). */
  apiServer: string;
  /** Worker environment variable with a bearer token allowed to get and patch the HTTPRoute. */
  tokenEnv: string;
  namespace: string;
  route: string;
  /** Index of the rule in spec.rules whose backendRefs carry the split. */
  rule: number;
  backends: Record<'baseline' | 'canary', { name: string; port: number }>;
  timeoutMs: number;
  /** How long the gateway controller may take to accept a new generation of the route. */
  settleTimeoutMs: number;
}

export function parseGatewayApiRouterSpec(
  spec: AdapterSpec,
  r: FieldReader,
  field: string,
): GatewayApiRouterOptions | undefined {
  r.onlyKeys(
    spec,
    ['kind', 'apiServer', 'tokenEnv', 'namespace', 'route', 'rule', 'backends', 'timeout', 'settleTimeout'],
    field,
  );
  const apiServer = r.string(
    spec.apiServer,
    `${field}.apiServer`,
    /^https?:\/\/[^\s/?#@]+\/?$/,
    'must be an https:// (or http://) URL of the API server',
  );
  const tokenEnv =
    spec.tokenEnv === undefined
      ? ROUTER_DEFAULT_TOKEN_ENV['gateway-api']
      : r.string(
          spec.tokenEnv,
          `${field}.tokenEnv`,
          /^[A-Za-z_][A-Za-z0-9_]*$/,
          'must be an environment variable name',
        );
  const namespace = r.string(
    spec.namespace,
    `${field}.namespace`,
    DNS_LABEL,
    'must be a Kubernetes namespace name',
  );
  const route = r.string(
    spec.route,
    `${field}.route`,
    /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/,
    'must be an HTTPRoute name',
  );
  const rule = r.number(spec.rule, `${field}.rule`, { min: 0, max: 15, integer: true }, 0);
  const backendsIn = r.object(spec.backends, `${field}.backends`);
  const readBackend = (role: 'baseline' | 'canary') => {
    const backend = backendsIn ? r.object(backendsIn[role], `${field}.backends.${role}`) : undefined;
    if (!backend) return undefined;
    r.onlyKeys(backend, ['name', 'port'], `${field}.backends.${role}`);
    const name = r.string(
      backend.name,
      `${field}.backends.${role}.name`,
      DNS_LABEL,
      'must be a Service name',
    );
    const port = r.number(backend.port, `${field}.backends.${role}.port`, {
      min: 1,
      max: 65_535,
      integer: true,
    });
    return name !== undefined && port !== undefined ? { name, port } : undefined;
  };
  if (backendsIn) r.onlyKeys(backendsIn, ['baseline', 'canary'], `${field}.backends`);
  const baseline = readBackend('baseline');
  const canary = readBackend('canary');
  if (baseline && canary && baseline.name === canary.name)
    r.fail(`${field}.backends.canary.name`, 'must differ from backends.baseline.name');
  const timeoutMs = readCallTimeout(r, spec.timeout, `${field}.timeout`);
  const settleTimeoutMs = r.duration(
    spec.settleTimeout,
    `${field}.settleTimeout`,
    { minMs: 0, maxMs: 300_000 },
    30_000,
  );
  if (!apiServer || !tokenEnv || !namespace || !route || rule === undefined || !baseline || !canary)
    return undefined;
  if (timeoutMs === undefined || settleTimeoutMs === undefined) return undefined;
  return {
    apiServer: apiServer.replace(/\/$/, ''),
    tokenEnv,
    namespace,
    route,
    rule,
    backends: { baseline, canary },
    timeoutMs,
    settleTimeoutMs,
  };
}

interface BackendRef {
  name: string;
  port?: number;
  weight?: number;
  kind?: string;
  group?: string;
}

interface HttpRoute {
  metadata: { resourceVersion: string; generation: number };
  spec: { rules?: { backendRefs?: BackendRef[] }[] };
  status?: {
    parents?: {
      conditions?: { type: string; status: string; observedGeneration?: number; message?: string }[];
    }[];
  };
}

type JsonPatchOperation = { op: 'test' | 'replace' | 'add'; path: string; value: unknown };

/**
 * An HTTPRoute's backendRef weights, patched through the Kubernetes API with a JSON Patch that
 * first tests the resourceVersion it read (a concurrent edit makes the patch fail, retryably).
 * The gateway controller's acceptance (status.parents conditions for the new generation) is
 * what "applied" means. The route says nothing about backend health, so neither does this router.
 */
export class GatewayApiRouter extends ObservedRouter {
  readonly kind = 'gateway-api';
  private readonly authorization: string;

  constructor(
    private readonly options: GatewayApiRouterOptions,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    super();
    this.authorization = bearerFromTokenEnv(env, options.tokenEnv);
  }

  async reconcile(): Promise<void> {
    const route = await this.read();
    const refs = this.backendRefs(route);
    const missing = (['baseline', 'canary'] as const).filter((role) => this.indexOf(refs, role) < 0);
    if (missing.length === 0) return;
    // A missing backend joins with weight 0: reconciling never moves traffic by itself.
    await this.patch(route, [
      ...missing.map((role) => ({
        op: 'add' as const,
        path: `/spec/rules/${this.options.rule}/backendRefs/-`,
        value: { name: this.options.backends[role].name, port: this.options.backends[role].port, weight: 0 },
      })),
    ]);
  }

  async close(): Promise<void> {}

  protected describeUpstream(role: 'baseline' | 'canary'): string {
    return `${role} Service ${this.options.namespace}/${this.options.backends[role].name}`;
  }

  protected async observe(): Promise<RoutingObservation> {
    const route = await this.read();
    const refs = this.backendRefs(route);
    const weight = (role: 'baseline' | 'canary') => {
      const index = this.indexOf(refs, role);
      if (index < 0)
        throw new RouterUnavailableError(
          `gateway-api router: ${this.describeUpstream(role)} is not a backendRef of the route`,
        );
      return refs[index]?.weight ?? 1; // the Gateway API default weight
    };
    return {
      share: shareOfWeights({ baseline: weight('baseline'), canary: weight('canary') }),
      healthy: { baseline: undefined, canary: undefined },
    };
  }

  protected async apply(share: number): Promise<void> {
    const weights = weightsForShare(share, MAX_WEIGHT);
    const route = await this.read();
    const refs = this.backendRefs(route);
    const patched = await this.patch(
      route,
      (['baseline', 'canary'] as const).map((role) => {
        const index = this.indexOf(refs, role);
        if (index < 0)
          throw new RouterUnavailableError(
            `gateway-api router: ${this.describeUpstream(role)} is not a backendRef of the route; reconcile first`,
          );
        return {
          op: 'add' as const,
          path: `/spec/rules/${this.options.rule}/backendRefs/${index}/weight`,
          value: weights[role],
        };
      }),
    );
    await this.waitForAcceptance(patched.metadata.generation);
  }

  private async waitForAcceptance(generation: number): Promise<void> {
    const deadline = Date.now() + this.options.settleTimeoutMs;
    let reason = 'no status yet';
    for (;;) {
      const route = await this.read();
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

  private indexOf(refs: BackendRef[], role: 'baseline' | 'canary'): number {
    const name = this.options.backends[role].name;
    return refs.findIndex((ref) => ref.name === name && (ref.kind ?? 'Service') === 'Service' && !ref.group);
  }

  private routeUrl(): string {
    const { apiServer, namespace, route } = this.options;
    return `${apiServer}/apis/gateway.networking.k8s.io/v1/namespaces/${namespace}/httproutes/${route}`;
  }

  private read(): Promise<HttpRoute> {
    return this.call('GET', undefined);
  }

  private patch(route: HttpRoute, operations: JsonPatchOperation[]): Promise<HttpRoute> {
    const guard: JsonPatchOperation = {
      op: 'test',
      path: '/metadata/resourceVersion',
      value: route.metadata.resourceVersion,
    };
    return this.call('PATCH', [guard, ...operations]);
  }

  private async call(method: 'GET' | 'PATCH', body: JsonPatchOperation[] | undefined): Promise<HttpRoute> {
    let status: number;
    let answer: unknown;
    try {
      const response = await request(this.routeUrl(), {
        method,
        headers: {
          authorization: this.authorization,
          accept: 'application/json',
          ...(body ? { 'content-type': 'application/json-patch+json' } : {}),
        },
        body: body ? JSON.stringify(body) : null,
        headersTimeout: this.options.timeoutMs,
        bodyTimeout: this.options.timeoutMs,
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      status = response.statusCode;
      answer = await response.body.json().catch(() => undefined);
    } catch (error) {
      throw unavailable(this.kind, `${method} ${this.routeUrl()}`, error);
    }
    if (status === 200) return answer as HttpRoute;
    const message = (answer as { message?: string } | undefined)?.message ?? `status ${status}`;
    if (status === 401 || status === 403) {
      throw new ValidationError([
        { field: 'router.tokenEnv', rule: `the API server refused the token: ${message}` },
      ]);
    }
    if (status === 404) {
      throw new ValidationError([
        {
          field: 'router.route',
          rule: `HTTPRoute ${this.options.namespace}/${this.options.route} does not exist`,
        },
      ]);
    }
    // 409 and 422 (the resourceVersion test failed: someone else changed the route), 429, 5xx.
    throw new RouterUnavailableError(`gateway-api router: ${method} answered ${status}: ${message}`);
  }
}
