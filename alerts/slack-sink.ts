/**
 * Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat accept this shape): a `text`
 * fallback and Block Kit blocks. The webhook URL is itself the credential, so it comes from the
 * worker's environment variable named by `urlEnv`, never from the spec.
 */
import type { AdapterSpec } from '../rollout/spec';
import { type FieldReader } from '../core/validation';
import type { AlertNotification, AlertSink } from './alert-sink';
import { anomalyLine, conditionLine, eventTitle, formatShare, plainText } from './alert-text';
import { postJson } from './http-post';
import { checkSinkKeys, readEnvName, readSinkName, readTimeoutMs, secretFromEnv } from './sink-options';

export interface SlackSinkConfig {
  kind: 'slack';
  name?: string;
  urlEnv: string;
  timeoutMs: number;
}

export function readSlackSinkConfig(r: FieldReader, spec: AdapterSpec, field: string): SlackSinkConfig {
  checkSinkKeys(r, spec, ['kind', 'name', 'urlEnv', 'timeout'], field);
  if ('url' in spec)
    r.fail(
      `${field}.url`,
      'is a credential for Slack webhooks: name an environment variable in urlEnv instead',
    );
  const name = readSinkName(r, spec.name, `${field}.name`);
  const urlEnv = readEnvName(r, spec.urlEnv, `${field}.urlEnv`);
  const timeoutMs = readTimeoutMs(r, spec.timeout, `${field}.timeout`);
  return {
    kind: 'slack',
    ...(name ? { name } : {}),
    urlEnv: urlEnv as string,
    timeoutMs: timeoutMs as number,
  };
}

/** Slack's mrkdwn gives &, < and > a meaning: user input (action names, reasons) must not. */
export function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function slackLink(url: string, label: string): string {
  return `<${url.replace(/[<>|]/g, encodeURIComponent)}|${escapeSlack(label)}>`;
}

const ICONS = { info: ':large_blue_circle:', warning: ':warning:', critical: ':rotating_light:' } as const;
const MAX_ANOMALY_BLOCKS = 10;

export function slackMessage(notification: AlertNotification) {
  const { event, links, ends } = notification;
  const share =
    event.shareBefore === event.shareAfter
      ? formatShare(event.shareAfter)
      : `${formatShare(event.shareBefore)} → ${formatShare(event.shareAfter)}`;
  const blocks: unknown[] = [
    {
      type: 'header',
      text: {
        type: 'plain_text',
        text: `${event.service} ${event.version} ${eventTitle(event.kind)}`.slice(0, 150),
      },
    },
    {
      type: 'section',
      text: { type: 'mrkdwn', text: `${ICONS[event.severity]} ${escapeSlack(event.summary)}` },
    },
    {
      type: 'section',
      fields: [
        { type: 'mrkdwn', text: `*Rollout*\n${escapeSlack(event.rolloutId)}` },
        { type: 'mrkdwn', text: `*Canary share*\n${share}` },
        { type: 'mrkdwn', text: `*Tick*\n${event.tick}` },
        { type: 'mrkdwn', text: `*Severity*\n${event.severity}` },
      ],
    },
  ];
  for (const anomaly of event.anomalies.slice(0, MAX_ANOMALY_BLOCKS))
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: `• ${escapeSlack(anomalyLine(anomaly))}` },
    });
  if (event.anomalies.length > MAX_ANOMALY_BLOCKS)
    blocks.push({
      type: 'context',
      elements: [
        { type: 'mrkdwn', text: `and ${event.anomalies.length - MAX_ANOMALY_BLOCKS} more anomalies` },
      ],
    });
  if (ends.length > 0)
    blocks.push({
      type: 'context',
      elements: [{ type: 'mrkdwn', text: escapeSlack(`Ends: ${ends.map(conditionLine).join('; ')}`) }],
    });
  const linkTexts = [
    links.dashboard ? slackLink(links.dashboard, 'Dashboard') : undefined,
    links.temporalUi ? slackLink(links.temporalUi, 'Workflow in Temporal UI') : undefined,
  ].filter((text): text is string => text !== undefined);
  if (linkTexts.length > 0)
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: linkTexts.join('  ·  ') }] });
  return { text: escapeSlack(plainText(notification)), blocks };
}

export class SlackSink implements AlertSink {
  readonly kind = 'slack';

  constructor(
    readonly id: string,
    private readonly config: SlackSinkConfig,
    private readonly env: NodeJS.ProcessEnv,
    private readonly field: string,
  ) {}

  async send(notification: AlertNotification, signal: AbortSignal): Promise<void> {
    const url = secretFromEnv(this.env, this.config.urlEnv, `${this.field}.urlEnv`);
    await postJson({
      url,
      body: JSON.stringify(slackMessage(notification)),
      timeoutMs: this.config.timeoutMs,
      describe: `slack webhook from ${this.config.urlEnv}`,
      signal,
    });
  }
}
