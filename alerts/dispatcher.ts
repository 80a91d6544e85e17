/**
 * The AlertDispatcher port: delivers one alert event to every sink of the rollout (plus the
 * structured log), each at most once per event key as far as the delivery record can tell
 * (see delivery-store.ts for the window), and ends what a sink was told is going on when the
 * rollout recovers or ends.
 *
 * A failing sink is retried with backoff inside `retry.budgetMs`, well within the notify
 * activity's 30 s start-to-close timeout; if it still fails the activity fails and Temporal
 * retries it later (notify is fired without being awaited per tick, so the rollout never waits).
 * Sinks that already delivered are skipped by the retry. A sink that refuses for good (4xx, a
 * missing secret) is recorded as rejected and logged: retrying cannot fix it.
 *
 * The delivery record is what deduplicates, not what delivers: when the store does not answer
 * within `storeTimeoutMs` (MongoDB down), each sink is sent the alert without a record, so an
 * outage does not silence the alerts it causes. Delivery is then at least once: a retried notify
 * sends again, and the alert carries no `ends` (the conditions it closes are read from the store).
 */
import type { Db } from 'mongodb';
import { createLogger, type Logger } from '../platform/logger';
import { rolloutLinks } from '../rollout/links';
import type { AdapterSpec } from '../rollout/spec';
import type { AlertEvent } from '../rollout/types';
import { ValidationError } from '../core/validation';
import {
  PermanentDeliveryError,
  RetryableDeliveryError,
  type AlertNotification,
  type AlertSink,
} from './alert-sink';
import { AlertDeliveryStore } from './delivery-store';
import { conditionsFor } from './open-conditions';
import { createAlertSinks } from './sinks';
import { messageOf } from '../core/errors';

export interface RetryBudget {
  /** Time one dispatch may spend retrying one sink. */
  budgetMs: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryBudget = { budgetMs: 20_000, initialDelayMs: 500, maxDelayMs: 5000 };

export type DeliveryOutcome = 'delivered' | 'duplicate' | 'rejected' | 'failed' | 'busy';

export interface DeliveryReport {
  sinkKind: string;
  sinkId: string;
  eventKind: AlertEvent['kind'];
  outcome: DeliveryOutcome;
  /** Sends tried in this dispatch (0 when skipped). */
  tries: number;
  durationMs: number;
}

export interface AlertDispatcherOptions {
  db: Db;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  /** Temporal namespace, for the workflow link. */
  namespace?: string;
  retry?: Partial<RetryBudget>;
  /** How long a claim keeps other attempts off a delivery; longer than one sink's whole budget. */
  leaseMs?: number;
  /** Told about every delivery, e.g. to count it in Prometheus metrics. */
  onDelivery?: (report: DeliveryReport) => void;
  /** How long a read or write of the delivery record may take before sinks are sent without it. */
  storeTimeoutMs?: number;
  /** Injected in tests to shorten waits. */
  sleep?: (ms: number) => Promise<void>;
}

export const DEFAULT_STORE_TIMEOUT_MS = 3000;

/** Some sinks could not be reached; the activity fails and Temporal retries the rest later. */
/** The port the notify activity calls. */
export interface AlertDispatcherPort {
  /** Delivers to every sink in `sinks`; deduplicates on `event.key`. */
  dispatch(event: AlertEvent, sinks: AdapterSpec[]): Promise<void>;
}

export class AlertDeliveryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AlertDeliveryError';
  }
}

/** Exponential backoff with full jitter, at least what the destination asked for (Retry-After). */
export function retryDelay(
  retry: RetryBudget,
  failedTries: number,
  random: number,
  retryAfterMs = 0,
): number {
  const ceiling = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (failedTries - 1));
  return Math.max(retryAfterMs, Math.round(ceiling / 2 + (ceiling / 2) * random));
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The delivery store did not answer in time or failed: deliver without deduplication. */
class DeliveryStoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`alert delivery store unavailable: ${messageOf(cause)}`);
    this.name = 'DeliveryStoreUnavailableError';
  }
}

export class AlertDispatcher implements AlertDispatcherPort {
  readonly store: AlertDeliveryStore;
  private readonly logger: Logger;
  private readonly retry: RetryBudget;
  private readonly leaseMs: number;
  private readonly storeTimeoutMs: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: AlertDispatcherOptions) {
    this.store = new AlertDeliveryStore(options.db);
    this.logger = options.logger ?? createLogger('alerts');
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.leaseMs = options.leaseMs ?? this.retry.budgetMs + 30_000;
    this.storeTimeoutMs = options.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
    this.sleep = options.sleep ?? defaultSleep;
  }

  async dispatch(event: AlertEvent, sinkSpecs: AdapterSpec[]): Promise<void> {
    // A bad sink config is a ValidationError: the activity fails at once, without retries.
    const sinks = createAlertSinks(sinkSpecs, { logger: this.logger, env: this.options.env ?? process.env });
    const links = rolloutLinks(event.links, event.rolloutId, this.options.namespace ?? 'default');
    const results = await Promise.all(sinks.map((sink) => this.deliver(event, links, sink)));
    const failed = results.filter((result): result is string => result !== null);
    if (failed.length > 0)
      throw new AlertDeliveryError(
        `alert ${event.key} not delivered to ${failed.length} sink(s): ${failed.join('; ')}`,
      );
  }

  /** Returns null when the sink is done with this event (delivered, duplicate or refused), else why not. */
  private async deliver(
    event: AlertEvent,
    links: AlertNotification['links'],
    sink: AlertSink,
  ): Promise<string | null> {
    const started = Date.now();
    const report = (outcome: DeliveryOutcome, tries: number) =>
      this.options.onDelivery?.({
        sinkKind: sink.kind,
        sinkId: sink.id,
        eventKind: event.kind,
        outcome,
        tries,
        durationMs: Date.now() - started,
      });
    let claim: Awaited<ReturnType<AlertDeliveryStore['claim']>> | undefined;
    let history: Awaited<ReturnType<AlertDeliveryStore['sentTo']>> = [];
    try {
      claim = await this.fromStore(() => this.store.claim(event, sink, started, this.leaseMs));
      if (claim.outcome === 'claimed')
        history = (await this.fromStore(() => this.store.sentTo(event.rolloutId, sink.id))).filter(
          (sent) => sent.key !== event.key,
        );
    } catch (error) {
      if (!(error instanceof DeliveryStoreUnavailableError)) throw error;
      this.logger.warn(
        { key: event.key, sink: sink.id, sinkKind: sink.kind, error: error.message },
        'delivering the alert without a delivery record (it may arrive twice)',
      );
      claim = undefined;
    }
    if (claim?.outcome === 'done') {
      report('duplicate', 0);
      return null;
    }
    if (claim?.outcome === 'busy') {
      report('busy', 0);
      return `${sink.id}: another attempt is delivering it (lease until ${new Date(claim.leaseUntil).toISOString()})`;
    }
    const recorded = claim !== undefined;
    const notification: AlertNotification = {
      event,
      links,
      ...conditionsFor(history, {
        eventKind: event.kind,
        at: event.at,
        tick: event.tick,
        summary: event.summary,
        anomalies: event.anomalies,
      }),
    };
    let tries = 0;
    try {
      tries = await this.sendWithRetries(sink, notification);
    } catch (error) {
      tries = (error as { tries?: number }).tries ?? tries;
      const permanent = error instanceof PermanentDeliveryError || error instanceof ValidationError;
      if (recorded) await this.record(event, sink, permanent ? 'rejected' : 'failed', messageOf(error));
      if (permanent) {
        this.logger.error(
          { key: event.key, sink: sink.id, sinkKind: sink.kind, error: messageOf(error) },
          'alert refused by the sink; not retried',
        );
        report('rejected', tries);
        return null;
      }
      report('failed', tries);
      return `${sink.id}: ${messageOf(error)}`;
    }
    if (recorded) await this.record(event, sink, 'delivered');
    report('delivered', tries);
    return null;
  }

  /** A store call bounded by `storeTimeoutMs`; any failure of it is the store being unavailable. */
  private async fromStore<T>(call: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const pending = call();
    try {
      return await Promise.race([
        pending,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${this.storeTimeoutMs} ms`)),
            this.storeTimeoutMs,
          );
        }),
      ]);
    } catch (error) {
      pending.catch(() => undefined); // still running after the timeout: its failure is expected
      throw new DeliveryStoreUnavailableError(error);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The outcome is written when the store answers; the alert was sent (or refused) either way. */
  private async record(
    event: AlertEvent,
    sink: AlertSink,
    state: 'delivered' | 'failed' | 'rejected',
    error?: string,
  ): Promise<void> {
    try {
      await this.fromStore(() => this.store.finish(event.key, sink.id, state, Date.now(), error));
    } catch (failure) {
      this.logger.warn(
        { key: event.key, sink: sink.id, state, error: messageOf(failure) },
        'alert delivery outcome not recorded',
      );
    }
  }

  private async sendWithRetries(sink: AlertSink, notification: AlertNotification): Promise<number> {
    const deadline = Date.now() + this.retry.budgetMs;
    const controller = new AbortController();
    for (let tries = 1; ; tries++) {
      try {
        await sink.send(notification, controller.signal);
        return tries;
      } catch (error) {
        const delay =
          error instanceof RetryableDeliveryError
            ? retryDelay(this.retry, tries, Math.random(), error.retryAfterMs)
            : Infinity;
        if (Date.now() + delay > deadline) throw Object.assign(error as Error, { tries });
        this.logger.warn(
          {
            key: notification.event.key,
            sink: sink.id,
            sinkKind: sink.kind,
            tries,
            retryInMs: delay,
            error: messageOf(error),
          },
          'alert delivery failed; retrying',
        );
        await this.sleep(delay);
      }
    }
  }
}
