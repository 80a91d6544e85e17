import type { AddressInfo } from 'node:net';
import { Type, type Static } from '@sinclair/typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import { requireBearer } from '../../platform/http/auth';
import { ErrorBody, installErrorHandling } from '../../platform/http/errors';
import { createValidatorCompiler } from '../../platform/http/validation';
import type { ProxyMetrics } from './metrics';
import type { ListenAddress } from './options';

/** What the admin endpoint controls; BuiltinProxy implements it. */
export interface ProxyControl {
  readonly metrics: ProxyMetrics;
  state(): ProxyStateBody;
  setShare(share: number): Promise<ProxyStateBody>;
  setUpstreams(upstreams: { baseline: string; canary: string }): Promise<ProxyStateBody>;
}

const UpstreamState = Type.Object({ url: Type.String(), healthy: Type.Boolean() });
const ProxyStateSchema = Type.Object({
  share: Type.Number(),
  upstreams: Type.Object({ baseline: UpstreamState, canary: UpstreamState }),
  sticky: Type.Union([
    Type.Object({ by: Type.Union([Type.Literal('cookie'), Type.Literal('header')]), name: Type.String() }),
    Type.Null(),
  ]),
});
export type ProxyStateBody = Static<typeof ProxyStateSchema>;

/** Bodies are checked as sent: no coercion (`"50"` is not a share), no unknown field dropped. */
const ShareBody = Type.Object(
  { share: Type.Number({ minimum: 0, maximum: 100 }) },
  { additionalProperties: false },
);
const UpstreamsBody = Type.Object(
  { baseline: Type.String({ minLength: 1 }), canary: Type.String({ minLength: 1 }) },
  { additionalProperties: false },
);
const stateResponses = { 200: ProxyStateSchema, 400: ErrorBody, 401: ErrorBody };

export interface AdminServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * The admin endpoint: read and set the weight, repoint the upstreams (the bearer token of
 * platform/http/auth.ts), plus unauthenticated /healthz and /metrics for probes and Prometheus.
 * Errors answer the body of every service (platform/http/errors.ts), bare field names included.
 */
export function buildAdminApp(proxy: ProxyControl, token: string): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 16 * 1024 });
  app.setValidatorCompiler(createValidatorCompiler({ fieldPrefixes: { body: '' } }));
  installErrorHandling(app, {});
  const onRequest = requireBearer(token, 'this proxy has no admin token (--admin-token-env)');

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/metrics', async (_request, reply) => {
    void reply.type(proxy.metrics.registry.contentType);
    return proxy.metrics.registry.metrics();
  });
  app.get('/weight', { onRequest, schema: { response: stateResponses } }, async () => proxy.state());
  app.put<{ Body: Static<typeof ShareBody> }>(
    '/weight',
    { onRequest, schema: { body: ShareBody, response: stateResponses } },
    async (request) => proxy.setShare(request.body.share),
  );
  app.put<{ Body: Static<typeof UpstreamsBody> }>(
    '/upstreams',
    { onRequest, schema: { body: UpstreamsBody, response: stateResponses } },
    async (request) => proxy.setUpstreams(request.body),
  );
  return app;
}

export async function startAdminServer(
  proxy: ProxyControl,
  token: string,
  listen: ListenAddress,
): Promise<AdminServer> {
  const app = buildAdminApp(proxy, token);
  await app.listen({ host: listen.host, port: listen.port });
  return { url: urlOf(app.server.address() as AddressInfo), close: () => app.close() };
}

export function urlOf(address: AddressInfo): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}
