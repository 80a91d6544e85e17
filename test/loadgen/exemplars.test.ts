import fc from 'fast-check';
import {
  EXEMPLARS_KEPT,
  ExemplarKeeper,
  mergeExemplars,
  scrubPath,
  type ActionExemplars,
} from '../../loadgen/exemplars';
import { ActionRecorder, mergeStats } from '../../loadgen/stats';

describe('scrubPath', () => {
  test.each([
    ['/search?q=lamp', '/search?q=lamp'],
    ['/api/orders?token=abc&page=2', '/api/orders?token=REDACTED&page=2'],
    [
      '/x?api_key=1&access_token=2&Signature=3&sid=4',
      '/x?api_key=REDACTED&access_token=REDACTED&Signature=REDACTED&sid=REDACTED',
    ],
    ['/x?password=hunter2&user=bo', '/x?password=REDACTED&user=bo'],
    ['/cb?code=xyz&state=1', '/cb?code=REDACTED&state=1'],
    ['/x?q=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln', '/x?q=REDACTED'],
    ['/x?q=sk9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a', '/x?q=REDACTED'],
    ['/x?sk9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a', '/x?REDACTED'],
    ['/products/7', '/products/7'],
  ])('%s -> %s', (path, scrubbed) => {
    expect(scrubPath(path)).toBe(scrubbed);
  });
});

const exemplar = (latencyMs: number, profileId: string) => ({
  profileId,
  method: 'GET',
  path: '/search?q=x',
  status: 200,
  latencyMs,
  target: 'canary',
});

const requests = fc.array(
  fc.record({ micros: fc.integer({ min: 1, max: 5_000_000 }), profile: fc.constantFrom('a', 'b', 'c') }),
  { maxLength: 60 },
);

describe('ExemplarKeeper and mergeExemplars', () => {
  test('keep exactly the slowest requests, however they are split and ordered', () => {
    fc.assert(
      fc.property(requests, fc.integer({ min: 1, max: 4 }), (list, parts) => {
        const whole = new ExemplarKeeper('canary');
        const split = Array.from({ length: parts }, () => new ExemplarKeeper('canary'));
        list.forEach(({ micros, profile }, index) => {
          whole.offerSuccess(micros, 200, profile, 'GET', '/search?q=x');
          split[index % parts]?.offerSuccess(micros, 200, profile, 'GET', '/search?q=x');
        });
        const expected = list
          .map(({ micros, profile }) => exemplar(Math.round(micros) / 1000, profile))
          .sort((a, b) => b.latencyMs - a.latencyMs || (a.profileId < b.profileId ? -1 : 1))
          .slice(0, EXEMPLARS_KEPT);
        const merged = mergeExemplars(split.map((keeper) => keeper.drain()).reverse());
        const direct = whole.drain();
        if (list.length === 0) return merged === undefined && direct === undefined;
        expect(direct?.slowest).toEqual(expected);
        expect(merged?.slowest).toEqual(expected);
        return true;
      }),
    );
  });

  test('the recorder keeps exemplars only of requests it knows, and mergeStats carries them', () => {
    const first = new ActionRecorder('canary', 'search');
    first.recordSuccess(9000, 200, 10); // no request given: counted, not kept
    first.recordSuccess(3000, 200, 10, { method: 'GET', path: '/search?q=a' }, 'u1');
    first.recordError('unexpected_status', 2000, 500, 10, { method: 'GET', path: '/search?token=t' }, 'u2');
    const second = new ActionRecorder('canary', 'search');
    second.recordSuccess(7000, 200, 10, { method: 'GET', path: '/search?q=b' }, 'u3');
    const [merged] = mergeStats([[first.drain()], [second.drain()]]);
    const exemplars = merged?.exemplars as ActionExemplars;
    expect(exemplars.slowest.map((request) => [request.profileId, request.latencyMs])).toEqual([
      ['u3', 7],
      ['u1', 3],
    ]);
    expect(exemplars.failed).toEqual([
      {
        profileId: 'u2',
        method: 'GET',
        path: '/search?token=REDACTED',
        status: 500,
        latencyMs: 2,
        target: 'canary',
        error: 'unexpected_status',
      },
    ]);
    // Drained: the next interval starts without them.
    expect(first.drain().exemplars).toBeUndefined();
  });
});
