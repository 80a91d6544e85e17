// @ts-check
// The head of a rollout's page: title, facts, notices, links and the controls.
/** @import { RolloutDetail } from '../api-types.js' */
/** @import { Child } from '../dom.js' */
import { badge, clear, h } from '../dom.js';
import { ago, clock, pct } from '../format.js';

/**
 * @param {HTMLElement} section
 * @param {RolloutDetail} detail
 * @param {HTMLElement} controls the buttons and their status line
 */
export function renderSummary(section, detail, controls) {
  const { summary, status, links } = detail;
  /** @type {[string, Child][]} */
  const facts = [
    ['Phase', badge(summary.phase)],
    ['Canary share', h('span', { class: 'value big', id: 'share-value' }, pct(summary.share))],
    ['Applied by router', status && status.appliedShare !== null ? pct(status.appliedShare) : '–'],
    ['Tick', summary.tick === null ? '–' : String(summary.tick)],
    ['Started', h('span', { title: clock(summary.startedAt) }, ago(summary.startedAt))],
    ['Next tick', status && status.nextTickAt ? ago(status.nextTickAt) : '–'],
    ['Anomalies', summary.anomalyCount === null ? '–' : String(summary.anomalyCount)],
    ['Last verdict', summary.lastVerdict ? badge(summary.lastVerdict.status) : '–'],
  ];
  if (summary.closedAt)
    facts.push(['Ended', h('span', { title: clock(summary.closedAt) }, ago(summary.closedAt))]);
  clear(section).append(
    h(
      'div',
      { class: 'summary' },
      h(
        'div',
        {},
        h('h1', { id: 'rollout-title' }, `${summary.service} ${summary.version}`),
        h('div', { class: 'muted' }, summary.rolloutId),
        summary.pausedReason
          ? h('p', { class: 'notice', id: 'paused-reason' }, `Paused: ${summary.pausedReason}`)
          : null,
        summary.statusError
          ? h('p', { class: 'notice' }, `Live status unavailable: ${summary.statusError}`)
          : null,
        h(
          'div',
          { class: 'facts' },
          facts.map(([label, value]) =>
            h(
              'div',
              { class: 'fact' },
              h('span', { class: 'label' }, label),
              value instanceof Element && value.classList.contains('value')
                ? value
                : h('span', { class: 'value' }, value),
            ),
          ),
        ),
        h(
          'div',
          { class: 'links' },
          links.temporalUi
            ? h(
                'a',
                { href: links.temporalUi, target: '_blank', rel: 'noopener noreferrer', id: 'temporal-link' },
                'Workflow in Temporal UI ↗',
              )
            : null,
          h(
            'span',
            { class: 'muted' },
            `run ${detail.runId.slice(0, 8)} · ${detail.historyLength} history events`,
          ),
        ),
      ),
      controls,
    ),
  );
}
