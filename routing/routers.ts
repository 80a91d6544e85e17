/**
 * The router factory: a rollout spec's `router: { kind, ...options }` becomes a TrafficRouter.
 * Strict by design: an unknown kind, an unknown option or a bad value is a ValidationError
 * naming the field, raised before any router is touched.
 */
import type { AdapterSpec, RolloutSpec } from '../rollout/spec';
import { FieldReader } from '../core/validation';
import {
  BUILTIN_TEMPLATE_VARIABLES,
  BuiltinRouter,
  parseBuiltinRouterSpec,
  type BuiltinRouterOptions,
} from './builtin-router';
import {
  GatewayApiRouter,
  parseGatewayApiRouterSpec,
  type GatewayApiRouterOptions,
} from './gateway-api-router';
import {
  HaproxyRouter,
  haproxyTemplateVariables,
  parseHaproxyRouterSpec,
  type HaproxyRouterOptions,
} from './haproxy-router';
import {
  IngressNginxRouter,
  parseIngressNginxRouterSpec,
  type IngressNginxRouterOptions,
} from './ingress-nginx-router';
import { IstioRouter, parseIstioRouterSpec, type IstioRouterOptions } from './istio-router';
import { NginxRouter, parseNginxRouterSpec, type NginxRouterOptions } from './nginx-router';
import { NO_TEMPLATE_VARIABLES, type TemplateVariables, type TrafficRouter } from './traffic-router';

export const ROUTER_KINDS = ['builtin', 'haproxy', 'nginx', 'gateway-api', 'istio', 'ingress-nginx'] as const;
export type RouterKind = (typeof ROUTER_KINDS)[number];

export type RouterConfig =
  | { kind: 'builtin'; options: BuiltinRouterOptions }
  | { kind: 'haproxy'; options: HaproxyRouterOptions }
  | { kind: 'nginx'; options: NginxRouterOptions }
  | { kind: 'gateway-api'; options: GatewayApiRouterOptions }
  | { kind: 'istio'; options: IstioRouterOptions }
  | { kind: 'ingress-nginx'; options: IngressNginxRouterOptions };

const ORIGIN = /^https?:\/\/[^\s/?#@]+\/?$/;

/**
 * Validates a router spec (and, when given, that the targets are origins a router can send
 * to); the CLI calls it before starting a rollout. Throws a ValidationError listing every issue.
 */
export function validateRouterSpec(spec: unknown, targets?: RolloutSpec['targets']): RouterConfig {
  const r = new FieldReader();
  const config = readRouterSpec(r, spec, 'router');
  for (const role of ['baseline', 'canary'] as const) {
    const url = targets?.[role].url;
    if (url !== undefined && (!ORIGIN.test(url) || !URL.canParse(url)))
      r.fail(`targets.${role}.url`, 'must be an origin (scheme://host:port, no path) to be routed');
  }
  r.throwIfAny();
  return config!;
}

function readRouterSpec(r: FieldReader, spec: unknown, field: string): RouterConfig | undefined {
  const object = r.object(spec, field);
  if (!object) return undefined;
  const kind = r.oneOf(object.kind, `${field}.kind`, ROUTER_KINDS);
  const adapter = object as AdapterSpec;
  switch (kind) {
    case 'builtin': {
      const options = parseBuiltinRouterSpec(adapter, r, field);
      return options && { kind, options };
    }
    case 'haproxy': {
      const options = parseHaproxyRouterSpec(adapter, r, field);
      return options && { kind, options };
    }
    case 'nginx': {
      const options = parseNginxRouterSpec(adapter, r, field);
      return options && { kind, options };
    }
    case 'gateway-api': {
      const options = parseGatewayApiRouterSpec(adapter, r, field);
      return options && { kind, options };
    }
    case 'istio': {
      const options = parseIstioRouterSpec(adapter, r, field);
      return options && { kind, options };
    }
    case 'ingress-nginx': {
      const options = parseIngressNginxRouterSpec(adapter, r, field);
      return options && { kind, options };
    }
    case undefined:
      return undefined;
  }
}

export function createRouter(
  spec: AdapterSpec,
  targets: RolloutSpec['targets'],
  env: NodeJS.ProcessEnv = process.env,
): TrafficRouter {
  const config = validateRouterSpec(spec, targets);
  switch (config.kind) {
    case 'builtin':
      return new BuiltinRouter(config.options, targets, env);
    case 'haproxy':
      return new HaproxyRouter(config.options, targets);
    case 'nginx':
      return new NginxRouter(config.options, targets);
    case 'gateway-api':
      return new GatewayApiRouter(config.options, env);
    case 'istio':
      return new IstioRouter(config.options, env);
    case 'ingress-nginx':
      return new IngressNginxRouter(config.options, env);
  }
}

/**
 * What the router gives metric query templates for each target: the label values its own
 * metrics carry (pure: validates the spec, touches no router). NGINX's stub status and the
 * Kubernetes routers' data planes label nothing per target that the router knows, so those give none.
 */
export function routerTemplateVariables(
  spec: AdapterSpec,
  targets?: RolloutSpec['targets'],
): TemplateVariables {
  const config = validateRouterSpec(spec, targets);
  switch (config.kind) {
    case 'builtin':
      return BUILTIN_TEMPLATE_VARIABLES;
    case 'haproxy':
      return haproxyTemplateVariables(config.options);
    case 'nginx':
    case 'gateway-api':
    case 'istio':
    case 'ingress-nginx':
      return NO_TEMPLATE_VARIABLES;
  }
}

/** The port the routing activities call. */
export interface RouterProvider {
  /** The router for one rollout; may be cached per rollout. Throws ValidationError on bad config. */
  routerFor(rolloutId: string, spec: AdapterSpec, targets: RolloutSpec['targets']): TrafficRouter;
}

/**
 * The worker's RouterProvider: one router per rollout, kept while its spec and targets stay
 * the same (a changed spec replaces it), the least recently used closed beyond `maxRouters`.
 */
export class RouterRegistry implements RouterProvider {
  private readonly routers = new Map<string, { key: string; router: TrafficRouter }>();

  constructor(private readonly options: { maxRouters?: number; env?: NodeJS.ProcessEnv } = {}) {}

  routerFor(rolloutId: string, spec: AdapterSpec, targets: RolloutSpec['targets']): TrafficRouter {
    const key = JSON.stringify({ spec, targets });
    const cached = this.routers.get(rolloutId);
    this.routers.delete(rolloutId);
    if (cached?.key === key) {
      this.routers.set(rolloutId, cached);
      return cached.router;
    }
    if (cached) this.retire(cached.router);
    const router = createRouter(spec, targets, this.options.env);
    this.routers.set(rolloutId, { key, router });
    const maxRouters = this.options.maxRouters ?? 256;
    for (const [id, entry] of this.routers) {
      if (this.routers.size <= maxRouters) break;
      this.routers.delete(id);
      this.retire(entry.router);
    }
    return router;
  }

  async close(): Promise<void> {
    const routers = [...this.routers.values()].map((entry) => entry.router);
    this.routers.clear();
    await Promise.all(routers.map((router) => router.close()));
  }

  private retire(router: TrafficRouter): void {
    router.close().catch(() => undefined);
  }
}
