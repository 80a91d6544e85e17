/**
 * The words of an alert, shared by the sinks that show text to people. Pure: no I/O.
 */
import { anomalyKey, type Anomaly } from '../rollout/verdict';
import type { AlertEvent } from '../rollout/types';
import type { AlertNotification, OpenCondition } from './alert-sink';

const TITLES: Record<AlertEvent['kind'], string> = {
  anomaly: 'anomaly detected',
  resolved: 'recovered',
  paused: 'paused',
  promoted: 'promoted',
  rolled_back: 'rolled back',
  aborted: 'aborted',
  routing_failed: 'routing failed',
  abandoned: 'ended with the canary in traffic',
  drift: 'routing drifted',
};

export function eventTitle(kind: AlertEvent['kind']): string {
  return TITLES[kind];
}

/** A relative effect as people read it: 0.38 -> `+38 %`, -0.052 -> `-5.2 %`. */
export function formatPercent(ratio: number): string {
  if (!Number.isFinite(ratio)) return ratio > 0 ? '+inf' : ratio < 0 ? '-inf' : 'n/a';
  const percent = ratio * 100;
  const digits = Math.abs(percent) < 10 ? 1 : 0;
  const text = percent.toFixed(digits).replace(/\.0$/, '');
  return `${percent > 0 ? '+' : ''}${text === '-0' ? '0' : text} %`;
}

/** `+38 % [+22 %, +55 %]`: the effect with its confidence interval. */
export function formatEffect(anomaly: Pick<Anomaly, 'effect' | 'interval'>): string {
  return `${formatPercent(anomaly.effect)} [${formatPercent(anomaly.interval[0])}, ${formatPercent(anomaly.interval[1])}]`;
}

export function formatShare(share: number): string {
  return `${Math.round(share * 100) / 100} %`;
}

/** `checkout · latency_ms +38 % [+22 %, +55 %] (anytime p=0.003)`. */
export function anomalyLine(anomaly: Anomaly): string {
  const where = `${anomaly.action ?? 'all actions'} · ${anomaly.metric}`;
  const critical = anomaly.critical ? ' — critical' : '';
  return `${where} ${formatEffect(anomaly)} (${anomaly.statistic})${critical}`;
}

export function conditionLine(condition: OpenCondition): string {
  return condition.kind === 'anomaly'
    ? `${condition.anomaly.action ?? 'all actions'} · ${condition.anomaly.metric}`
    : `${eventTitle(condition.kind)}: ${condition.summary}`;
}

export function conditionKey(condition: OpenCondition): string {
  return condition.kind === 'anomaly' ? `anomaly/${anomalyKey(condition.anomaly)}` : condition.kind;
}

/** `shop v2.1 anomaly detected at tick 4: share 22 % -> 17 %`. */
export function headline(event: AlertEvent): string {
  const share =
    event.shareBefore === event.shareAfter
      ? `share ${formatShare(event.shareAfter)}`
      : `share ${formatShare(event.shareBefore)} → ${formatShare(event.shareAfter)}`;
  return `${event.service} ${event.version} ${eventTitle(event.kind)} at tick ${event.tick}: ${share}`;
}

/** Plain text for logs, webhooks and chat fallbacks; one line per fact. */
export function plainText(notification: AlertNotification): string {
  const { event, links, ends } = notification;
  const lines = [`[${event.severity}] ${headline(event)}`, event.summary];
  for (const anomaly of event.anomalies) lines.push(`• ${anomalyLine(anomaly)}`);
  if (ends.length > 0) lines.push(`ends: ${ends.map(conditionLine).join('; ')}`);
  lines.push(`rollout ${event.rolloutId}`);
  if (links.dashboard) lines.push(`dashboard: ${links.dashboard}`);
  if (links.temporalUi) lines.push(`workflow: ${links.temporalUi}`);
  return lines.join('\n');
}
