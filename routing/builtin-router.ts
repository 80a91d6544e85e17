import { Pool } from 'undici';
import type { AdapterSpec, RolloutSpec } from '../rollout/spec';
import { ROUTER_DEFAULT_TOKEN_ENV } from '../rollout/worker-policy';
import { type FieldReader, isPlainObject, ValidationError } from '../core/validation';
import { bearerFromTokenEnv, readCallTimeout } from './spec-fields';
import {
  ObservedRouter,
  RouterUnavailableError,
  unavailable,
  type RoutingObservation,
  type TemplateVariables,
} from './traffic-router';

export interface BuiltinRouterOptions {
  /** The proxy's admin endpoint (its --admin-listen). */
  adminUrl: string;
  /** Environment variable of the worker that holds the admin token; the spec never holds secrets. */
  tokenEnv: string;
  timeoutMs: number;
}

export const DEFAULT_TOKEN_ENV = ROUTER_DEFAULT_TOKEN_ENV.builtin;

export function parseBuiltinRouterSpec(
  spec: AdapterSpec,
  r: FieldReader,
  field: string,
): BuiltinRouterOptions | undefined {
  r.onlyKeys(spec, ['kind', 'adminUrl', 'tokenEnv', 'timeout'], field);
  const adminUrl = r.string(
    spec.adminUrl,
    `${field}.adminUrl`,
    /^http:\/\/[^\s/?#@]+\/?$/,
    'must be an http:// URL (scheme, host and port only)',
  );
  const tokenEnv =
    spec.tokenEnv === undefined
      ? DEFAULT_TOKEN_ENV
      : r.string(
          spec.tokenEnv,
          `${field}.tokenEnv`,
          /^[A-Za-z_][A-Za-z0-9_]*$/,
          'must be an environment variable name',
        );
  const timeoutMs = readCallTimeout(r, spec.timeout, `${field}.timeout`);
  if (adminUrl === undefined || tokenEnv === undefined || timeoutMs === undefined) return undefined;
  return { adminUrl: adminUrl.replace(/\/$/, ''), tokenEnv, timeoutMs };
}

/** The proxy labels its series `upstream="baseline"` or `upstream="canary"` (routing/proxy/metrics.ts). */
export const BUILTIN_TEMPLATE_VARIABLES: Readonly<TemplateVariables> = Object.freeze({
  baseline: Object.freeze({ upstream: 'baseline' }),
  canary: Object.freeze({ upstream: 'canary' }),
});

interface ProxyState {
  share: number;
  upstreams: Record<'baseline' | 'canary', { url: string; healthy: boolean }>;
}

/** The built-in proxy, driven through its token-protected admin endpoint. */
export class BuiltinRouter extends ObservedRouter {
  readonly kind = 'builtin';
  private readonly admin: Pool;
  private readonly authorization: string;

  constructor(
    private readonly options: BuiltinRouterOptions,
    private readonly targets: RolloutSpec['targets'],
    env: NodeJS.ProcessEnv = process.env,
  ) {
    super();
    this.authorization = bearerFromTokenEnv(env, options.tokenEnv);
    this.admin = new Pool(options.adminUrl, {
      connections: 2,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connect: { timeout: options.timeoutMs },
    });
  }

  async reconcile(): Promise<void> {
    const state = await this.call('GET', '/weight');
    const wanted = { baseline: this.targets.baseline.url, canary: this.targets.canary.url };
    if (state.upstreams.baseline.url !== wanted.baseline || state.upstreams.canary.url !== wanted.canary) {
      await this.call('PUT', '/upstreams', wanted);
    }
  }

  async close(): Promise<void> {
    await this.admin.close();
  }

  protected describeUpstream(role: 'baseline' | 'canary'): string {
    return `${role} upstream ${this.targets[role].url}`;
  }

  protected async observe(): Promise<RoutingObservation> {
    const state = await this.call('GET', '/weight');
    return {
      share: state.share,
      healthy: { baseline: state.upstreams.baseline.healthy, canary: state.upstreams.canary.healthy },
    };
  }

  protected async apply(share: number): Promise<void> {
    await this.call('PUT', '/weight', { share });
  }

  private async call(method: 'GET' | 'PUT', path: string, body?: object): Promise<ProxyState> {
    let status: number;
    let answer: unknown;
    try {
      const response = await this.admin.request({
        method,
        path,
        headers: {
          authorization: this.authorization,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        body: body ? JSON.stringify(body) : null,
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      status = response.statusCode;
      answer = await response.body.json().catch(() => undefined);
    } catch (error) {
      throw unavailable(this.kind, `${method} ${this.options.adminUrl}${path}`, error);
    }
    // The proxy answers errors with the body of every service: { error: code, message, issues? }.
    const said = isPlainObject(answer) ? answer.message : undefined;
    const message = typeof said === 'string' ? said : `status ${status}`;
    if (status === 401) {
      throw new ValidationError([
        {
          field: 'router.tokenEnv',
          rule: `the proxy at ${this.options.adminUrl} refused the token in ${this.options.tokenEnv}`,
        },
      ]);
    }
    if (status === 400)
      throw new ValidationError([{ field: 'router', rule: `the proxy refused: ${message}` }]);
    if (status !== 200) {
      throw new RouterUnavailableError(`builtin router: ${method} ${path} answered ${status}: ${message}`);
    }
    if (!isProxyState(answer)) {
      // Something else answers at the admin URL (another service, a proxy in between, an
      // incompatible version): say so instead of failing later on a missing field.
      throw new RouterUnavailableError(
        `builtin router: ${method} ${this.options.adminUrl}${path} answered 200 with a body that is not the proxy's state ({ share, upstreams: { baseline: { healthy }, canary: { healthy } } })`,
      );
    }
    return answer;
  }
}

function isProxyState(value: unknown): value is ProxyState {
  if (!isPlainObject(value) || typeof value.share !== 'number' || !Number.isFinite(value.share)) return false;
  if (value.share < 0 || value.share > 100 || !isPlainObject(value.upstreams)) return false;
  const { baseline, canary } = value.upstreams;
  return (
    isPlainObject(baseline) &&
    typeof baseline.healthy === 'boolean' &&
    isPlainObject(canary) &&
    typeof canary.healthy === 'boolean'
  );
}
