import fc from 'fast-check';
import { defaultOntology } from '../../profiles/ontology';
import {
  activityLevelOf,
  actionsPerMinuteOf,
  parseProfile,
  profileIssues,
} from '../../profiles/profile-schema';
import { ValidationError } from '../../core/validation';
import { profileInput } from './support';

const ontology = defaultOntology();

describe('profile schema', () => {
  test('derives activity level from actions per minute, with a one-minute floor', () => {
    expect(actionsPerMinuteOf([{ timestamp: 0 }, { timestamp: 1000 }, { timestamp: 2000 }])).toBe(3);
    expect(actionsPerMinuteOf(Array.from({ length: 20 }, (_, i) => ({ timestamp: i * 6000 })))).toBeCloseTo(
      10.53,
      2,
    );
    expect([activityLevelOf(1.99), activityLevelOf(2), activityLevelOf(5.99), activityLevelOf(6)]).toEqual([
      'low',
      'medium',
      'medium',
      'high',
    ]);
  });

  test('measures duration and rate from the first entry, also when offsets do not start at 0', () => {
    // 20 entries over 2 minutes: 10 a minute (high), whatever the first offset is.
    const patterns = (start: number) =>
      Array.from({ length: 20 }, (_, i) => ({
        timestamp: start + Math.round((i * 120_000) / 19),
        action: 'page_view',
      }));
    for (const start of [0, 3_600_000]) {
      const profile = parseProfile(profileInput('u1', { behavioral_patterns: patterns(start) }), ontology);
      expect(profile).toMatchObject({
        session_duration_ms: 120_000,
        actions_per_minute: 10,
        activity_level: 'high',
      });
    }
  });

  test('ignores supplied derived fields and recomputes them', () => {
    const profile = parseProfile(
      profileInput('u1', { activity_level: 'high', actions: ['upload'], pattern_count: 99 }),
      ontology,
    );
    expect(profile).toMatchObject({
      activity_level: 'medium',
      actions: ['add_to_cart', 'page_view', 'search', 'view_product'],
      pattern_count: 4,
      schema_version: 1,
    });
  });

  test('names the field and rule of each problem', () => {
    const issues = profileIssues(
      profileInput('bad id with spaces', {
        geo_location: { country: 'usa' },
        resource_intensity: { period_ms: 0 },
        behavioral_patterns: [{ timestamp: -1, action: 'page_view', data: { $where: 'x' } }],
      }),
      ontology,
    );
    expect(issues.map((issue) => issue.field)).toEqual([
      'user_id',
      'behavioral_patterns[0].timestamp',
      'behavioral_patterns[0].data.$where',
      'resource_intensity.period_ms',
      'geo_location.country',
    ]);
  });

  test('enforces the configured maximum number of entries', () => {
    const patterns = Array.from({ length: 6 }, (_, i) => ({ timestamp: i, action: 'page_view' }));
    expect(
      profileIssues(profileInput('u', { behavioral_patterns: patterns }), ontology, {
        maxPatternsPerProfile: 5,
      }),
    ).toEqual([{ field: 'behavioral_patterns', rule: 'must have at most 5 entries' }]);
  });

  test('rejects mixed timestamp kinds and malformed ISO times', () => {
    const mixed = profileInput('u', {
      behavioral_patterns: [
        { timestamp: 0, action: 'page_view' },
        { timestamp: '2024-01-01T00:00:00Z', action: 'page_view' },
      ],
    });
    expect(profileIssues(mixed, ontology)[0]?.rule).toContain('not a mix');
    const malformed = profileInput('u', {
      behavioral_patterns: [{ timestamp: '2024-13-45 noon', action: 'page_view' }],
    });
    expect(profileIssues(malformed, ontology)).toEqual([
      { field: 'behavioral_patterns[0].timestamp', rule: 'must be an ISO 8601 date-time with a time zone' },
    ]);
  });

  test('thousands of mutated profiles are all either valid or cleanly rejected', () => {
    const mutations = fc.oneof(
      fc.record({
        key: fc.constantFrom(
          'user_id',
          'device_type',
          'geo_location',
          'resource_intensity',
          'behavioral_patterns',
          'extra',
        ),
        value: fc.jsonValue({ maxDepth: 3 }),
      }),
      fc.record({
        key: fc.constant('behavioral_patterns'),
        value: fc.array(
          fc.record(
            {
              timestamp: fc.oneof(fc.integer(), fc.string(), fc.double()),
              action: fc.oneof(fc.constantFrom(...Object.keys(ontology.actions)), fc.string()),
              data: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 1 })),
            },
            { requiredKeys: [] },
          ),
          { maxLength: 4 },
        ),
      }),
    );
    let rejected = 0;
    fc.assert(
      fc.property(fc.array(mutations, { minLength: 1, maxLength: 3 }), (changes) => {
        const input = profileInput('fuzz');
        for (const { key, value } of changes) input[key] = value;
        try {
          const profile = parseProfile(input, ontology);
          expect(profile.pattern_count).toBe(profile.behavioral_patterns.length);
        } catch (error) {
          expect(error).toBeInstanceOf(ValidationError);
          for (const issue of (error as ValidationError).issues) expect(issue.rule.length).toBeGreaterThan(0);
          rejected++;
        }
      }),
      { numRuns: 3000 },
    );
    expect(rejected).toBeGreaterThan(2500);
  });

  test('arbitrary JSON is never accepted by accident and never crashes the parser', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(() => parseProfile(value, ontology)).toThrow(ValidationError);
      }),
      { numRuns: 2000 },
    );
  });
});
