/**
 * One rollout in full: its row, live status, result, and what its current run started with,
 * read from the run's history (the start event's input, or the state carried over by
 * continue-as-new, and the profile sample) rather than from workflow internals.
 */
import type { Client } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import type { RolloutSpec } from '../rollout/spec';
import type { ProfileSelection, RolloutInput, RolloutResult, RolloutStatus } from '../rollout/types';
import type { RolloutSummary } from './rollout-list';

/** What is shown of the spec: no sink options (a webhook URL may carry a token). */
export interface SpecOverview {
  targets: RolloutSpec['targets'];
  router: string;
  probe: RolloutSpec['probe'];
  intervalMs: number;
  analysis: { method: string; alpha: number };
  alertSinks: string[];
  onAnomaly: RolloutSpec['onAnomaly'];
  profiles: { criteria: RolloutSpec['profiles']['criteria']; sampleSize: number };
}

export interface RolloutDetail {
  summary: RolloutSummary;
  /** The live status (status query); null when the workflow could not answer. */
  status: RolloutStatus | null;
  result: RolloutResult | null;
  spec: SpecOverview | null;
  /** The sample of simulated users the rollout probes with, by stratum. */
  profiles: { count: number; mix: Record<string, number> } | null;
  runId: string;
  historyLength: number;
}

export interface RunStart {
  input: RolloutInput | null;
  profiles: ProfileSelection | null;
}

export function specOverview(spec: RolloutSpec): SpecOverview {
  return {
    targets: spec.targets,
    router: spec.router.kind,
    probe: spec.probe,
    intervalMs: spec.intervalMs,
    analysis: { method: spec.analysis.method, alpha: spec.analysis.alpha },
    alertSinks: spec.alerts.sinks.map((sink) => sink.kind),
    onAnomaly: spec.onAnomaly,
    profiles: { criteria: spec.profiles.criteria, sampleSize: spec.profiles.sampleSize },
  };
}

/**
 * The input of a run and the profile sample: carried over after continue-as-new, else the
 * result of the first run's lookupProfiles local activity (its marker, near the top).
 */
export async function readRunStart(
  temporal: Client,
  run: { workflowId: string; runId: string },
  timeoutMs: number,
): Promise<RunStart> {
  const response = await temporal.withDeadline(Date.now() + timeoutMs, () =>
    temporal.workflowService.getWorkflowExecutionHistory({
      namespace: temporal.options.namespace,
      execution: { workflowId: run.workflowId, runId: run.runId },
      maximumPageSize: 40,
    }),
  );
  const events = response.history?.events ?? [];
  const started = events[0]?.workflowExecutionStartedEventAttributes;
  const input = started?.input?.payloads?.[0]
    ? await decode<RolloutInput>(temporal, started.input.payloads[0])
    : null;
  if (input?.carryOver) return { input, profiles: input.carryOver.profiles };
  for (const event of events) {
    const details = event.markerRecordedEventAttributes?.details;
    if (!details) continue;
    const data = details.data?.payloads?.[0];
    const result = details.result?.payloads?.[0];
    if (!data || !result) continue;
    const marker = await decode<{ activity_type?: string }>(temporal, data);
    if (marker?.activity_type === 'lookupProfiles')
      return { input, profiles: await decode<ProfileSelection>(temporal, result) };
  }
  return { input, profiles: null };
}

async function decode<T>(temporal: Client, payload: Payload): Promise<T | null> {
  const converter = temporal.options.loadedDataConverter;
  let payloads = [payload];
  for (const codec of [...converter.payloadCodecs].reverse()) payloads = await codec.decode(payloads);
  return converter.payloadConverter.fromPayload<T>(payloads[0] as Payload);
}
