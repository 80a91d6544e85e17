/**
 * What the dashboard reads from MongoDB: the tick log and investigations (RolloutStore) and the
 * traffic generator's probe_results, turned into per-action, per-target series the page can draw
 * (latency percentiles decoded from the HDR histograms here: the browser gets plain numbers).
 */
import type { Collection, Db } from 'mongodb';
import { PROBE_RESULTS_COLLECTION, type ProbeResultDocument } from '../loadgen/prober';
import { decodeHistogram, type ActionStats } from '../loadgen/stats';
import { RolloutStore, TICKS_COLLECTION } from '../client/rollout-store';
import type { Investigation, TickRecord, VerdictDigest } from '../rollout/types';

/** One (tick, action, target) point: latency percentiles of successful requests and the error rate. */
export interface ProbePoint {
  tick: number;
  /** End of the probe window, ms since epoch. */
  at: number;
  action: string;
  target: string;
  requests: number;
  errors: number;
  errorRate: number | null;
  p50Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
}

type ProbeStats = Pick<ActionStats, 'target' | 'action' | 'latencyHistogram' | 'successes' | 'errors'>;
type ProbeWindow = Pick<ProbeResultDocument, 'rolloutId' | 'tick' | 'endedAt'> & { stats: ProbeStats[] };

const POINT_CACHE_LIMIT = 20_000;

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

export function probePoints(window: ProbeWindow): ProbePoint[] {
  return window.stats.map((stats) => {
    const requests = stats.successes + stats.errors;
    const point: ProbePoint = {
      tick: window.tick,
      at: window.endedAt,
      action: stats.action,
      target: stats.target,
      requests,
      errors: stats.errors,
      errorRate: requests > 0 ? stats.errors / requests : null,
      p50Ms: null,
      p90Ms: null,
      p99Ms: null,
    };
    if (stats.successes > 0 && stats.latencyHistogram) {
      const histogram = decodeHistogram(stats.latencyHistogram);
      try {
        point.p50Ms = round(histogram.getValueAtPercentile(50) / 1000);
        point.p90Ms = round(histogram.getValueAtPercentile(90) / 1000);
        point.p99Ms = round(histogram.getValueAtPercentile(99) / 1000);
      } finally {
        histogram.destroy();
      }
    }
    return point;
  });
}

export function verdictDigest(record: Pick<TickRecord, 'tick' | 'verdict'>): VerdictDigest {
  const { verdict } = record;
  return {
    tick: record.tick,
    status: verdict.status,
    notes:
      verdict.status === 'anomalous'
        ? verdict.anomalies.map((anomaly) => anomaly.summary)
        : verdict.status === 'inconclusive'
          ? verdict.reasons
          : [],
  };
}

export class RolloutReadModel {
  private readonly store: RolloutStore;
  private readonly ticksCollection: Collection<TickRecord>;
  private readonly probes: Collection<ProbeWindow>;
  /** Decoding histograms costs; a finished window's points do not change (keyed with its end). */
  private readonly pointCache = new Map<string, ProbePoint[]>();

  constructor(db: Db) {
    this.store = new RolloutStore(db);
    this.ticksCollection = db.collection<TickRecord>(TICKS_COLLECTION);
    this.probes = db.collection<ProbeWindow>(PROBE_RESULTS_COLLECTION);
  }

  ticks(rolloutId: string, options: { afterTick: number; limit: number }): Promise<TickRecord[]> {
    return this.store.listTicks(rolloutId, options);
  }

  investigations(rolloutId: string, options: { afterTick: number; limit: number }): Promise<Investigation[]> {
    return this.store.listInvestigations(rolloutId, options);
  }

  async lastVerdict(rolloutId: string): Promise<VerdictDigest | null> {
    const [last] = await this.ticksCollection
      .find({ rolloutId }, { projection: { tick: 1, verdict: 1 } })
      .sort({ tick: -1 })
      .limit(1)
      .toArray();
    return last ? verdictDigest(last) : null;
  }

  async probePoints(rolloutId: string, options: { afterTick: number; limit: number }): Promise<ProbePoint[]> {
    const windows = await this.probes
      .find(
        { rolloutId, tick: { $gt: options.afterTick } },
        {
          projection: {
            rolloutId: 1,
            tick: 1,
            endedAt: 1,
            'stats.target': 1,
            'stats.action': 1,
            'stats.latencyHistogram': 1,
            'stats.successes': 1,
            'stats.errors': 1,
          },
        },
      )
      .sort({ tick: 1 })
      .limit(options.limit)
      .toArray();
    return windows.flatMap((window) => {
      const key = `${window.rolloutId}#${window.tick}#${window.endedAt}`;
      let points = this.pointCache.get(key);
      if (!points) {
        points = probePoints(window);
        if (this.pointCache.size >= POINT_CACHE_LIMIT) this.pointCache.clear();
        this.pointCache.set(key, points);
      }
      return points;
    });
  }
}
