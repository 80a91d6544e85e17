import fc from 'fast-check';
import {
  CRITERIA_FIELDS,
  CRITERIA_KEYS,
  parseCriteria,
  parseCriteriaText,
  parseFlatCriteria,
} from '../../profiles/criteria';
import { ValidationError } from '../../core/validation';

function rejection(run: () => unknown): { fields: string[]; message: string } {
  try {
    run();
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    return { fields: error.issues.map((issue) => issue.field), message: error.message };
  }
  throw new Error('expected a ValidationError');
}

/** Every key anywhere in a filter: what MongoDB would see. */
function keysOf(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((item) => keysOf(item, out));
  else if (value && typeof value === 'object')
    for (const [key, item] of Object.entries(value)) {
      out.push(key);
      keysOf(item, out);
    }
  return out;
}

const SAFE_OPERATORS = new Set([
  '$eq',
  '$ne',
  '$in',
  '$nin',
  '$gt',
  '$gte',
  '$lt',
  '$lte',
  '$all',
  '$exists',
  '$and',
  '$or',
]);
const SAFE_PATHS = new Set(Object.values(CRITERIA_FIELDS).map((field) => field.path));

describe('criteria compile to whitelisted filters', () => {
  test.each([
    [{ device_type: 'mobile' }, { device_type: 'mobile' }],
    [
      { geo_location: 'US', behavioral_pattern: 'high_activity' },
      { 'geo_location.country': 'US', activity_level: 'high' },
    ],
    [{ device_type: { in: ['mobile', 'tablet'] } }, { device_type: { $in: ['mobile', 'tablet'] } }],
    [
      { 'resource_intensity.cpu_ms': { $gte: 10, lt: 50 } },
      { 'resource_intensity.cpu_ms': { $gte: 10, $lt: 50 } },
    ],
    [{ behavioral_pattern: 'checkout' }, { actions: 'checkout' }],
    [{ actions: { all: ['search', 'checkout'] } }, { actions: { $all: ['search', 'checkout'] } }],
    [{ user_id: 'u-1' }, { _id: 'u-1' }],
    [
      { $or: [{ device_type: 'bot' }, { activity_level: 'high' }] },
      { $or: [{ device_type: 'bot' }, { activity_level: 'high' }] },
    ],
    [
      { behavioral_pattern: 'high_activity', activity_level: { ne: 'high' } },
      { activity_level: { $eq: 'high', $ne: 'high' } },
    ],
  ])('%j -> %j', (criteria, filter) => {
    expect(parseCriteria(criteria).filter).toEqual(filter);
  });

  test('the flat form: comma lists, op: prefixes and repeated keys', () => {
    expect(
      parseFlatCriteria({
        geo_location: 'US',
        device_type: 'mobile,tablet',
        'resource_intensity.cpu_ms': ['gte:100', 'lt:200'],
        behavioral_pattern: 'high_activity',
      }).filter,
    ).toEqual({
      'geo_location.country': 'US',
      device_type: { $in: ['mobile', 'tablet'] },
      'resource_intensity.cpu_ms': { $gte: 100, $lt: 200 },
      activity_level: 'high',
    });
    expect(rejection(() => parseFlatCriteria({ pattern_count: 'gte:many' })).fields).toEqual([
      'pattern_count.gte',
    ]);
  });

  test('the flat form: a key repeated with the same operator adds a condition (all must hold)', () => {
    expect(
      parseFlatCriteria({
        action: ['search', 'checkout', 'eq:upload'],
        'resource_intensity.cpu_ms': ['gte:100', 'gte:150', 'lt:400'],
      }).filter,
    ).toEqual({
      actions: 'search',
      'resource_intensity.cpu_ms': { $gte: 100, $lt: 400 },
      $and: [
        { actions: { $eq: 'checkout' } },
        { 'resource_intensity.cpu_ms': { $gte: 150 } },
        { actions: { $eq: 'upload' } },
      ],
    });
    // Each occurrence is still checked and named by its key.
    expect(rejection(() => parseFlatCriteria({ pattern_count: ['gte:1', 'gte:many'] })).fields).toEqual([
      'pattern_count.gte',
    ]);
  });

  test('the same criteria give the same digest whatever the key order', () => {
    const a = parseCriteria({ device_type: 'mobile', geo_location: 'US' });
    const b = parseCriteria({ geo_location: 'US', device_type: 'mobile' });
    expect(a.digest).toBe(b.digest);
    expect(parseCriteria({ device_type: 'tablet' }).digest).not.toBe(a.digest);
  });

  test.each([
    [{ $where: 'this.a > 1' }, 'criteria.$where', 'never code or expressions'],
    [{ $function: {} }, 'criteria.$function', 'never code or expressions'],
    [{ $expr: { $eq: [1, 1] } }, 'criteria.$expr', 'never code or expressions'],
    [{ $nor: [] }, 'criteria.$nor', 'is not an allowed operator here'],
    [
      { device_type: { $regex: '^m' } },
      'criteria.device_type.$regex',
      'is not an allowed operator for device_type',
    ],
    [{ device_type: { $where: '1' } }, 'criteria.device_type.$where', 'is not an allowed operator'],
    [{ device_type: { in: [{ $ne: null }] } }, 'criteria.device_type.in[0]', 'must be a single value'],
    [{ device_type: { eq: { $gt: '' } } }, 'criteria.device_type.eq', 'must be a single value'],
    [{ device_type: ['mobile'] }, 'criteria.device_type', 'a bare list is ambiguous'],
    [
      { 'resource_intensity.cpu_ms': { gt: '5' } },
      'criteria.resource_intensity.cpu_ms.gt',
      'must be a finite number',
    ],
    [{ device_type: { gt: 'a' } }, 'criteria.device_type.gt', 'is not an allowed operator'],
    [{ $or: [{ $or: [{ device_type: 'bot' }] }] }, 'criteria.$or[0].$or', 'may only appear at the top level'],
    [
      { 'behavioral_patterns.action': 'x' },
      'criteria.behavioral_patterns.action',
      'is not a field criteria can select on',
    ],
    [{ geo_location: 'usa' }, 'criteria.geo_location', 'ISO 3166-1 alpha-2'],
  ])('%j is rejected at %s', (criteria, field, rule) => {
    const { fields, message } = rejection(() =>
      parseCriteria(JSON.parse(JSON.stringify(criteria)) as unknown),
    );
    expect(fields).toContain(field);
    expect(message).toContain(rule);
  });

  test('a JSON __proto__ key is just an unknown field (no prototype pollution)', () => {
    expect(rejection(() => parseCriteriaText('{"__proto__":{"polluted":true}}')).fields).toEqual([
      'criteria.__proto__',
    ]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  test('criteria text must be a JSON object of bounded size', () => {
    expect(rejection(() => parseCriteriaText('{"device_type":')).fields).toEqual(['criteria']);
    expect(rejection(() => parseCriteriaText('"mobile"')).fields).toEqual(['criteria']);
    expect(rejection(() => parseCriteriaText(`{"device_type":"${'m'.repeat(9000)}"}`)).message).toContain(
      'at most 8192',
    );
  });
});

describe('criteria parser under fuzzing', () => {
  const anyKey = fc.oneof(
    fc.constantFrom(
      ...CRITERIA_KEYS,
      '$where',
      '$function',
      '$expr',
      '$accumulator',
      '$regex',
      '$nor',
      '$and',
      '$or',
      '$text',
      '$jsonSchema',
      'eq',
      '$in',
      '__proto__',
      'constructor',
    ),
    fc.string({ maxLength: 12 }),
  );
  const anyCriteria = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      fc.jsonValue({ maxDepth: 1 }),
      tie('object'),
      fc.array(tie('value'), { maxLength: 3 }),
    ),
    object: fc.dictionary(anyKey, tie('value'), { maxKeys: 4 }),
  })).object;

  test('whatever the input, the result is a ValidationError or a filter of whitelisted paths and operators only', () => {
    let accepted = 0;
    fc.assert(
      fc.property(anyCriteria, (criteria) => {
        let filter: unknown;
        try {
          filter = parseCriteria(criteria).filter;
        } catch (error) {
          expect(error).toBeInstanceOf(ValidationError);
          const issues = (error as ValidationError).issues;
          expect(issues.length).toBeGreaterThan(0);
          for (const issue of issues) expect(issue.field.startsWith('criteria')).toBe(true);
          return;
        }
        accepted++;
        for (const key of keysOf(filter))
          expect(key.startsWith('$') ? SAFE_OPERATORS.has(key) : SAFE_PATHS.has(key)).toBe(true);
      }),
      { numRuns: 5000 },
    );
    expect(accepted).toBeGreaterThan(0);
  });

  test('any criteria containing a code operator anywhere is rejected, naming its path', () => {
    const dangerous = fc.constantFrom('$where', '$function', '$expr', '$accumulator');
    const nested = fc
      .tuple(
        fc.array(fc.constantFrom(...CRITERIA_KEYS, '$or', 'in', 'eq'), { minLength: 0, maxLength: 3 }),
        dangerous,
        fc.jsonValue({ maxDepth: 1 }),
      )
      .map(([path, operator, value]) => {
        let criteria: unknown = { [operator]: value };
        for (const key of [...path].reverse())
          criteria = key === '$or' ? { $or: [criteria] } : { [key]: criteria };
        return { criteria, operator };
      });
    fc.assert(
      fc.property(nested, ({ criteria }) => {
        expect(() => parseCriteria(criteria)).toThrow(ValidationError);
      }),
      { numRuns: 3000 },
    );
  });

  test('the flat form never throws anything but a ValidationError', () => {
    fc.assert(
      fc.property(
        fc.dictionary(anyKey, fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 })), { maxKeys: 5 }),
        (query) => {
          try {
            parseFlatCriteria(query);
          } catch (error) {
            expect(error).toBeInstanceOf(ValidationError);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});
