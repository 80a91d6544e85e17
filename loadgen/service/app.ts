/**
 * The traffic generator as an HTTP service (a Fastify plugin; server.ts listens):
 *   POST   /runs      { profile_id | criteria, duration, concurrency, target_url, ... } -> 201 { id }
 *   GET    /runs/:id  status, snapshots, summary
 *   DELETE /runs/:id  cancels
 * Targets must pass the allowlist configured on the server (never in the request), so the
 * service cannot be aimed at internal hosts; limits cap concurrency, rate and duration.
 */
import { timingSafeEqual } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import fp from 'fastify-plugin';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Db } from 'mongodb';
import { schemaIssues } from '../../profiles-api/profile-schema';
import { ValidationError, type FieldIssue, type Json } from '../../workflows/validation';
import type { Logger } from '../../lib/logger';
import { TargetAllowlist } from '../allowlist';
import { DEFAULT_LIMITS, resolveLoadOptions, type LoadLimits, type LoadTarget } from '../options';
import {
  defaultOntology,
  profilesByCriteria,
  profilesById,
  sessionsFromProfiles,
  type Ontology,
} from '../profile-sessions';
import { RunRegistry, TooManyRunsError } from './run-registry';

export const RunRequest = Type.Object(
  {
    profile_id: Type.Optional(
      Type.Union([
        Type.String({ minLength: 1, maxLength: 128 }),
        Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: 10_000 }),
      ]),
    ),
    criteria: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    sample_size: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    duration: Type.Number({ exclusiveMinimum: 0, description: 'seconds' }),
    concurrency: Type.Integer({ minimum: 1 }),
    target_url: Type.Union([
      Type.String({ minLength: 1, maxLength: 2048 }),
      Type.Object(
        {
          baseline: Type.String({ minLength: 1, maxLength: 2048 }),
          canary: Type.String({ minLength: 1, maxLength: 2048 }),
        },
        { additionalProperties: false },
      ),
    ]),
    model: Type.Optional(Type.Union([Type.Literal('closed'), Type.Literal('open')])),
    rate: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'open model: sessions per second' })),
    arrival: Type.Optional(Type.Union([Type.Literal('uniform'), Type.Literal('poisson')])),
    time_scale: Type.Optional(Type.Number({ minimum: 0 })),
    seed: Type.Optional(Type.Integer({ minimum: 0 })),
    timeout_ms: Type.Optional(Type.Integer({ minimum: 1 })),
    max_redirects: Type.Optional(Type.Integer({ minimum: 0 })),
    tags: Type.Optional(Type.Record(Type.String(), Type.String())),
    snapshot_interval_ms: Type.Optional(Type.Integer({ minimum: 100 })),
  },
  { additionalProperties: false, $id: 'LoadRunRequest' },
);
export type RunRequest = Static<typeof RunRequest>;

export interface LoadgenServiceOptions {
  db: Db;
  ontology?: Ontology;
  allowlist?: TargetAllowlist;
  limits?: LoadLimits;
  /** Bearer token every request must carry; absent: no authentication (loopback deployments). */
  token?: string;
  maxActiveRuns?: number;
  logger?: Logger;
}

declare module 'fastify' {
  interface FastifyInstance {
    loadRuns: RunRegistry;
  }
}

function badRequest(reply: FastifyReply, issues: readonly FieldIssue[]): FastifyReply {
  return reply.code(400).send({
    error: 'bad_request',
    message: issues.map((issue) => `${issue.field}: ${issue.rule}`).join('; '),
    issues,
  });
}

export async function loadgenService(app: FastifyInstance, options: LoadgenServiceOptions): Promise<void> {
  const allowlist = options.allowlist ?? new TargetAllowlist();
  const limits = options.limits ?? DEFAULT_LIMITS;
  const ontology = options.ontology ?? defaultOntology();
  const runs = new RunRegistry({
    maxActive: options.maxActiveRuns ?? 2,
    keepFinished: 100,
    maxSnapshots: 720,
    ...(options.logger ? { logger: options.logger } : {}),
  });
  app.decorate('loadRuns', runs);
  app.addHook('onClose', async () => runs.close());

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof ValidationError) return badRequest(reply, error.issues);
    if (error instanceof TooManyRunsError)
      return reply.code(429).send({ error: 'too_many_runs', message: error.message });
    switch (error.code) {
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return badRequest(reply, [{ field: 'body', rule: 'must be valid, non-empty JSON' }]);
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return reply
          .code(415)
          .send({ error: 'unsupported_media_type', message: 'body: must be application/json' });
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return reply.code(413).send({ error: 'payload_too_large', message: 'body: is too large' });
    }
    if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500)
      return reply.code(error.statusCode).send({ error: 'bad_request', message: error.message });
    request.log.error({ err: error }, 'unhandled error');
    return reply.code(500).send({ error: 'internal', message: 'internal error', request_id: request.id });
  });

  if (options.token) {
    const expected = Buffer.from(`Bearer ${options.token}`);
    app.addHook('onRequest', async (request, reply) => {
      const given = Buffer.from(request.headers.authorization ?? '');
      if (given.length !== expected.length || !timingSafeEqual(given, expected))
        return reply
          .code(401)
          .send({ error: 'unauthorized', message: 'authorization: must be Bearer <token>' });
    });
  }

  app.post('/runs', { schema: { body: RunRequest } }, async (request, reply) => {
    const issues = schemaIssues(RunRequest, request.body);
    if (issues.length > 0) return badRequest(reply, issues);
    const body = request.body as RunRequest;
    if ((body.profile_id === undefined) === (body.criteria === undefined))
      throw new ValidationError([
        { field: 'profile_id', rule: 'give either profile_id or criteria (exactly one)' },
      ]);
    const targets: LoadTarget[] =
      typeof body.target_url === 'string'
        ? [{ name: 'target', url: body.target_url, field: 'target_url' }]
        : [
            { name: 'baseline', url: body.target_url.baseline, field: 'target_url.baseline' },
            { name: 'canary', url: body.target_url.canary, field: 'target_url.canary' },
          ];
    const seed = body.seed ?? 1;
    const profiles =
      body.profile_id !== undefined
        ? await profilesById(
            options.db,
            typeof body.profile_id === 'string' ? [body.profile_id] : body.profile_id,
            'profile_id',
          )
        : await profilesByCriteria(
            options.db,
            body.criteria as Record<string, Json>,
            { sampleSize: body.sample_size ?? 100, seed },
            'criteria',
          );
    const plan = await resolveLoadOptions(
      {
        sessions: sessionsFromProfiles(
          profiles,
          ontology,
          body.profile_id !== undefined ? 'profile_id' : 'criteria',
        ),
        targets,
        durationMs: Math.round(body.duration * 1000),
        concurrency: body.concurrency,
        ...(body.model ? { model: body.model } : {}),
        ...(body.rate !== undefined ? { rate: body.rate } : {}),
        ...(body.arrival ? { arrival: body.arrival } : {}),
        ...(body.time_scale !== undefined ? { timeScale: body.time_scale } : {}),
        seed,
        ...(body.timeout_ms !== undefined ? { timeoutMs: body.timeout_ms } : {}),
        ...(body.max_redirects !== undefined ? { maxRedirects: body.max_redirects } : {}),
        ...(body.tags ? { tags: body.tags } : {}),
        ...(body.snapshot_interval_ms !== undefined ? { snapshotIntervalMs: body.snapshot_interval_ms } : {}),
      },
      {
        limits,
        allowlist,
        names: {
          durationMs: 'duration',
          concurrency: 'concurrency',
          model: 'model',
          rate: 'rate',
          arrival: 'arrival',
          timeScale: 'time_scale',
          seed: 'seed',
          timeoutMs: 'timeout_ms',
          maxRedirects: 'max_redirects',
          tags: 'tags',
          snapshotIntervalMs: 'snapshot_interval_ms',
          targets: 'target_url',
        },
      },
    );
    const run = runs.start(plan, body);
    return reply.code(201).header('location', `/runs/${run.id}`).send({ id: run.id, status: run.status });
  });

  app.get('/runs', async () => ({ runs: runs.list() }));

  app.get<{ Params: { id: string } }>('/runs/:id', async (request, reply) => {
    const run = runs.get(request.params.id);
    if (!run) return reply.code(404).send({ error: 'not_found', message: `id: no run ${request.params.id}` });
    return run;
  });

  app.delete<{ Params: { id: string } }>('/runs/:id', async (request, reply) => {
    const run = await runs.cancel(request.params.id);
    if (!run) return reply.code(404).send({ error: 'not_found', message: `id: no run ${request.params.id}` });
    return { id: run.id, status: run.status, summary: run.summary };
  });

  app.get('/healthz', async () => ({ ok: true, active_runs: runs.active }));
}

export async function buildLoadgenApp(
  options: LoadgenServiceOptions & { logger?: Logger },
): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
  // The schema documents the body; the handler reports every bad field as `field: rule`.
  app.setValidatorCompiler(() => (value: unknown) => ({ value }));
  await app.register(fp(loadgenService, { name: 'loadgen-service' }), options);
  await app.ready();
  return app;
}
