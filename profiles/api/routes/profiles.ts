/** CRUD and criteria queries over profiles. Writes are all-or-nothing per request: every profile of a batch is checked before any is written. */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import {
  parseProfile,
  profileIssues,
  Profile,
  ProfileInput,
  USER_ID_PATTERN,
  USER_ID_RULE,
  type Profile as ProfileType,
} from '../../profile-schema';
import { requireReadToken, requireWriteToken } from '../plugins/auth';
import { ErrorBody, HttpError } from '../../../platform/http/errors';
import { validatorCompiler } from '../plugins/validation';
import { isPlainObject, ValidationError, type FieldIssue } from '../../../core/validation';
import { CriteriaQuery, criteriaOf, decodeCursor, encodeCursor, fieldsOf, flatCriteriaValues } from './query';

const UserIdParams = Type.Object({
  user_id: Type.String({ pattern: USER_ID_PATTERN, errorMessage: USER_ID_RULE }),
});

const ListQuery = Type.Object(
  {
    ...CriteriaQuery,
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
    cursor: Type.Optional(Type.String({ maxLength: 512, description: 'next_cursor of the previous page' })),
    fields: Type.Optional(
      Type.String({ maxLength: 512, description: 'Comma-separated fields to return (user_id always)' }),
    ),
  },
  { additionalProperties: flatCriteriaValues },
);

const PartialProfile = Type.Partial(Profile);
const ListResponse = Type.Object({
  profiles: Type.Array(PartialProfile),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
});

const WriteBody = Type.Union([ProfileInput, Type.Array(ProfileInput, { minItems: 1 })], {
  description:
    'One profile, or a batch (an array) written all-or-nothing: one bad profile rejects the batch with every issue listed.',
});
const WriteResponse = Type.Object({
  written: Type.Integer(),
  created: Type.Integer(),
  updated: Type.Integer(),
  user_ids: Type.Array(Type.String()),
});

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 413: ErrorBody };
const security = [{ bearer: [] }];

export default async function profileRoutes(app: FastifyInstance) {
  const config = app.profilesConfig;
  const store = app.profileStore;
  const readAuth = requireReadToken(config.auth);
  const writeAuth = requireWriteToken(config.auth);

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/profiles',
    {
      preHandler: readAuth,
      schema: {
        summary: 'Profiles matching criteria, in user_id order, one page at a time',
        tags: ['profiles'],
        querystring: ListQuery,
        response: { 200: ListResponse, ...errors },
      },
    },
    async (request) => {
      const query = request.query;
      const criteria = criteriaOf(query, ['limit', 'cursor', 'fields']);
      const after = decodeCursor(query.cursor, criteria);
      const limit = Math.min(query.limit ?? 100, config.limits.maxPageSize);
      const fields = fieldsOf(query.fields);
      const page = await store.find(criteria.filter, {
        limit,
        ...(after !== undefined ? { after } : {}),
        ...(fields ? { fields } : {}),
      });
      return {
        profiles: page.profiles,
        next_cursor: page.nextAfter === null ? null : encodeCursor(page.nextAfter, criteria),
      };
    },
  );

  app.get<{ Params: Static<typeof UserIdParams> }>(
    '/profiles/:user_id',
    {
      preHandler: readAuth,
      schema: {
        summary: 'One profile',
        tags: ['profiles'],
        params: UserIdParams,
        response: { 200: Profile, 404: ErrorBody, ...errors },
      },
    },
    async (request) => {
      const profile = await store.get(request.params.user_id);
      if (!profile)
        throw new HttpError(404, 'not_found', `no profile with user_id ${request.params.user_id}`);
      return profile;
    },
  );

  app.post<{ Body: Static<typeof WriteBody> }>(
    '/profiles',
    {
      preHandler: writeAuth,
      // The body schema documents the request; checkAll() validates it item by item, so one
      // response lists the issues of every profile in the batch, not just the first.
      validatorCompiler: ({ httpPart, ...rest }) =>
        httpPart === 'body'
          ? (data: unknown) => ({ value: data })
          : validatorCompiler({ httpPart, ...rest } as Parameters<typeof validatorCompiler>[0]),
      schema: {
        summary: 'Create or replace one profile or a batch (idempotent by user_id)',
        tags: ['profiles'],
        security,
        body: WriteBody,
        response: { 200: WriteResponse, 201: WriteResponse, ...errors },
      },
    },
    async (request, reply) => {
      if (request.body === null || typeof request.body !== 'object')
        throw new ValidationError([
          { field: 'body', rule: 'must be a profile object or an array of profiles' },
        ]);
      const batch = Array.isArray(request.body);
      const inputs: unknown[] = batch ? (request.body as unknown[]) : [request.body];
      if (inputs.length === 0)
        throw new ValidationError([{ field: 'body', rule: 'must hold at least one profile' }]);
      if (inputs.length > config.limits.maxBatch)
        throw new ValidationError([
          { field: 'body', rule: `must hold at most ${config.limits.maxBatch} profiles per request` },
        ]);
      const profiles = checkAll(inputs, batch, config);
      const counts = await store.putMany(profiles);
      app.profileMetrics.written.inc({ source: 'api' }, profiles.length);
      return reply.code(counts.created > 0 ? 201 : 200).send({
        written: profiles.length,
        ...counts,
        user_ids: profiles.map((profile) => profile.user_id),
      });
    },
  );

  app.put<{ Params: Static<typeof UserIdParams>; Body: Static<typeof ProfileInput> }>(
    '/profiles/:user_id',
    {
      preHandler: writeAuth,
      schema: {
        summary: 'Create or replace one profile',
        tags: ['profiles'],
        security,
        params: UserIdParams,
        body: ProfileInput,
        response: { 200: Profile, 201: Profile, ...errors },
      },
    },
    async (request, reply) => {
      if (request.body.user_id !== request.params.user_id)
        throw new ValidationError([
          { field: 'body.user_id', rule: `must equal the user_id in the path (${request.params.user_id})` },
        ]);
      const [profile] = checkAll([request.body], false, config) as [ProfileType];
      const created = await store.put(profile);
      app.profileMetrics.written.inc({ source: 'api' });
      return reply.code(created ? 201 : 200).send((await store.get(profile.user_id)) ?? profile);
    },
  );

  app.delete<{ Params: Static<typeof UserIdParams> }>(
    '/profiles/:user_id',
    {
      preHandler: writeAuth,
      schema: {
        summary: 'Delete one profile',
        tags: ['profiles'],
        security,
        params: UserIdParams,
        response: { 204: Type.Null(), 404: ErrorBody, ...errors },
      },
    },
    async (request, reply) => {
      if (!(await store.delete(request.params.user_id)))
        throw new HttpError(404, 'not_found', `no profile with user_id ${request.params.user_id}`);
      return reply.code(204).send();
    },
  );
}

/** Every profile is checked before any is written; all issues of all profiles are reported together. */
function checkAll(
  inputs: unknown[],
  batch: boolean,
  config: FastifyInstance['profilesConfig'],
): ProfileType[] {
  const issues: FieldIssue[] = [];
  const seen = new Map<string, number>();
  const limits = { maxPatternsPerProfile: config.limits.maxPatternsPerProfile };
  inputs.forEach((input, index) => {
    const prefix = batch ? `body[${index}]` : 'body';
    issues.push(...profileIssues(input, config.ontology, limits, prefix));
    const userId = isPlainObject(input) ? input.user_id : undefined;
    if (typeof userId === 'string') {
      const first = seen.get(userId);
      if (first !== undefined)
        issues.push({
          field: `${prefix}.user_id`,
          rule: `repeats body[${first}].user_id (${userId}) in the same batch`,
        });
      else seen.set(userId, index);
    }
  });
  if (issues.length > 0) throw new ValidationError(issues.slice(0, 100));
  return inputs.map((input) => parseProfile(input, config.ontology, limits));
}
