/** Synthetic population over HTTP: the same generator as `canary profiles generate`. */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_POPULATION, generateProfiles, type GeneratorOptions } from '../../generator';
import { checkActionData, defaultOntology, type Ontology } from '../../ontology';
import { requireWriteToken } from '../plugins/auth';
import { ValidationError } from '../../../core/validation';
import { ErrorBody } from '../../../platform/http/errors';

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
        response: { 200: GenerateResponse, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody },
      },
    },
    async (request) => {
      const { count = DEFAULT_POPULATION, seed } = request.body;
      if (count > config.limits.maxGenerate)
        throw new ValidationError([{ field: 'body.count', rule: `must be <= ${config.limits.maxGenerate}` }]);
      const started = Date.now();
      const options: GeneratorOptions = {
        seed,
        count,
        idPrefix: request.body.id_prefix ?? 'syn',
        maxPatterns: config.limits.maxPatternsPerProfile,
      };
      // The generator speaks the standard shop actions; a configured ontology must accept every
      // entry it produces, checked before anything is written (no half-stored population).
      if (config.ontology !== defaultOntology()) checkGenerated(config.ontology, options);
      const counts = await app.profileStore.load(generateProfiles(options));
      app.profileMetrics.written.inc({ source: 'generator' }, count);
      return { count, seed, ...counts, took_ms: Date.now() - started };
    },
  );
}

/**
 * Throws a 400 when `ontology` refuses an entry the generator would write with `options`: the
 * same check as a write to the store (checkActionData), over the whole seeded population.
 */
function checkGenerated(ontology: Ontology, options: GeneratorOptions): void {
  for (const profile of generateProfiles(options)) {
    for (const [index, pattern] of profile.behavioral_patterns.entries()) {
      const issue = checkActionData(ontology, pattern.action, pattern.data)[0];
      if (!issue) continue;
      throw new ValidationError([
        {
          field: 'ontology',
          rule:
            `the server's ontology ${ontology.name}@${ontology.version} does not accept the generator's ` +
            `standard shop actions (profile ${profile.user_id}, behavioral_patterns[${index}].${issue.field}: ` +
            `${issue.rule}); generate against the default ontology or load your own profiles`,
        },
      ]);
    }
  }
}
