import { generateProfile, generateProfiles } from '../../profiles/generator';
import { defaultOntology, renderRequest } from '../../profiles/ontology';
import { parseProfile } from '../../profiles/profile-schema';

describe('synthetic generator', () => {
  const population = [...generateProfiles({ seed: 42, count: 3000 })];

  test('the same seed gives the same profiles; profile i depends only on the seed and i', () => {
    expect([...generateProfiles({ seed: 42, count: 50 })]).toEqual(population.slice(0, 50));
    expect(generateProfile({ seed: 42 }, 2999)).toEqual(population[2999]);
    expect(generateProfile({ seed: 43 }, 0)).not.toEqual(population[0]);
  });

  test('every profile is valid against the default ontology and every entry renders to a request', () => {
    const ontology = defaultOntology();
    for (const profile of population) {
      expect(parseProfile(profile, ontology)).toEqual(profile);
      for (const pattern of profile.behavioral_patterns)
        renderRequest(ontology, pattern.action, pattern.data);
    }
  });

  test('the population has the intended mix of devices, regions and activity levels', () => {
    const share = (predicate: (p: (typeof population)[number]) => boolean) =>
      population.filter(predicate).length / population.length;
    expect(share((p) => p.device_type === 'mobile')).toBeGreaterThan(0.5);
    expect(share((p) => p.device_type === 'mobile')).toBeLessThan(0.62);
    expect(share((p) => p.device_type === 'bot')).toBeGreaterThan(0.015);
    expect(share((p) => p.geo_location.country === 'US')).toBeGreaterThan(0.25);
    expect(share((p) => p.geo_location.country === 'US')).toBeLessThan(0.35);
    expect(new Set(population.map((p) => p.geo_location.country)).size).toBeGreaterThanOrEqual(12);
    for (const level of ['low', 'medium', 'high'])
      expect(share((p) => p.activity_level === level)).toBeGreaterThan(0.05);
    // Bots are busier than people.
    const apm = (device: string) => {
      const group = population.filter((p) => p.device_type === device);
      return group.reduce((sum, p) => sum + p.actions_per_minute, 0) / group.length;
    };
    expect(apm('bot')).toBeGreaterThan(2 * apm('desktop'));
  });

  test('sessions follow the chain: carts come after products, think times are heavy-tailed', () => {
    const gaps: number[] = [];
    for (const profile of population) {
      const actions = profile.behavioral_patterns.map((pattern) => pattern.action);
      const cart = actions.indexOf('add_to_cart');
      if (cart >= 0 && profile.device_type !== 'bot')
        expect(actions.slice(0, cart)).toContain('view_product');
      const times = profile.behavioral_patterns.map((pattern) => pattern.timestamp);
      for (let i = 1; i < times.length; i++) gaps.push((times[i] as number) - (times[i - 1] as number));
    }
    gaps.sort((a, b) => a - b);
    const quantile = (q: number) => gaps[Math.floor(q * (gaps.length - 1))] as number;
    expect(quantile(0.99) / quantile(0.5)).toBeGreaterThan(8);
  });
});
