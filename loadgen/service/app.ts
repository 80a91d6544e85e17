/**
 * The traffic generator as an HTTP service (a Fastify plugin; server.ts listens):
 *   POST   /runs      { profile_id | criteria, duration, concurrency, target_url, ... } -> 201 { id }
 *   GET    /runs/:id  status, snapshots, summary
 *   DELETE /runs/:id  cancels
 * Targets must pass the allowlist configured on the server (never in the request), so the
 * service cannot be aimed at internal hosts; limits cap concurrency, rate and duration.
 */
import { Type, type Static } from '@sinclair/typebox';
import fp from 'fastify-plugin';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { MongoNetworkError, MongoServerSelectionError, type Db } from 'mongodb';
import { schemaIssues } from '../../platform/http/schema-issues';
import { PopulationTooLargeError } from '../../profiles/store';
import { ValidationError, type Json } from '../../core/validation';
import { checkBearer } from '../../platform/http/auth';
import { badRequest, HttpError, installErrorHandling, sendError } from '../../platform/http/errors';
import type { Logger } from '../../platform/logger';
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
  /**
   * Criteria matching more profiles than this are refused (400 naming `criteria`). Defaults to
   * the rollout's cap (StoreProfileSource), so the same criteria behave the same here.
   */
  maxPopulation?: number;
  logger?: Logger;
}

declare module 'fastify' {
  interface FastifyInstance {
    loadRuns: RunRegistry;
  }
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

  // The shared handler (platform/http/errors.ts): 4xx name the field, a store that is down is a 503,
  // anything else a logged 500.
  installErrorHandling(app, {
    translate: (error) => {
      if (error instanceof TooManyRunsError) return new HttpError(429, 'too_many_runs', error.message);
      if (error instanceof PopulationTooLargeError)
        return new HttpError(400, 'bad_request', `criteria: ${error.message}`, [
          { field: 'criteria', rule: error.message },
        ]);
      return undefined;
    },
    isUnavailable: (error) =>
      error instanceof MongoServerSelectionError || error instanceof MongoNetworkError,
    unavailableMessage: 'the profile store is unavailable; retry later',
  });

  const token = options.token;
  if (token !== undefined)
    app.addHook('onRequest', async (request, reply) => {
      checkBearer(token, request, reply, 'LOADGEN_API_TOKEN is not set');
    });

  app.post('/runs', { schema: { body: RunRequest } }, async (request, reply) => {
    const issues = schemaIssues(RunRequest, request.body);
    if (issues.length > 0) return sendError(reply, 400, badRequest(issues));
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
            {
              sampleSize: body.sample_size ?? 100,
              seed,
              ...(options.maxPopulation !== undefined ? { maxPopulation: options.maxPopulation } : {}),
            },
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
  // The service's logger, so a 500 or a 503 leaves its cause (keyed by request id) in the log.
  const loggerInstance: FastifyBaseLogger | undefined = options.logger;
  const app: FastifyInstance = Fastify({
    ...(loggerInstance ? { loggerInstance } : { logger: false }),
    bodyLimit: 1024 * 1024,
  });
  // The schema documents the body; the handler reports every bad field as `field: rule`.
  app.setValidatorCompiler(() => (value: unknown) => ({ value }));
  await app.register(fp(loadgenService, { name: 'loadgen-service' }), options);
  await app.ready();
  return app;
}
