/**
 * The driver-only side of bench/profiles.ts, run as its own process like autocannon is: the
 * same queries the API answers, issued straight through the store and the MongoDB driver.
 * Prints one JSON object: every latency in ms and the elapsed time.
 */
import { MongoClient } from 'mongodb';
import { parseCriteria } from '../profiles/criteria';
import { StoreProfileSource } from '../profiles/profile-source';
import { ProfileStore } from '../profiles/store';
import type { Json } from '../core/validation';

interface DriverLoad {
  uri: string;
  db: string;
  query: 'criteria' | 'sample';
  criteria: Record<string, Json>;
  limit: number;
  seed: number;
  amount: number;
  concurrency: number;
}

async function main(): Promise<void> {
  const load = JSON.parse(process.argv[2] ?? '{}') as DriverLoad;
  const client = await MongoClient.connect(load.uri);
  const store = new ProfileStore(client.db(load.db));
  const source = new StoreProfileSource(store);
  const criteria = parseCriteria(load.criteria);
  const run = async () =>
    load.query === 'criteria'
      ? store.find(criteria.filter, { limit: load.limit })
      : source.sample(criteria, load.limit, load.seed);
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
