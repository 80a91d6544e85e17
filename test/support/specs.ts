import { parseRolloutSpec, type RolloutSpec } from '../../rollout/spec';

let counter = 0;

/** A valid spec with short ticks for tests; each call gets its own version, hence its own workflow id. */
export function testSpec(overrides: Record<string, unknown> = {}): RolloutSpec {
  counter += 1;
  return parseRolloutSpec({
    service: 'shop',
    version: `v${Date.now().toString(36)}-${process.pid}-${counter}`,
    targets: { baseline: { url: 'http://127.0.0.1:18081' }, canary: { url: 'http://127.0.0.1:18082' } },
    router: { kind: 'test-recording' },
    interval: '300ms',
    probe: { duration: '100ms', concurrency: 2 },
    ...overrides,
  });
}
