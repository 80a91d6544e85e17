/**
 * Prometheus metrics of a worker, measured by a Temporal activity interceptor: the workflow is
 * untouched and every activity (local or not) is seen with its input and result. Counters are
 * additive across workers, so `sum by (...)` over all worker instances is the fleet's figure.
 * A retried attempt that had already succeeded once (lost completion) can be counted twice.
 *
 * The authoritative per-rollout gauges (rollouts by phase, canary share) come from the API,
 * which asks each rollout's workflow; a worker only sees the rollouts it happens to execute.
 */
import type { Context as ActivityContext } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { DeliveryReport } from '../alerts/dispatcher';
import type { NotifyInput } from '../activities';
import type { ProbeSummary, TickRecord } from '../rollout/types';

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900];
const TERMINAL = ['promoted', 'rolled_back', 'aborted'];

function errorType(error: unknown): string {
  if (error instanceof ApplicationFailure) return error.type ?? 'ApplicationFailure';
  if (error instanceof Error) return error.name;
  return 'unknown';
}

export class WorkerMetrics {
  readonly ticks: Counter<'phase' | 'verdict' | 'action'>;
  readonly anomalies: Counter<'action' | 'metric'>;
  readonly verdictDuration: Histogram<'verdict'>;
  readonly tickLateness: Histogram;
  readonly activityDuration: Histogram<'activity' | 'outcome'>;
  readonly activityFailures: Counter<'activity' | 'error_type'>;
  readonly probeRequests: Counter<'target'>;
  readonly probeErrors: Counter<'target'>;
  readonly rolloutsFinished: Counter<'outcome'>;
  readonly alertDeliveries: Counter<'sink_kind' | 'event' | 'outcome'>;

  constructor(readonly registry = new Registry()) {
    collectDefaultMetrics({ register: registry });
    const registers = [registry];
    this.ticks = new Counter({
      name: 'canary_ticks_total',
      help: 'Rollout ticks recorded, by phase after the tick, verdict and policy action.',
      labelNames: ['phase', 'verdict', 'action'],
      registers,
    });
    this.anomalies = new Counter({
      name: 'canary_anomalies_total',
      help: 'Anomalies in recorded verdicts, by user action and metric ("*" for whole-service metrics).',
      labelNames: ['action', 'metric'],
      registers,
    });
    this.verdictDuration = new Histogram({
      name: 'canary_verdict_duration_seconds',
      help: 'Time from the start of a tick to its recorded verdict (probe, collection, analysis, routing), by verdict.',
      labelNames: ['verdict'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.tickLateness = new Histogram({
      name: 'canary_tick_lateness_seconds',
      help: 'How late a tick started after it was due.',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.activityDuration = new Histogram({
      name: 'canary_activity_duration_seconds',
      help: 'Activity attempt duration, by activity and outcome (completed, failed, cancelled).',
      labelNames: ['activity', 'outcome'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.activityFailures = new Counter({
      name: 'canary_activity_failures_total',
      help: 'Failed activity attempts, by activity and error type (Temporal retries most of them).',
      labelNames: ['activity', 'error_type'],
      registers,
    });
    this.probeRequests = new Counter({
      name: 'canary_probe_requests_total',
      help: 'Requests the probes sent, by target (baseline, canary).',
      labelNames: ['target'],
      registers,
    });
    this.probeErrors = new Counter({
      name: 'canary_probe_errors_total',
      help: 'Probe requests that failed, by target (baseline, canary).',
      labelNames: ['target'],
      registers,
    });
    this.rolloutsFinished = new Counter({
      name: 'canary_rollouts_finished_total',
      help: 'Rollouts that ended, by outcome (promoted, rolled_back, aborted).',
      labelNames: ['outcome'],
      registers,
    });
    this.alertDeliveries = new Counter({
      name: 'canary_alert_deliveries_total',
      help: 'Alert deliveries per sink, by sink kind, event kind and outcome (delivered, duplicate, rejected, failed, busy).',
      labelNames: ['sink_kind', 'event', 'outcome'],
      registers,
    });
  }

  /** For AlertDispatcher's `onDelivery`. */
  readonly observeDelivery = (report: DeliveryReport): void => {
    this.alertDeliveries.inc({
      sink_kind: report.sinkKind,
      event: report.eventKind,
      outcome: report.outcome,
    });
  };

  /** Install with `interceptors: { activity: [metrics.activityInterceptor()] }`. */
  activityInterceptor(): ActivityInterceptorsFactory {
    return (ctx: ActivityContext) => ({
      inbound: {
        execute: async (input, next) => {
          const activity = ctx.info.activityType;
          const started = process.hrtime.bigint();
          const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
          try {
            const result = await next(input);
            this.activityDuration.observe({ activity, outcome: 'completed' }, seconds());
            this.observeResult(activity, input.args[0], result);
            return result;
          } catch (error) {
            const cancelled = ctx.cancellationSignal.aborted;
            this.activityDuration.observe(
              { activity, outcome: cancelled ? 'cancelled' : 'failed' },
              seconds(),
            );
            if (!cancelled) this.activityFailures.inc({ activity, error_type: errorType(error) });
            throw error;
          }
        },
      },
    });
  }

  private observeResult(activity: string, input: unknown, result: unknown): void {
    if (activity === 'recordTick') this.observeTick(input as TickRecord);
    else if (activity === 'probe') {
      const summary = result as ProbeSummary;
      for (const target of ['baseline', 'canary'] as const) {
        this.probeRequests.inc({ target }, summary.requests[target]);
        this.probeErrors.inc({ target }, summary.errors[target]);
      }
    } else if (activity === 'notify') {
      const { event } = input as NotifyInput;
      if (TERMINAL.includes(event.kind)) this.rolloutsFinished.inc({ outcome: event.kind });
    }
  }

  private observeTick(record: TickRecord): void {
    const verdict = record.verdict.status;
    this.ticks.inc({ phase: record.phase, verdict, action: record.action });
    for (const anomaly of record.verdict.anomalies)
      this.anomalies.inc({ action: anomaly.action ?? '*', metric: anomaly.metric });
    this.verdictDuration.observe({ verdict }, Math.max(0, record.finishedAt - record.startedAt) / 1000);
    this.tickLateness.observe(Math.max(0, record.startedAt - record.scheduledAt) / 1000);
  }
}
