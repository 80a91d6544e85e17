import type { Db } from 'mongodb';
import * as hdr from 'hdr-histogram-js';
import type { JsHistogram } from 'hdr-histogram-js';
import type { Sample } from '../analysis/samples';
import { NoValuesError, type MetricSource, type SourceRequest, type SourceResult } from './source';
import { PROBE_RESULTS_COLLECTION, type ProbeResultDocument } from './probe-results';

/**
 * Probe results from the traffic generator: the primary signal, there even while the canary gets
 * no real traffic. Per action and target it yields `latency_ms` (the HDR histogram, µs -> ms),
 * `error` (errors among requests) and `status_5xx` (5xx among responses with a status).
 */
export class ProbeResultsSource implements MetricSource {
  readonly name = 'probe-results';

  constructor(private readonly db: Db) {}

  async collect(request: SourceRequest): Promise<SourceResult> {
    const document = await this.db
      .collection<ProbeResultDocument>(PROBE_RESULTS_COLLECTION)
      .findOne({ rolloutId: request.rolloutId, tick: request.tick });
    if (!document || document.stats.length === 0)
      throw new NoValuesError(`no probe results for ${request.rolloutId} tick ${request.tick}`);
    return { samples: probeResultSamples(document) };
  }
}

export function probeResultSamples(document: ProbeResultDocument): Sample[] {
  const t = document.tick;
  const samples: Sample[] = [];
  for (const stats of document.stats) {
    const base = { t, target: stats.target, action: stats.action };
    const latency = decodeLatencies(stats.latencyHistogram);
    if (latency.values.length > 0) samples.push({ ...base, metric: 'latency_ms', histogram: latency });
    const requests = stats.successes + stats.errors;
    if (requests > 0)
      samples.push({ ...base, metric: 'error', counts: { events: stats.errors, trials: requests } });
    let responses = 0;
    let serverErrors = 0;
    for (const [code, count] of Object.entries(stats.statusCounts)) {
      responses += count;
      if (/^5\d\d$/.test(code)) serverErrors += count;
    }
    if (responses > 0)
      samples.push({ ...base, metric: 'status_5xx', counts: { events: serverErrors, trials: responses } });
  }
  return samples;
}

/** Recorded values (µs) of an encoded HDR histogram, as milliseconds with their counts. */
export function decodeLatencies(encoded: string): { values: number[]; counts: number[] } {
  const histogram = hdr.decodeFromCompressedBase64(encoded, 32, false) as unknown as JsHistogram;
  const values: number[] = [];
  const counts: number[] = [];
  const iterator = histogram.recordedValuesIterator;
  iterator.reset();
  while (iterator.hasNext()) {
    const step = iterator.next();
    if (step.countAtValueIteratedTo <= 0) continue;
    // The bucket's median equivalent value: HDR buckets are narrower than ours (3 digits).
    values.push(histogram.medianEquivalentValue(step.valueIteratedTo) / 1000);
    counts.push(step.countAtValueIteratedTo);
  }
  histogram.destroy();
  return { values, counts };
}
