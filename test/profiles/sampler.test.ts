import fc from 'fast-check';
import { allocate, stratifiedSample, stratumKey, type SampleCandidate } from '../../profiles/sampler';

const candidate = fc.record({
  user_id: fc.stringMatching(/^[a-z0-9]{1,8}$/),
  device_type: fc.constantFrom('mobile', 'desktop', 'tablet', 'bot'),
  country: fc.constantFrom('US', 'DE', 'JP'),
  activity_level: fc.constantFrom('low', 'medium', 'high'),
});

describe('stratified sampling', () => {
  test('allocation sums to n and is within one of the proportional share per stratum', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 500 }), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 0, max: 2000 }),
        fc.integer({ min: 0, max: 1000 }),
        (sizes, n, seed) => {
          const populations = new Map(sizes.map((size, i) => [`s${i}`, size] as const));
          const total = sizes.reduce((a, b) => a + b, 0);
          const allocation = allocate(populations, n, seed);
          const sum = [...allocation.values()].reduce((a, b) => a + b, 0);
          expect(sum).toBe(Math.min(n, total));
          for (const [key, size] of populations) {
            const share = total === 0 ? 0 : (Math.min(n, total) * size) / total;
            expect(Math.abs((allocation.get(key) ?? 0) - share)).toBeLessThan(1);
            expect(allocation.get(key)).toBeLessThanOrEqual(size);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('same population and seed: same sample in the same order, whatever the input order', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(candidate, { selector: (c) => c.user_id, maxLength: 200 }),
        fc.integer({ min: 1, max: 50 }),
        fc.nat(),
        (population, n, seed) => {
          const a = stratifiedSample(population, n, seed);
          const b = stratifiedSample([...population].reverse(), n, seed);
          expect(b.userIds).toEqual(a.userIds);
          expect(a.userIds).toHaveLength(Math.min(n, population.length));
          expect(new Set(a.userIds).size).toBe(a.userIds.length);
        },
      ),
      { numRuns: 500 },
    );
  });

  test('keeps the mix of the population and takes each stratum at random', () => {
    const population: SampleCandidate[] = [];
    const shares: [string, string, string, number][] = [
      ['mobile', 'US', 'low', 3000],
      ['mobile', 'DE', 'high', 1000],
      ['desktop', 'US', 'medium', 2000],
      ['bot', 'JP', 'high', 500],
      ['tablet', 'DE', 'low', 500],
    ];
    for (const [device_type, country, activity_level, count] of shares)
      for (let i = 0; i < count; i++)
        population.push({ user_id: `${device_type}-${country}-${i}`, device_type, country, activity_level });
    // 7000 profiles, 140 drawn: exactly 1 in 50 of every stratum.
    const sample = stratifiedSample(population, 140, 7);
    expect(sample.strata.map((stratum) => stratum.allocated)).toEqual([10, 40, 20, 60, 10]);
    expect(sample.mix).toEqual({
      'activity:high': 0.2143,
      'activity:low': 0.5,
      'activity:medium': 0.2857,
      'country:DE': 0.2143,
      'country:JP': 0.0714,
      'country:US': 0.7143,
      'device:bot': 0.0714,
      'device:desktop': 0.2857,
      'device:mobile': 0.5714,
      'device:tablet': 0.0714,
    });
    // Inclusion over many seeds is uniform within a stratum: no member is systematically favoured.
    const hits = new Map<string, number>();
    for (let seed = 0; seed < 300; seed++)
      for (const id of stratifiedSample(population, 140, seed).userIds.filter((id) => id.startsWith('bot-')))
        hits.set(id, (hits.get(id) ?? 0) + 1);
    // 10 of 500 bots per draw, 300 draws: 6 expected per bot.
    expect(hits.size).toBeGreaterThan(450);
    expect(Math.max(...hits.values())).toBeLessThan(20);
  });

  test('a change in one stratum leaves the picks of the others alone', () => {
    const population: SampleCandidate[] = Array.from({ length: 400 }, (_, i) => ({
      user_id: `u${i}`,
      device_type: i % 2 ? 'mobile' : 'desktop',
      country: 'US',
      activity_level: 'low',
    }));
    const before = stratifiedSample(population, 40, 3);
    const grown = stratifiedSample(
      [...population, { user_id: 'new-mobile', device_type: 'mobile', country: 'US', activity_level: 'low' }],
      40,
      3,
    );
    const desktop = (ids: string[], all: SampleCandidate[]) =>
      ids.filter((id) => all.find((c) => c.user_id === id)?.device_type === 'desktop');
    expect(desktop(grown.userIds, population)).toEqual(desktop(before.userIds, population));
    expect(stratumKey(population[0]!)).toBe('desktop|US|low');
  });
});
