import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../profiles/api/app';
import { apiConfig } from '../../profiles/api/config';
import { generateProfiles } from '../../profiles/generator';
import { DEFAULT_ONTOLOGY_FILE, loadOntology } from '../../profiles/ontology';
import { type ProfileStore } from '../../profiles/store';
import { USER_ID_RULE, type Profile } from '../../profiles/profile-schema';
import { idsOf, profileInput, startTestMongo, type TestMongo } from './support';

const TOKEN = 'test-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };

let mongo: TestMongo;
let app: FastifyInstance;
let store: ProfileStore;

beforeAll(async () => {
  mongo = await startTestMongo('profiles-api');
  app = await buildApp({
    db: mongo.db,
    config: apiConfig({
      auth: { token: TOKEN, protectReads: false },
      limits: { maxBatch: 50, bodyLimitBytes: 256 * 1024 },
    }),
  });
  store = app.profileStore;
  await store.ensureIndexes();
  // A fixed population for the read tests: 600 generated profiles (seed 11).
  await store.load(generateProfiles({ seed: 11, count: 600 }));
});

afterAll(async () => {
  await app?.close();
  await mongo?.stop();
});

type Json = Record<string, unknown>;
const body = (response: { body: string }) => JSON.parse(response.body) as Json;

describe('writes', () => {
  test('stores one profile with derived fields and normalised ISO timestamps', async () => {
    const input = profileInput('writer-1', {
      behavioral_patterns: [
        { timestamp: '2024-05-01T10:00:00Z', action: 'page_view' },
        { timestamp: '2024-05-01T10:00:02.500Z', action: 'view_product', data: { product_id: 'p-7' } },
        { timestamp: '2024-05-01T10:00:05+00:00', action: 'checkout' },
      ],
    });
    const created = await app.inject({ method: 'POST', url: '/profiles', headers: auth, payload: input });
    expect(created.statusCode).toBe(201);
    expect(body(created)).toEqual({ written: 1, created: 1, updated: 0, user_ids: ['writer-1'] });

    const fetched = body(await app.inject({ url: '/profiles/writer-1' })) as unknown as Profile;
    expect(fetched.behavioral_patterns.map((pattern) => pattern.timestamp)).toEqual([0, 2500, 5000]);
    expect(fetched).toMatchObject({
      schema_version: 1,
      actions: ['checkout', 'page_view', 'view_product'],
      pattern_count: 3,
      actions_per_minute: 3,
      activity_level: 'medium',
      session_duration_ms: 5000,
    });

    const again = await app.inject({ method: 'POST', url: '/profiles', headers: auth, payload: input });
    expect(again.statusCode).toBe(200);
    expect(body(again)).toMatchObject({ created: 0, updated: 1 });
  });

  test('refuses writes without the token, with a wrong one, and on a server without one', async () => {
    const payload = profileInput('nobody');
    expect((await app.inject({ method: 'POST', url: '/profiles', payload })).statusCode).toBe(401);
    const wrong = await app.inject({
      method: 'POST',
      url: '/profiles',
      payload,
      headers: { authorization: 'Bearer nope' },
    });
    expect(wrong.statusCode).toBe(401);
    expect(body(wrong).issues).toEqual([{ field: 'authorization', rule: 'the token is not valid' }]);
    const open = await buildApp({ db: mongo.db, config: apiConfig() });
    try {
      const refused = await open.inject({ method: 'POST', url: '/profiles', payload, headers: auth });
      expect(refused.statusCode).toBe(403);
    } finally {
      await open.close();
    }
    expect(await store.get('nobody')).toBeNull();
  });

  test('a batch with one bad profile writes none of it and names every bad field', async () => {
    const before = await store.count();
    const batch = [
      profileInput('batch-1'),
      profileInput('batch-2', { behavioral_patterns: [{ timestamp: 0, action: 'teleport' }] }),
      profileInput('batch-3', { behavioral_patterns: [{ timestamp: 0, action: 'view_product' }] }),
      profileInput('batch-4', { device_type: 'toaster' }),
    ];
    const response = await app.inject({ method: 'POST', url: '/profiles', headers: auth, payload: batch });
    expect(response.statusCode).toBe(400);
    const fields = (body(response).issues as { field: string; rule: string }[]).map((issue) => issue.field);
    expect(fields).toEqual([
      'body[1].behavioral_patterns[0].action',
      'body[2].behavioral_patterns[0].data.product_id',
      'body[3].device_type',
    ]);
    expect(body(response).message).toContain(
      'is required by action view_product (path /products/{product_id})',
    );
    expect(await store.count()).toBe(before);
  });

  test('rejects oversized bodies, too large batches, malformed JSON, out-of-order entries and unknown fields', async () => {
    const huge = await app.inject({
      method: 'POST',
      url: '/profiles',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: JSON.stringify(profileInput('huge', { padding: 'x'.repeat(300 * 1024) })),
    });
    expect(huge.statusCode).toBe(413);
    const many = Array.from({ length: 51 }, (_, i) => profileInput(`many-${i}`));
    const tooMany = await app.inject({ method: 'POST', url: '/profiles', headers: auth, payload: many });
    expect(tooMany.statusCode).toBe(400);
    expect(body(tooMany).message).toBe('body: must hold at most 50 profiles per request');
    const malformed = await app.inject({
      method: 'POST',
      url: '/profiles',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: '{"user_id": ',
    });
    expect(malformed.statusCode).toBe(400);
    expect(body(malformed).issues).toEqual([{ field: 'body', rule: 'must be valid, non-empty JSON' }]);
    const disordered = await app.inject({
      method: 'POST',
      url: '/profiles',
      headers: auth,
      payload: profileInput('late', {
        behavioral_patterns: [
          { timestamp: 5000, action: 'page_view' },
          { timestamp: 1000, action: 'page_view' },
        ],
      }),
    });
    expect(body(disordered).issues).toEqual([
      {
        field: 'body.behavioral_patterns[1].timestamp',
        rule: 'must not be earlier than the previous entry (entries are ordered)',
      },
    ]);
    const unknown = await app.inject({
      method: 'POST',
      url: '/profiles',
      headers: auth,
      payload: profileInput('x', { colour: 'red' }),
    });
    expect(body(unknown).issues).toEqual([{ field: 'body.colour', rule: 'is not a known field' }]);
    const wrongType = await app.inject({
      method: 'POST',
      url: '/profiles',
      headers: auth,
      payload: profileInput('x', { resource_intensity: { period_ms: '60000' } }),
    });
    expect(body(wrongType).issues).toEqual([
      { field: 'body.resource_intensity.period_ms', rule: 'must be an integer' },
    ]);
  });

  test('PUT creates then replaces, refuses a user_id that differs from the path; DELETE removes', async () => {
    const mismatch = await app.inject({
      method: 'PUT',
      url: '/profiles/put-1',
      headers: auth,
      payload: profileInput('put-2'),
    });
    expect(mismatch.statusCode).toBe(400);
    expect(body(mismatch).issues).toEqual([
      { field: 'body.user_id', rule: 'must equal the user_id in the path (put-1)' },
    ]);
    const created = await app.inject({
      method: 'PUT',
      url: '/profiles/put-1',
      headers: auth,
      payload: profileInput('put-1'),
    });
    expect(created.statusCode).toBe(201);
    const replaced = await app.inject({
      method: 'PUT',
      url: '/profiles/put-1',
      headers: auth,
      payload: profileInput('put-1', { device_type: 'tablet' }),
    });
    expect(replaced.statusCode).toBe(200);
    expect(body(replaced).device_type).toBe('tablet');
    expect((await app.inject({ method: 'DELETE', url: '/profiles/put-1', headers: auth })).statusCode).toBe(
      204,
    );
    expect((await app.inject({ method: 'DELETE', url: '/profiles/put-1', headers: auth })).statusCode).toBe(
      404,
    );
    expect((await app.inject({ url: '/profiles/put-1' })).statusCode).toBe(404);
  });

  test('refuses the user_ids "sample" and "stats", which GET /profiles/sample and /stats would shadow', async () => {
    for (const id of ['sample', 'stats']) {
      const put = await app.inject({
        method: 'PUT',
        url: `/profiles/${id}`,
        headers: auth,
        payload: profileInput(id),
      });
      expect(put.statusCode).toBe(400);
      expect(body(put).issues).toEqual([{ field: 'user_id', rule: USER_ID_RULE }]);
      const post = await app.inject({
        method: 'POST',
        url: '/profiles',
        headers: auth,
        payload: profileInput(id),
      });
      expect(post.statusCode).toBe(400);
      expect(body(post).issues).toEqual([{ field: 'body.user_id', rule: USER_ID_RULE }]);
    }
    expect(USER_ID_RULE).toMatch(/not "sample" or "stats" \(reserved/);
    // Only the exact words are reserved.
    const near = await app.inject({
      method: 'POST',
      url: '/profiles',
      headers: auth,
      payload: [profileInput('samples'), profileInput('stats-1'), profileInput('Sample')],
    });
    expect(near.statusCode).toBe(201);
    expect(body(await app.inject({ url: '/profiles/samples' })).user_id).toBe('samples');
  });
});

describe('queries', () => {
  async function allPages(url: string, limit: number): Promise<string[]> {
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const separator = url.includes('?') ? '&' : '?';
      const page = body(
        await app.inject({
          url: `${url}${separator}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        }),
      );
      ids.push(...idsOf(page.profiles as Profile[]));
      cursor = page.next_cursor as string | null;
    } while (cursor);
    return ids;
  }

  test('criteria JSON and the flat form select the same profiles, page by page without gaps', async () => {
    const criteria = encodeURIComponent(
      JSON.stringify({ device_type: { in: ['mobile', 'tablet'] }, geo_location: 'US' }),
    );
    const viaJson = await allPages(`/profiles?criteria=${criteria}`, 25);
    const viaFlat = await allPages('/profiles?device_type=mobile,tablet&geo_location=US', 40);
    const expected = (
      await mongo.db
        .collection('profiles')
        .find({ device_type: { $in: ['mobile', 'tablet'] }, 'geo_location.country': 'US' })
        .sort({ _id: 1 })
        .toArray()
    ).map((d) => d._id as unknown as string);
    expect(expected.length).toBeGreaterThan(50);
    // Every match exactly once (the order is user_id on MongoDB, storage order on FerretDB).
    expect([...viaJson].sort()).toEqual(expected);
    expect([...viaFlat].sort()).toEqual(expected);
  });

  test('the flat form: a repeated key selects the profiles matching every occurrence', async () => {
    const viaFlat = await allPages('/profiles?action=search&action=checkout&device_type=mobile', 100);
    const expected = (
      await mongo.db
        .collection('profiles')
        .find({ actions: { $all: ['search', 'checkout'] }, device_type: 'mobile' })
        .toArray()
    ).map((d) => d._id as unknown as string);
    expect(expected.length).toBeGreaterThan(0);
    expect([...viaFlat].sort()).toEqual(expected.sort());
  });

  test('keyset positions (what MongoDB pages use) page in user_id order on FerretDB too', async () => {
    const filter = { device_type: 'desktop' };
    const ids: string[] = [];
    let after: string | undefined = 'k:';
    while (after !== undefined) {
      const page = await store.find(filter, { limit: 70, after });
      ids.push(...idsOf(page.profiles));
      after = page.nextAfter ?? undefined;
    }
    const expected = (await mongo.db.collection('profiles').find(filter).sort({ _id: 1 }).toArray()).map(
      (d) => d._id as unknown as string,
    );
    expect(ids).toEqual(expected);
    expect(await store.backend()).toBe('ferretdb');
  });

  test('behavioral_pattern=high_activity is the derived activity level; ranges work on resource intensity', async () => {
    const high = body(
      await app.inject({
        url: '/profiles?behavioral_pattern=high_activity&limit=1000&fields=activity_level',
      }),
    );
    expect((high.profiles as Profile[]).length).toBeGreaterThan(0);
    expect(new Set((high.profiles as Profile[]).map((p) => p.activity_level))).toEqual(new Set(['high']));
    const criteria = encodeURIComponent(
      JSON.stringify({
        'resource_intensity.cpu_ms': { gte: 50, lt: 100 },
        actions: { all: ['search', 'view_product'] },
      }),
    );
    const ranged = body(await app.inject({ url: `/profiles?criteria=${criteria}&limit=1000` }))
      .profiles as Profile[];
    expect(ranged.length).toBeGreaterThan(0);
    for (const profile of ranged) {
      expect(profile.resource_intensity.cpu_ms).toBeGreaterThanOrEqual(50);
      expect(profile.resource_intensity.cpu_ms).toBeLessThan(100);
      expect(profile.actions).toEqual(expect.arrayContaining(['search', 'view_product']));
    }
  });

  test('fields projects, and a cursor cannot be replayed with other criteria', async () => {
    const page = body(
      await app.inject({ url: '/profiles?device_type=desktop&limit=2&fields=device_type,geo_location' }),
    );
    expect(Object.keys((page.profiles as Json[])[0] as Json).sort()).toEqual([
      'device_type',
      'geo_location',
      'user_id',
    ]);
    const replay = await app.inject({
      url: `/profiles?device_type=mobile&cursor=${page.next_cursor as string}`,
    });
    expect(replay.statusCode).toBe(400);
    expect(body(replay).issues).toEqual([
      { field: 'cursor', rule: 'was issued for other criteria; start again without a cursor' },
    ]);
    const badField = await app.inject({ url: '/profiles?fields=password' });
    expect(badField.statusCode).toBe(400);
    expect(body(badField).message).toMatch(/^fields: password is not a profile field/);
  });

  test.each([
    [{ $where: 'sleep(1000)' }, '$where'],
    [{ $function: { body: 'x' } }, '$function'],
    [{ $expr: { $gt: ['$a', 1] } }, '$expr'],
    [{ device_type: { $regex: '.*' } }, 'device_type.$regex'],
    [{ device_type: { in: [{ $gt: '' }] } }, 'device_type.in[0]'],
    [{ $or: [{ $and: [{ device_type: 'bot' }] }] }, '$or[0].$and'],
    [{ password: 'x' }, 'password'],
    [{ 'geo_location.country': { $ne: { $where: '1' } } }, 'geo_location.country.$ne'],
  ])('criteria %j are rejected naming %s, before any query reaches the database', async (criteria, key) => {
    mongo.commands.length = 0;
    const response = await app.inject({
      url: `/profiles?criteria=${encodeURIComponent(JSON.stringify(criteria))}`,
    });
    expect(response.statusCode).toBe(400);
    expect((body(response).issues as { field: string }[]).map((issue) => issue.field)).toContain(
      `criteria.${key}`,
    );
    expect(
      mongo.commands.filter((command) => ['find', 'aggregate', 'count'].includes(command.commandName)),
    ).toEqual([]);
  });

  test('the flat form rejects unknown keys and operators by name', async () => {
    const response = await app.inject({ url: '/profiles?colour=red&device_type=regex:.*' });
    expect(response.statusCode).toBe(400);
    expect((body(response).issues as { field: string }[]).map((issue) => issue.field)).toEqual(['colour']);
    const bad = await app.inject({ url: '/profiles?limit=5000' });
    expect(body(bad).issues).toEqual([{ field: 'limit', rule: 'must be <= 1000' }]);
  });
});

describe('fuzzing through HTTP', () => {
  const DATA_COMMANDS = ['find', 'aggregate', 'count', 'insert', 'update', 'delete', 'getMore'];
  const dangerous = fc.constantFrom(
    '$where',
    '$function',
    '$expr',
    '$accumulator',
    '$regex',
    'password',
    '$nor',
    '__proto__',
  );
  const badCriteria = fc
    .tuple(
      fc.array(fc.constantFrom('device_type', 'geo_location', 'actions', '$or', 'in', 'eq', 'gte'), {
        maxLength: 3,
      }),
      dangerous,
      fc.jsonValue({ maxDepth: 1 }),
    )
    .map(([path, key, value]) => {
      let criteria: unknown = { [key]: value };
      for (const step of [...path].reverse())
        criteria = step === '$or' ? { $or: [criteria] } : { [step]: criteria };
      return criteria;
    });

  test('bad criteria get a 400 naming a field, never a 5xx, and no query reaches the database', async () => {
    mongo.commands.length = 0;
    await fc.assert(
      fc.asyncProperty(
        badCriteria,
        fc.constantFrom('/profiles', '/profiles/sample', '/profiles/stats'),
        async (criteria, route) => {
          const response = await app.inject({
            url: `${route}?criteria=${encodeURIComponent(JSON.stringify(criteria))}`,
          });
          expect(response.statusCode).toBe(400);
          expect((body(response).issues as unknown[]).length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 1000 },
    );
    expect(mongo.commands.filter((command) => DATA_COMMANDS.includes(command.commandName))).toEqual([]);
  });

  test('bad profiles get a 400, never a 5xx, and nothing is written', async () => {
    const before = await store.count();
    mongo.commands.length = 0;
    const mutation = fc.record({
      key: fc.constantFrom(
        'user_id',
        'device_type',
        'geo_location',
        'resource_intensity',
        'behavioral_patterns',
        'schema_version',
        '$set',
      ),
      value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant([{ timestamp: 0, action: 'teleport' }])),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        async (changes, asBatch) => {
          const input = profileInput('fuzz-1');
          for (const { key, value } of changes) input[key] = value;
          // A valid change (e.g. the same device type) would be written: keep only the rejected ones.
          const payload = asBatch ? [profileInput('fuzz-ok'), input] : input;
          const response = await app.inject({
            method: 'POST',
            url: '/profiles',
            headers: auth,
            payload: payload as object,
          });
          expect(
            response.statusCode === 400 || response.statusCode === 201 || response.statusCode === 200,
          ).toBe(true);
          // A mutation can happen to be valid (a new user_id, say): undo exactly what was written.
          if (response.statusCode !== 400)
            for (const id of body(response).user_ids as string[]) await store.delete(id);
        },
      ),
      { numRuns: 600 },
    );
    expect(await store.count()).toBe(before);
  });
});

describe('sample and stats', () => {
  test('a sample is reproducible by seed and keeps the population mix', async () => {
    const first = body(await app.inject({ url: '/profiles/sample?n=60&seed=7' }));
    const again = body(await app.inject({ url: '/profiles/sample?n=60&seed=7' }));
    const other = body(await app.inject({ url: '/profiles/sample?n=60&seed=8' }));
    expect(first.user_ids).toEqual(again.user_ids);
    expect(first.user_ids).not.toEqual(other.user_ids);
    expect((first.user_ids as string[]).length).toBe(60);
    const stats = body(await app.inject({ url: '/profiles/stats' }));
    const total = stats.total as number;
    const devices = stats.device_type as Record<string, number>;
    const mix = first.mix as Record<string, number>;
    // Largest-remainder allocation per stratum: each marginal within a few profiles of proportional.
    for (const [device, count] of Object.entries(devices)) {
      expect(Math.abs((mix[`device:${device}`] ?? 0) * 60 - (count / total) * 60)).toBeLessThan(6);
    }
  });

  test('a sample honours criteria and can return chosen fields', async () => {
    const sample = body(
      await app.inject({
        url: '/profiles/sample?device_type=desktop&n=5&seed=3&fields=device_type,pattern_count',
      }),
    );
    expect((sample.profiles as Profile[]).map((p) => p.device_type)).toEqual(Array(5).fill('desktop'));
    expect(Object.keys((sample.profiles as Json[])[0] as Json).sort()).toEqual([
      'device_type',
      'pattern_count',
      'user_id',
    ]);
  });

  test('samples beyond the concurrency cap get 429 with Retry-After; the slot is freed after each', async () => {
    const capped = await buildApp({
      db: mongo.db,
      config: apiConfig({ auth: { protectReads: false }, limits: { maxConcurrentSamples: 1 } }),
    });
    try {
      // Each sample reads the 600-profile population from FerretDB: the others arrive meanwhile.
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, seed) => capped.inject({ url: `/profiles/sample?n=5&seed=${seed}` })),
      );
      const refused = answers.filter((answer) => answer.statusCode === 429);
      expect(answers.filter((answer) => answer.statusCode === 200).length).toBeGreaterThanOrEqual(1);
      expect(refused.length).toBeGreaterThanOrEqual(1);
      for (const answer of refused) {
        expect(answer.headers['retry-after']).toBe('2');
        expect(body(answer)).toMatchObject({
          error: 'too_many_samples',
          message: expect.stringContaining('PROFILES_API_MAX_CONCURRENT_SAMPLES') as unknown,
        });
      }
      // Bad input is still a 400, and a finished (or failed) sample gives its slot back.
      expect((await capped.inject({ url: '/profiles/sample?fields=nope' })).statusCode).toBe(400);
      expect((await capped.inject({ url: '/profiles/sample?n=5' })).statusCode).toBe(200);
    } finally {
      await capped.close();
    }
  });

  test('stats count by device, country, region, activity level and action', async () => {
    const stats = body(await app.inject({ url: '/profiles/stats?geo_location=DE' }));
    const expected = await mongo.db.collection('profiles').countDocuments({ 'geo_location.country': 'DE' });
    expect(stats.total).toBe(expected);
    expect(stats.country).toEqual({ DE: expected });
    const sum = (bucket: unknown) =>
      Object.values(bucket as Record<string, number>).reduce((a, b) => a + b, 0);
    expect(sum(stats.device_type)).toBe(expected);
    expect(sum(stats.activity_level)).toBe(expected);
    expect(Object.keys(stats.actions as Json)).toContain('page_view');
  });
});

describe('service endpoints', () => {
  test('health, readiness, metrics and the OpenAPI document', async () => {
    expect(body(await app.inject({ url: '/healthz' }))).toEqual({ status: 'ok' });
    expect(body(await app.inject({ url: '/readyz' }))).toEqual({
      status: 'ready',
      checks: { mongodb: 'ok' },
    });
    const metrics = await app.inject({ url: '/metrics' });
    expect(metrics.body).toContain('profiles_api_request_duration_seconds_bucket');
    expect(metrics.body).toContain('profiles_api_profiles_written_total');
    const openapi = body(await app.inject({ url: '/docs/json' }));
    expect(Object.keys(openapi.paths as Json)).toEqual(
      expect.arrayContaining([
        '/profiles',
        '/profiles/{user_id}',
        '/profiles/sample',
        '/profiles/stats',
        '/profiles/generate',
      ]),
    );
    const ui = await app.inject({ url: '/docs/' });
    expect(ui.statusCode).toBe(200);
    expect(ui.body).toContain('swagger-ui');
  });

  test('POST /profiles/generate is seeded and idempotent', async () => {
    const payload = { count: 30, seed: 99, id_prefix: 'gen' };
    const first = body(
      await app.inject({ method: 'POST', url: '/profiles/generate', headers: auth, payload }),
    );
    expect(first).toMatchObject({ count: 30, created: 30, updated: 0 });
    const before = await store.get('gen-99-0000007');
    const second = body(
      await app.inject({ method: 'POST', url: '/profiles/generate', headers: auth, payload }),
    );
    expect(second).toMatchObject({ created: 0, updated: 30 });
    const after = await store.get('gen-99-0000007');
    expect({ ...after, updated_at: undefined }).toEqual({ ...before, updated_at: undefined });
  });

  test('POST /profiles/generate checks the generated entries against a custom ontology', async () => {
    const full = loadOntology(DEFAULT_ONTOLOGY_FILE);
    const { upload: _upload, ...withoutUpload } = full.actions;
    const narrow = { ...full, name: 'narrow', actions: withoutUpload };
    for (const [ontology, status] of [
      [full, 200],
      [narrow, 400],
    ] as const) {
      const custom = await buildApp({
        db: mongo.db,
        collection: `generated_${ontology.name}`,
        config: apiConfig({ auth: { token: TOKEN, protectReads: false }, ontology }),
      });
      try {
        const response = await custom.inject({
          method: 'POST',
          url: '/profiles/generate',
          headers: auth,
          payload: { count: 200, seed: 5 },
        });
        expect(response.statusCode).toBe(status);
        const stored = await mongo.db.collection(`generated_${ontology.name}`).countDocuments();
        if (status === 200) expect(stored).toBe(200);
        else {
          // Refused before any write, with the ontology and the failing entry named.
          expect(stored).toBe(0);
          const issues = body(response).issues as { field: string; rule: string }[];
          expect(issues.map((issue) => issue.field)).toEqual(['ontology']);
          expect(issues[0]?.rule).toMatch(
            /^the server's ontology narrow@1\.0\.0 does not accept the generator's standard shop actions \(profile syn-5-\d+, behavioral_patterns\[\d+\]\.action: must be an action of ontology narrow/,
          );
        }
      } finally {
        await custom.close();
      }
    }
  });

  test('action names like constructor are a 400 naming the field, or work when the ontology has them', async () => {
    for (const action of ['constructor', 'prototype', 'hasownproperty'] as const) {
      const response = await app.inject({
        method: 'POST',
        url: '/profiles',
        headers: auth,
        payload: profileInput('proto-1', { behavioral_patterns: [{ timestamp: 0, action }] }),
      });
      expect(response.statusCode).toBe(400);
      expect(body(response).issues).toEqual([
        {
          field: 'body.behavioral_patterns[0].action',
          rule: expect.stringMatching(/^must be an action of ontology shop@1\.0\.0/) as unknown,
        },
      ]);
    }
    // An ontology may name an action `constructor`: stored and counted like any other.
    const full = loadOntology(DEFAULT_ONTOLOGY_FILE);
    const ontology = {
      ...full,
      name: 'builders',
      actions: { ...full.actions, constructor: { ...full.actions.page_view!, name: 'constructor' } },
    };
    const custom = await buildApp({
      db: mongo.db,
      collection: 'profiles_builders',
      config: apiConfig({ auth: { token: TOKEN, protectReads: false }, ontology }),
    });
    try {
      const patterns = [
        { timestamp: 0, action: 'constructor' },
        { timestamp: 1000, action: 'page_view' },
      ];
      for (const id of ['builder-1', 'builder-2']) {
        const written = await custom.inject({
          method: 'POST',
          url: '/profiles',
          headers: auth,
          payload: profileInput(id, { behavioral_patterns: patterns }),
        });
        expect(written.statusCode).toBe(201);
      }
      const stats = body(await custom.inject({ url: '/profiles/stats' }));
      expect(stats.actions).toEqual({ constructor: 2, page_view: 2 });
      const selected = body(await custom.inject({ url: '/profiles?behavioral_pattern=constructor' }));
      expect(idsOf(selected.profiles as Profile[])).toEqual(['builder-1', 'builder-2']);
    } finally {
      await custom.close();
    }
  });

  test('unknown routes are 404 with the route named', async () => {
    const response = await app.inject({ url: '/nope' });
    expect(response.statusCode).toBe(404);
    expect(body(response).message).toBe('no route GET /nope');
  });
});
