/**
 * The seeded workload schedule, pure: which session each virtual user plays next and when each
 * open-model session arrives. Every thread, process and probe shard computes the same schedule
 * from the same seed and takes its share by index, so baseline and canary, and the shards of a
 * fanned-out probe, replay one workload and not several similar ones.
 */
import { Random } from '../core/random';

/** A seeded permutation of 0..n-1 (Fisher-Yates). */
export function seededOrder(n: number, seed: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const random = Random.fromSplitMix(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = random.int(i + 1);
    const swap = order[i] as number;
    order[i] = order[j] as number;
    order[j] = swap;
  }
  return order;
}

/**
 * Closed model: the session virtual user `vu` (of `users`) plays in its `iteration`-th loop.
 * Users start spread evenly over the seeded order and each walks it one session at a time, so
 * every user plays every profile in turn and the counts per profile differ by at most `users`:
 * the session mix is the profiles', whatever their lengths.
 */
export function closedSessionIndex(order: Uint32Array, vu: number, iteration: number, users: number): number {
  const start = Math.floor((vu * order.length) / users);
  return order[(start + iteration) % order.length] as number;
}

/** Open model: the session the `arrival`-th arrival plays. */
export function openSessionIndex(order: Uint32Array, arrival: number): number {
  return order[arrival % order.length] as number;
}

export type ArrivalProcess = 'uniform' | 'poisson';

/**
 * Arrival times (ms from the run's start) of an open-model workload at `rate` sessions per
 * second: evenly spaced, or a Poisson process (exponential gaps) drawn from the seed.
 */
export class ArrivalClock {
  private readonly random: Random;
  private index = 0;
  private time = 0;

  constructor(
    private readonly rate: number,
    private readonly process: ArrivalProcess,
    seed: number,
  ) {
    this.random = Random.fromSplitMix(seed ^ 0x5bd1e995);
  }

  /** The next arrival: its global index and its time in ms from the start. */
  next(): { index: number; at: number } {
    const index = this.index++;
    if (this.process === 'uniform') return { index, at: (index * 1000) / this.rate };
    const at = this.time;
    this.time += (-Math.log(1 - this.random.next()) * 1000) / this.rate;
    return { index, at };
  }
}

/** Whether the partition `share` (one of `shares`) owns the item with global index `index`. */
export function owns(index: number, share: number, shares: number): boolean {
  return index % shares === share;
}
