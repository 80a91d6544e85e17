/**
 * What the Kubernetes routers (Gateway API, Istio, ingress-nginx) share: the connection fields of
 * their spec, a client with the worker's token, server-side apply under one field manager with
 * retries when the object changed since it was read, and errors that name the object.
 */
import { ROUTER_DEFAULT_TOKEN_ENV } from '../rollout/worker-policy';
import type { AdapterSpec } from '../rollout/spec';
import { ValidationError, type FieldReader } from '../core/validation';
import {
  describeRef,
  KubernetesApiError,
  KubernetesClient,
  KubernetesUnreachableError,
  type KubernetesObject,
  type ResourceRef,
} from '../platform/kubernetes';
import { bearerFromTokenEnv, readCallTimeout } from './spec-fields';
import { ObservedRouter, RouterUnavailableError, unavailable } from './traffic-router';

export const KUBERNETES_FIELD_MANAGER = 'canary-platform';
export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const OBJECT_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Attempts of a read-modify-apply when another writer changes the object in between. */
const CONFLICT_ATTEMPTS = 8;
/** Jittered pause before re-reading, so two writers in lockstep drift apart. */
const CONFLICT_BACKOFF_MS = 50;

export type KubernetesRouterKind = 'gateway-api' | 'istio' | 'ingress-nginx';

export interface KubernetesConnectionOptions {
  /** The API server, e.g. https://kubernetes.default.svc; an endpoint the worker policy allows. */
  apiServer: string;
  /** Worker environment variable with a bearer token (a ServiceAccount's) allowed on the objects. */
  tokenEnv: string;
  /** Worker environment variable holding the PEM of the API server's CA; system CAs when absent. */
  caEnv: string | undefined;
  namespace: string;
  timeoutMs: number;
}

export const KUBERNETES_CONNECTION_KEYS = ['kind', 'apiServer', 'tokenEnv', 'caEnv', 'namespace', 'timeout'];

/** Reads the connection fields every Kubernetes router has. */
export function readKubernetesConnection(
  kind: KubernetesRouterKind,
  spec: AdapterSpec,
  r: FieldReader,
  field: string,
): KubernetesConnectionOptions | undefined {
  const apiServer = r.string(
    spec.apiServer,
    `${field}.apiServer`,
    /^https?:\/\/[^\s/?#@]+\/?$/,
    'must be an https:// (or http://) URL of the API server',
  );
  const envName = (value: unknown, name: string) =>
    r.string(value, `${field}.${name}`, ENV_NAME, 'must be an environment variable name');
  const tokenEnv =
    spec.tokenEnv === undefined ? ROUTER_DEFAULT_TOKEN_ENV[kind] : envName(spec.tokenEnv, 'tokenEnv');
  const caEnv = spec.caEnv === undefined ? undefined : envName(spec.caEnv, 'caEnv');
  const namespace = r.string(
    spec.namespace,
    `${field}.namespace`,
    DNS_LABEL,
    'must be a Kubernetes namespace name',
  );
  const timeoutMs = readCallTimeout(r, spec.timeout, `${field}.timeout`);
  if (!apiServer || !tokenEnv || !namespace || timeoutMs === undefined) return undefined;
  if (spec.caEnv !== undefined && !caEnv) return undefined;
  return { apiServer: apiServer.replace(/\/$/, ''), tokenEnv, caEnv, namespace, timeoutMs };
}

/** A `{ name, port }` Service reference of a router spec. */
export function readServiceRef(
  r: FieldReader,
  value: unknown,
  field: string,
): { name: string; port: number } | undefined {
  const backend = r.object(value, field);
  if (!backend) return undefined;
  r.onlyKeys(backend, ['name', 'port'], field);
  const name = r.string(backend.name, `${field}.name`, DNS_LABEL, 'must be a Service name');
  const port = r.number(backend.port, `${field}.port`, { min: 1, max: 65_535, integer: true });
  return name !== undefined && port !== undefined ? { name, port } : undefined;
}

/**
 * A router whose state is Kubernetes objects. Subclasses read objects with `read` and change
 * them with `applyLatest`, which reads, builds the applied configuration from what it read
 * (with that resourceVersion, so a concurrent edit answers 409) and retries on conflict.
 */
export abstract class KubernetesObjectRouter extends ObservedRouter {
  protected readonly client: KubernetesClient;

  constructor(
    readonly kind: KubernetesRouterKind,
    protected readonly connection: KubernetesConnectionOptions,
    env: NodeJS.ProcessEnv,
  ) {
    super();
    const token = bearerFromTokenEnv(env, connection.tokenEnv).slice('Bearer '.length);
    let ca: string | undefined;
    if (connection.caEnv !== undefined) {
      ca = env[connection.caEnv];
      if (!ca?.includes('BEGIN CERTIFICATE'))
        throw new ValidationError([
          {
            field: 'router.caEnv',
            rule: `environment variable ${connection.caEnv} must hold a PEM certificate on the worker`,
          },
        ]);
    }
    this.client = new KubernetesClient({
      server: connection.apiServer,
      token,
      ca,
      timeoutMs: connection.timeoutMs,
    });
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  /** The object; `missingField` names the spec field to blame when it does not exist. */
  protected async read<T extends KubernetesObject>(ref: ResourceRef, missingField: string): Promise<T> {
    try {
      return await this.client.get<T>(ref);
    } catch (error) {
      throw this.routerError(error, 'read', ref, missingField);
    }
  }

  protected async readIfExists<T extends KubernetesObject>(ref: ResourceRef): Promise<T | undefined> {
    try {
      return await this.client.find<T>(ref);
    } catch (error) {
      throw this.routerError(error, 'read', ref, 'router');
    }
  }

  /**
   * Server-side apply of `build(current)` (undefined: nothing to change) under `fieldManager`,
   * taking over the fields it names; retried when the object changed since it was read.
   * Returns the object as the server stored it.
   */
  protected async applyLatest<T extends KubernetesObject>(
    ref: ResourceRef,
    missingField: string,
    build: (current: T | undefined) => KubernetesObject | undefined,
    fieldManager = KUBERNETES_FIELD_MANAGER,
  ): Promise<T | undefined> {
    for (let attempt = 1; ; attempt += 1) {
      const current = await this.readIfExists<T>(ref);
      const applied = build(current);
      if (!applied) return current;
      if (current)
        applied.metadata = { ...applied.metadata, resourceVersion: current.metadata.resourceVersion };
      try {
        return await this.client.apply<T>(ref, applied, fieldManager, { force: true });
      } catch (error) {
        const conflict = error instanceof KubernetesApiError && error.status === 409;
        if (!conflict || attempt >= CONFLICT_ATTEMPTS)
          throw this.routerError(error, 'apply', ref, missingField);
        await new Promise((resolve) => setTimeout(resolve, Math.random() * CONFLICT_BACKOFF_MS * attempt));
      }
    }
  }

  /**
   * Unreachable, 409 after retries, 429 and 5xx: retryable. 401/403 (RBAC), 404 and a schema's
   * refusal (400/422): a ValidationError naming the field and the object, which retrying cannot fix.
   */
  protected routerError(error: unknown, verb: string, ref: ResourceRef, missingField: string): Error {
    const object = describeRef(ref);
    if (error instanceof KubernetesUnreachableError)
      return unavailable(this.kind, `${verb} ${object}`, error);
    if (!(error instanceof KubernetesApiError))
      return error instanceof Error ? error : new Error(String(error));
    const fail = (field: string, rule: string) => new ValidationError([{ field, rule }]);
    switch (error.status) {
      case 401:
        return fail(
          'router.tokenEnv',
          `the API server refused the token (${verb} ${object}): ${error.message}`,
        );
      case 403:
        return fail(
          'router.tokenEnv',
          `RBAC refused the token's account to ${verb} ${object}: ${error.message}`,
        );
      case 404:
        return fail(missingField, `${object} does not exist`);
      case 400:
      case 422: {
        const causes = error.causes.map((cause) => `${cause.field ?? ''} ${cause.message ?? ''}`.trim());
        return fail(
          'router',
          `the API server's schema refused ${verb} ${object}: ${causes.length > 0 ? causes.join('; ') : error.message}`,
        );
      }
      default:
        return new RouterUnavailableError(`${this.kind} router: ${error.message}`, { cause: error });
    }
  }
}
