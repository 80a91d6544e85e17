/**
 * Load runs over HTTP:
 *   POST   /runs      { profile_id | criteria, duration, concurrency, target_url, ... } -> 201 { id }
 *   GET    /runs      every run kept, without snapshots
 *   GET    /runs/:id  status, snapshots, summary
 *   DELETE /runs/:id  cancels
 * The body is validated once, by its schema; what a schema cannot say (profile_id or criteria,
 * the allowlist, the limits) is checked while the run is planned, naming the same fields.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ValidationError, type Json } from '../../../core/validation';
import { HttpError } from '../../../platform/http/errors';
import { resolveLoadOptions, type EnginePlan, type LoadTarget } from '../../options';
import { profilesByCriteria, profilesById, sessionsFromProfiles } from '../../profile-sessions';
import type { LoadgenContext } from '../app';

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

const RunParams = Type.Object({ id: Type.String({ description: 'the id POST /runs answered' }) });
type RunParams = Static<typeof RunParams>;

function noRun(id: string): HttpError {
  return new HttpError(404, 'not_found', `id: no run ${id}`);
}

export default async function runRoutes(app: FastifyInstance) {
  const { runs } = app.loadgen;

  app.post<{ Body: RunRequest }>('/runs', { schema: { body: RunRequest } }, async (request, reply) => {
    const plan = await planOf(request.body, app.loadgen);
    const run = runs.start(plan, request.body);
    return reply.code(201).header('location', `/runs/${run.id}`).send({ id: run.id, status: run.status });
  });

  app.get('/runs', async () => ({ runs: runs.list() }));

  app.get<{ Params: RunParams }>('/runs/:id', { schema: { params: RunParams } }, async (request) => {
    const run = runs.get(request.params.id);
    if (!run) throw noRun(request.params.id);
    return run;
  });

  app.delete<{ Params: RunParams }>('/runs/:id', { schema: { params: RunParams } }, async (request) => {
    const run = await runs.cancel(request.params.id);
    if (!run) throw noRun(request.params.id);
    return { id: run.id, status: run.status, summary: run.summary };
  });
}

/** The engine plan of a request: its profiles from the store, checked against the allowlist and limits. */
async function planOf(body: RunRequest, context: LoadgenContext): Promise<EnginePlan> {
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
          context.db,
          typeof body.profile_id === 'string' ? [body.profile_id] : body.profile_id,
          'profile_id',
        )
      : await profilesByCriteria(
          context.db,
          body.criteria as Record<string, Json>,
          {
            sampleSize: body.sample_size ?? 100,
            seed,
            ...(context.maxPopulation !== undefined ? { maxPopulation: context.maxPopulation } : {}),
          },
          'criteria',
        );
  return resolveLoadOptions(
    {
      sessions: sessionsFromProfiles(
        profiles,
        context.ontology,
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
      limits: context.limits,
      allowlist: context.allowlist,
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
}
