/**
 * The driver-only side of bench/profiles.ts, run as its own process like autocannon is: the
 * same reads the API's queries make, issued with the plain MongoDB driver, without our store,
 * sampler or API. A page is one find. A sample is what the service reads for it: on a backend
 * that samples by key, the fine slots from the seed's start until k matches are in hand; on the
 * others, the one full scan of the strata fields. Prints one JSON object: every latency in ms
 * and the elapsed time.
 */
import { MongoClient } from 'mongodb';
import { parseCriteria } from '../profiles/criteria';
import { sampleStart, slotField, slotOrder } from '../profiles/sample-key';
import type { Json } from '../core/validation';
import type { StoredProfile } from '../profiles/store';

interface DriverLoad {
  uri: string;
  db: string;
  query: 'criteria' | 'sample';
  criteria: Record<string, Json>;
  limit: number;
  seed: number;
  /** How the service samples on this backend. */
  sampling: 'sample-key' | 'stratified';
  amount: number;
  concurrency: number;
}

async function main(): Promise<void> {
  const load = JSON.parse(process.argv[2] ?? '{}') as DriverLoad;
  const client = await MongoClient.connect(load.uri);
  const profiles = client.db(load.db).collection<StoredProfile>('profiles');
  const { filter } = parseCriteria(load.criteria);
  const start = sampleStart(load.seed);
  const readSlots = async (level: 64 | 4096, slots: number[]) => {
    const found = await Promise.all(
      slots.map((slot) => profiles.find({ ...filter, [slotField(level)]: slot } as typeof filter).toArray()),
    );
    return found.reduce((sum, documents) => sum + documents.length, 0);
  };
  // As the store does: fine slots in waves of 4, coarse ones when fine slots hold under k/64 matches.
  const sampleBySlots = async () => {
    let level: 64 | 4096 = 4096;
    let slots = slotOrder(start, level);
    let matches = await readSlots(level, slots.slice(0, 4));
    let read = 4;
    if (matches * 64 < load.limit * 4) {
      level = 64;
      slots = slotOrder(start, level);
      matches = 0;
      read = 0;
    }
    for (; read < slots.length && matches < load.limit; read += 4)
      matches += await readSlots(level, slots.slice(read, read + 4));
  };
  const run = async () => {
    if (load.query === 'criteria')
      return profiles
        .find(filter)
        .limit(load.limit + 1)
        .toArray();
    if (load.sampling === 'sample-key') return sampleBySlots();
    return profiles
      .find(filter, { projection: { _id: 1, device_type: 1, 'geo_location.country': 1, activity_level: 1 } })
      .toArray();
  };
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: load.concurrency }, async () => {
      while (next++ < load.amount) {
        const begin = performance.now();
        await run();
        latencies.push(performance.now() - begin);
      }
    }),
  );
  const elapsedMs = performance.now() - started;
  await client.close();
  process.stdout.write(`${JSON.stringify({ latencies, elapsedMs })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
