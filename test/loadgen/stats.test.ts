import { mergeProbeSummaries } from '../../workflows/probe-summary';
import fc from 'fast-check';
import { TargetAllowlist } from '../../loadgen/allowlist';
import { closedSessionIndex, seededOrder } from '../../loadgen/schedule';
import { ActionRecorder, decodeHistogram, mergeStats, type ActionStats } from '../../loadgen/stats';
import { mergeProbeResults, probeSummaryOf, type ProbeResultDocument } from '../../loadgen/prober';

type Sample = {
  target: 'baseline' | 'canary';
  action: string;
  micros: number;
  status: number;
  ok: boolean;
  bytes: number;
};

const sample = fc.record({
  target: fc.constantFrom('baseline' as const, 'canary' as const),
  action: fc.constantFrom('search', 'checkout', 'page_view'),
  micros: fc.oneof(fc.integer({ min: 1, max: 2_000 }), fc.integer({ min: 1, max: 3_600_000_000 })),
  status: fc.constantFrom(200, 201, 404, 500),
  ok: fc.boolean(),
  bytes: fc.integer({ min: 0, max: 100_000 }),
});

function record(samples: Sample[]): ActionStats[] {
  const recorders = new Map<string, ActionRecorder>();
  for (const s of samples) {
    const key = `${s.target}/${s.action}`;
    let recorder = recorders.get(key);
    if (!recorder) recorders.set(key, (recorder = new ActionRecorder(s.target, s.action)));
    if (s.ok) recorder.recordSuccess(s.micros, s.status, s.bytes);
    else recorder.recordError(s.status >= 500 ? 'unexpected_status' : 'timeout', s.micros, s.status, s.bytes);
  }
  return mergeStats([[...recorders.values()].map((recorder) => recorder.drain())]);
}

/** Everything a reader can get out of the stats, with histograms decoded bucket by bucket. */
function observable(stats: ActionStats[]) {
  return stats.map((entry) => {
    const latency = decodeHistogram(entry.latencyHistogram);
    const errors = decodeHistogram(entry.errorLatencyHistogram);
    return {
      ...entry,
      latencyHistogram: [
        latency.totalCount,
        latency.minNonZeroValue,
        latency.maxValue,
        ...[0, 10, 50, 90, 99, 99.9, 100].map((p) => latency.getValueAtPercentile(p)),
      ],
      errorLatencyHistogram: [errors.totalCount, errors.maxValue, errors.getValueAtPercentile(50)],
    };
  });
}

describe('stats merge', () => {
  test('merging the stats of any split equals recording everything in one place', () => {
    fc.assert(
      fc.property(
        fc.array(sample, { maxLength: 300 }),
        fc.array(fc.nat({ max: 4 }), { maxLength: 300 }),
        (samples, cuts) => {
          const parts: Sample[][] = [[], [], [], [], []];
          samples.forEach((s, index) => parts[cuts[index] ?? 0]?.push(s));
          const merged = mergeStats(parts.map(record));
          const whole = record(samples);
          expect(observable(merged)).toEqual(observable(whole));
          // Order of the inputs does not matter either.
          expect(observable(mergeStats([...parts].reverse().map(record)))).toEqual(observable(whole));
        },
      ),
      { numRuns: 60 },
    );
  });

  test('probe shards merge into the document one probe would have written', () => {
    const shard = (samples: Sample[], index: number): ProbeResultDocument => ({
      rolloutId: 'r1',
      tick: 3,
      startedAt: 1000 + index,
      endedAt: 2000 + index,
      stats: record(samples),
      sessions: { started: samples.length, completed: samples.length, dropped: 0 },
      unfinished: index,
      shards: 1,
      durationMs: 1000,
    });
    const samples = fc.sample(sample, { numRuns: 200, seed: 7 });
    const merged = mergeProbeResults([shard(samples.slice(0, 120), 0), shard(samples.slice(120), 1)]);
    expect(observable(merged.stats)).toEqual(observable(record(samples)));
    expect(merged).toMatchObject({
      startedAt: 1000,
      endedAt: 2001,
      shards: 2,
      unfinished: 1,
      sessions: { started: 200 },
    });
    const summaries = [shard(samples.slice(0, 120), 0), shard(samples.slice(120), 1)].map(probeSummaryOf);
    expect(mergeProbeSummaries(summaries)).toEqual(probeSummaryOf(merged));
  });
});

describe('workload schedule', () => {
  test('every virtual user plays every session in turn, so the mix is the profiles', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 50 }),
        fc.nat(),
        (sessions, users, seed) => {
          const order = seededOrder(sessions, seed);
          const counts = new Array<number>(sessions).fill(0);
          for (let vu = 0; vu < users; vu++)
            for (let iteration = 0; iteration < 2 * sessions; iteration++)
              counts[closedSessionIndex(order, vu, iteration, users)]!++;
          expect(new Set(counts)).toEqual(new Set([2 * users]));
          expect([...order].sort((a, b) => a - b)).toEqual([...Array(sessions).keys()]);
        },
      ),
    );
  });
});

describe('target allowlist', () => {
  test('matches host names, wildcards, IPv4 and IPv6 ranges, and IPv4-mapped addresses', () => {
    const allowlist = new TargetAllowlist([
      '127.0.0.0/8',
      '::1/128',
      'localhost',
      '*.staging.example',
      '10.20.0.0/16',
      'fd00::/8',
    ]);
    expect(allowlist.allowsAddress('127.9.9.9')).toBe(true);
    expect(allowlist.allowsAddress('10.20.255.1')).toBe(true);
    expect(allowlist.allowsAddress('10.21.0.1')).toBe(false);
    expect(allowlist.allowsAddress('::1')).toBe(true);
    expect(allowlist.allowsAddress('fd12:3456::1')).toBe(true);
    expect(allowlist.allowsAddress('fe80::1')).toBe(false);
    expect(allowlist.allowsAddress('::ffff:127.0.0.1')).toBe(true);
    expect(allowlist.allowsAddress('::ffff:169.254.169.254')).toBe(false);
    expect(allowlist.allowsHostName('api.staging.example')).toBe(true);
    expect(allowlist.allowsHostName('staging.example.evil')).toBe(false);
    expect(allowlist.allowsHostName('LOCALHOST')).toBe(true);
  });

  test('the default is loopback only, and bad entries are named', async () => {
    const allowlist = new TargetAllowlist();
    await expect(allowlist.check(new URL('http://127.0.0.1:8080'))).resolves.toBeUndefined();
    await expect(allowlist.check(new URL('http://[::1]:8080'))).resolves.toBeUndefined();
    await expect(allowlist.check(new URL('http://169.254.169.254/latest'))).rejects.toThrow(
      /not in the target allowlist/,
    );
    await expect(allowlist.check(new URL('http://192.168.1.1'))).rejects.toThrow(
      /not in the target allowlist/,
    );
    expect(() => new TargetAllowlist(['10.0.0.0/33', 'bad host'], 'LOADGEN_ALLOWED_TARGETS')).toThrow(
      'LOADGEN_ALLOWED_TARGETS: has entries that are neither host names nor IP/CIDR ranges: 10.0.0.0/33, bad host',
    );
  });
});
