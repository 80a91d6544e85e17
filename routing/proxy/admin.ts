import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Type, type Static } from '@sinclair/typebox';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import { FieldReader, ValidationError } from '../../core/validation';
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

/**
 * Request bodies are checked by hand, not by Fastify's Ajv: its defaults coerce types
 * (`null`, `false`, `"50"` become numbers) and drop unknown fields, so a bad call would pass.
 */
function readShareBody(body: unknown): number {
  const r = new FieldReader();
  const object = r.object(body, 'body');
  if (object) r.onlyKeys(object, ['share'], '');
  const share = object && r.number(object.share, 'share', { min: 0, max: 100 });
  r.throwIfAny();
  return share!;
}

function readUpstreamsBody(body: unknown): { baseline: string; canary: string } {
  const r = new FieldReader();
  const object = r.object(body, 'body');
  if (object) r.onlyKeys(object, ['baseline', 'canary'], '');
  const baseline = object && r.string(object.baseline, 'baseline');
  const canary = object && r.string(object.canary, 'canary');
  r.throwIfAny();
  return { baseline: baseline!, canary: canary! };
}
const ErrorBody = Type.Object({ error: Type.String() });
const stateResponses = { 200: ProxyStateSchema, 400: ErrorBody, 401: ErrorBody };

export interface AdminServer {
  readonly url: string;
  close(): Promise<void>;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * The admin endpoint: read and set the weight, repoint the upstreams (bearer token, compared in
 * constant time), plus unauthenticated /healthz and /metrics for probes and Prometheus.
 */
export function buildAdminApp(proxy: ProxyControl, token: string): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 16 * 1024 });
  const expected = digest(token);
  const authorize = async (request: FastifyRequest): Promise<void> => {
    const header = request.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice(7) : '';
    // Digests have equal length whatever was sent, so the comparison leaks neither length nor content.
    if (!timingSafeEqual(digest(given), expected)) {
      throw Object.assign(new Error('a valid bearer token is required'), { statusCode: 401 });
    }
  };

  app.setErrorHandler((error: FastifyError, _request, reply) => {
    if (error.validation) {
      const issues = error.validation.map((issue) => {
        const missing = (issue.params as { missingProperty?: string }).missingProperty;
        const extra = (issue.params as { additionalProperty?: string }).additionalProperty;
        const field = missing ?? extra ?? issue.instancePath.replace(/^\//, '').replace(/\//g, '.');
        const rule = extra ? 'is not a known field' : (issue.message ?? 'is invalid');
        return `${field || 'body'}: ${rule}`;
      });
      return reply.code(400).send({ error: issues.join('; ') });
    }
    if (error instanceof ValidationError) return reply.code(400).send({ error: error.message });
    const status = error.statusCode ?? 500;
    if (status === 401) void reply.header('www-authenticate', 'Bearer');
    return reply.code(status).send({ error: status < 500 ? error.message : 'internal error' });
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/metrics', async (_request, reply) => {
    void reply.type(proxy.metrics.registry.contentType);
    return proxy.metrics.registry.metrics();
  });
  app.get('/weight', { onRequest: authorize, schema: { response: stateResponses } }, async () =>
    proxy.state(),
  );
  app.put<{ Body: unknown }>(
    '/weight',
    { onRequest: authorize, schema: { response: stateResponses } },
    async (request) => proxy.setShare(readShareBody(request.body)),
  );
  app.put<{ Body: unknown }>(
    '/upstreams',
    { onRequest: authorize, schema: { response: stateResponses } },
    async (request) => proxy.setUpstreams(readUpstreamsBody(request.body)),
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
