/** Synthetic population over HTTP: the same generator as `canary profiles generate`. */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_POPULATION, generateProfiles } from '../generator';
import { requireWriteToken } from '../plugins/auth';
import { ValidationError } from '../../workflows/validation';
import { ErrorResponse } from './profiles';

const GenerateBody = Type.Object(
  {
    count: Type.Optional(Type.Integer({ minimum: 1, default: DEFAULT_POPULATION })),
    seed: Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 }),
    id_prefix: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$', default: 'syn' })),
  },
  { additionalProperties: false },
);

const GenerateResponse = Type.Object({
  count: Type.Integer(),
  seed: Type.Integer(),
  created: Type.Integer(),
  updated: Type.Integer(),
  took_ms: Type.Integer(),
});

export default async function generateRoutes(app: FastifyInstance) {
  const config = app.profilesConfig;
  app.post<{ Body: Static<typeof GenerateBody> }>(
    '/profiles/generate',
    {
      preHandler: requireWriteToken(config.auth),
      schema: {
        summary: 'Generate a seeded synthetic population (same seed: same profiles) and store it',
        tags: ['population'],
        security: [{ bearer: [] }],
        body: GenerateBody,
        response: { 200: GenerateResponse, 400: ErrorResponse, 401: ErrorResponse, 403: ErrorResponse },
      },
    },
    async (request) => {
      const { count = DEFAULT_POPULATION, seed } = request.body;
      if (count > config.limits.maxGenerate)
        throw new ValidationError([{ field: 'body.count', rule: `must be <= ${config.limits.maxGenerate}` }]);
      const started = Date.now();
      const counts = await app.profileStore.load(
        generateProfiles({
          seed,
          count,
          idPrefix: request.body.id_prefix ?? 'syn',
          maxPatterns: config.limits.maxPatternsPerProfile,
        }),
      );
      app.profileMetrics.written.inc({ source: 'generator' }, count);
      return { count, seed, ...counts, took_ms: Date.now() - started };
    },
  );
}
