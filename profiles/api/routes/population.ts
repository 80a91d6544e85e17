/** Reads over the population as a whole: the sample a rollout draws from, and counts. */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Profile } from '../../profile-schema';
import { StoreProfileSource } from '../../profile-source';
import { requireReadToken } from '../plugins/auth';
import { CriteriaQuery, criteriaOf, fieldsOf, flatCriteriaValues } from './query';
import { ErrorBody, HttpError } from '../../../platform/http/errors';

const SAMPLE_RETRY_AFTER_S = 2;

const SampleQuery = Type.Object(
  {
    ...CriteriaQuery,
    n: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 50, description: 'sample size' })),
    seed: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 2 ** 31 - 1,
        default: 1,
        description: 'same seed and population: same sample',
      }),
    ),
    fields: Type.Optional(
      Type.String({
        maxLength: 512,
        description: 'Fields to return per profile; default: the stratum fields only',
      }),
    ),
  },
  { additionalProperties: flatCriteriaValues },
);

const SampleResponse = Type.Object({
  seed: Type.Integer(),
  n: Type.Integer(),
  method: Type.Union([Type.Literal('stratified'), Type.Literal('sample-key')], {
    description:
      'stratified: one full scan, strata listed; sample-key: a uniform sample read by key without a scan, population estimated, no strata',
  }),
  population: Type.Integer({ description: 'profiles matching the criteria (estimated with sample-key)' }),
  user_ids: Type.Array(Type.String(), {
    description: 'in sample order: any prefix is itself a random subset',
  }),
  profiles: Type.Array(Type.Partial(Profile)),
  mix: Type.Record(Type.String(), Type.Number(), {
    description: 'share of the sample per device:, country:, activity: value',
  }),
  strata: Type.Array(
    Type.Object({ key: Type.String(), population: Type.Integer(), allocated: Type.Integer() }),
  ),
});

const StatsQuery = Type.Object({ ...CriteriaQuery }, { additionalProperties: flatCriteriaValues });
const Counts = Type.Record(Type.String(), Type.Integer());
const StatsResponse = Type.Object({
  total: Type.Integer(),
  device_type: Counts,
  country: Counts,
  region: Counts,
  activity_level: Counts,
  actions: Counts,
});

export default async function populationRoutes(app: FastifyInstance) {
  const config = app.profilesConfig;
  const store = app.profileStore;
  const source = new StoreProfileSource(store, { maxPopulation: config.limits.maxSamplePopulation });
  const readAuth = requireReadToken(config.auth);
  let samplesRunning = 0;

  app.get<{ Querystring: Static<typeof SampleQuery> }>(
    '/profiles/sample',
    {
      preHandler: readAuth,
      schema: {
        summary: 'Reproducible stratified sample (device type x country x activity level)',
        tags: ['population'],
        querystring: SampleQuery,
        response: { 200: SampleResponse, 400: ErrorBody, 401: ErrorBody, 429: ErrorBody },
      },
    },
    async (request, reply) => {
      const query = request.query;
      const criteria = criteriaOf(query, ['n', 'seed', 'fields']);
      const fields = fieldsOf(query.fields);
      if (samplesRunning >= config.limits.maxConcurrentSamples) {
        void reply.header('retry-after', String(SAMPLE_RETRY_AFTER_S));
        throw new HttpError(
          429,
          'too_many_samples',
          `${samplesRunning} samples are being computed, as many as this server allows at once (PROFILES_API_MAX_CONCURRENT_SAMPLES); retry in ${SAMPLE_RETRY_AFTER_S} s`,
        );
      }
      samplesRunning++;
      try {
        return await sampleOf(criteria, query, fields);
      } finally {
        samplesRunning--;
      }
    },
  );

  async function sampleOf(
    criteria: ReturnType<typeof criteriaOf>,
    query: Static<typeof SampleQuery>,
    fields: string[] | undefined,
  ) {
    const n = Math.min(query.n ?? 50, config.limits.maxSampleSize);
    const seed = query.seed ?? 1;
    const sample = await source.sample(criteria, n, seed);
    const profiles = fields
      ? (sample.profiles?.map((profile) => pickFields(profile, fields)) ??
        (await store.getMany(sample.userIds, fields)))
      : sample.members.map((member) => ({
          user_id: member.user_id,
          device_type: member.device_type,
          geo_location: { country: member.country },
          activity_level: member.activity_level as 'low' | 'medium' | 'high',
        }));
    return {
      seed,
      n,
      method: sample.method,
      population: sample.population,
      user_ids: sample.userIds,
      profiles,
      mix: sample.mix,
      strata: sample.strata,
    };
  }

  app.get<{ Querystring: Static<typeof StatsQuery> }>(
    '/profiles/stats',
    {
      preHandler: readAuth,
      schema: {
        summary: 'Counts by device type, country, region, activity level and action',
        tags: ['population'],
        querystring: StatsQuery,
        response: { 200: StatsResponse, 400: ErrorBody, 401: ErrorBody },
      },
    },
    async (request) => store.stats(criteriaOf(request.query, []).filter),
  );
}

function pickFields(
  profile: Static<typeof Profile>,
  fields: readonly string[],
): Partial<Static<typeof Profile>> {
  const picked: Record<string, unknown> = { user_id: profile.user_id };
  for (const field of fields)
    if (Object.hasOwn(profile, field)) picked[field] = (profile as Record<string, unknown>)[field];
  return picked;
}
