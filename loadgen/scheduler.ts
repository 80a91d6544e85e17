/**
 * When things happen on an engine thread: one timer over a heap of due items (steps waiting for
 * their time, closed-model sessions waiting for the start), and the open model's arrivals.
 */
import { performance } from 'node:perf_hooks';
import type { EnginePlan } from './options';
import { ArrivalClock, owns } from './schedule';

/** Something the scheduler fires when due; `dueAt` and `heapIndex` are the heap's bookkeeping. */
export interface ScheduledItem {
  dueAt: number;
  heapIndex: number;
  fire(now: number): void;
}

/** What the arrival source needs of the engine that owns it. */
export interface ArrivalOwner {
  readonly plan: Pick<EnginePlan, 'rate' | 'arrival' | 'seed'>;
  /** This thread's partition of the workload: index `share` of `shares`. */
  readonly share: number;
  readonly shares: number;
  readonly scheduler: Scheduler;
  readonly stopping: boolean;
  /** An arrival due at `dueAt` takes a free slot or is dropped. */
  arrive(index: number, dueAt: number, now: number): void;
}

/** A binary min-heap of runners by due time, behind one timer. */
export class Scheduler {
  private readonly heap: ScheduledItem[] = [];
  private timer: NodeJS.Timeout | null = null;
  private armedFor = Infinity;
  private stopped = false;

  schedule(item: ScheduledItem, dueAt: number): void {
    item.dueAt = dueAt;
    item.heapIndex = this.heap.length;
    this.heap.push(item);
    this.up(item.heapIndex);
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.heap.length = 0;
  }

  private arm(): void {
    if (this.stopped) return;
    const first = this.heap[0];
    if (!first || first.dueAt >= this.armedFor) return;
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = first.dueAt;
    this.timer = setTimeout(() => this.run(), Math.max(0, first.dueAt - performance.now()));
  }

  private run(): void {
    this.timer = null;
    this.armedFor = Infinity;
    const now = performance.now();
    let first = this.heap[0];
    while (first && first.dueAt <= now + 0.5 && !this.stopped) {
      this.pop();
      first.heapIndex = -1;
      first.fire(now);
      first = this.heap[0];
    }
    this.arm();
  }

  private pop(): void {
    const last = this.heap.pop();
    if (this.heap.length > 0 && last) {
      this.heap[0] = last;
      last.heapIndex = 0;
      this.down(0);
    }
  }

  private up(index: number): void {
    const heap = this.heap;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if ((heap[parent] as { dueAt: number }).dueAt <= (heap[index] as { dueAt: number }).dueAt) break;
      this.swap(index, parent);
      index = parent;
    }
  }

  private down(index: number): void {
    const heap = this.heap;
    for (;;) {
      const left = index * 2 + 1;
      const right = left + 1;
      let smallest = index;
      if (
        left < heap.length &&
        (heap[left] as { dueAt: number }).dueAt < (heap[smallest] as { dueAt: number }).dueAt
      )
        smallest = left;
      if (
        right < heap.length &&
        (heap[right] as { dueAt: number }).dueAt < (heap[smallest] as { dueAt: number }).dueAt
      )
        smallest = right;
      if (smallest === index) return;
      this.swap(index, smallest);
      index = smallest;
    }
  }

  private swap(a: number, b: number): void {
    const heap = this.heap;
    const itemA = heap[a] as { heapIndex: number };
    const itemB = heap[b] as { heapIndex: number };
    heap[a] = itemB as (typeof heap)[number];
    heap[b] = itemA as (typeof heap)[number];
    itemA.heapIndex = b;
    itemB.heapIndex = a;
  }
}

/** Open model: turns the seeded arrival clock into sessions on free slots, or drops. */
export class ArrivalSource {
  dueAt = 0;
  heapIndex = -1;
  private readonly clock: ArrivalClock;
  private nextArrival: { index: number; at: number };

  constructor(
    private readonly engine: ArrivalOwner,
    private readonly startAt: number,
    private readonly endAt: number,
  ) {
    const plan = engine.plan;
    this.clock = new ArrivalClock(plan.rate, plan.arrival, plan.seed);
    this.nextArrival = this.advanceToOwned();
  }

  begin(): void {
    this.scheduleNext();
  }

  private advanceToOwned(): { index: number; at: number } {
    for (;;) {
      const arrival = this.clock.next();
      if (owns(arrival.index, this.engine.share, this.engine.shares)) return arrival;
      if (this.startAt + arrival.at > this.endAt) return arrival;
    }
  }

  private scheduleNext(): void {
    const dueAt = this.startAt + this.nextArrival.at;
    if (dueAt >= this.endAt) return;
    this.engine.scheduler.schedule(this, dueAt);
  }

  fire(now: number): void {
    if (this.engine.stopping) return;
    const arrival = this.nextArrival;
    const dueAt = this.startAt + arrival.at;
    this.engine.arrive(arrival.index, dueAt, now);
    this.nextArrival = this.advanceToOwned();
    this.scheduleNext();
  }
}
