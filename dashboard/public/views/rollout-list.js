// @ts-check
// `/`: every rollout, newest first, or only the running ones.
/** @import { RolloutSummary } from '../api-types.js' */
/** @import { View } from '../router.js' */
import { listRollouts } from '../api.js';
import { append, badge, barFill, clear, h, navLink } from '../dom.js';
import { ago, clock, pct } from '../format.js';
import { poll } from '../poll.js';
import { navigate } from '../router.js';

const FILTER_KEY = 'canary.filter';

/**
 * @param {HTMLElement} main
 * @returns {View}
 */
export function listView(main) {
  let filter = sessionStorage.getItem(FILTER_KEY) || 'all';
  /** @type {Record<string, HTMLButtonElement>} */
  const buttons = {};
  const segmented = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Which rollouts' });
  for (const [value, label] of /** @type {const} */ ([
    ['running', 'Running'],
    ['all', 'All'],
  ])) {
    const button = h(
      'button',
      {
        type: 'button',
        class: value === filter ? 'selected' : '',
        on: {
          click: () => {
            filter = value;
            sessionStorage.setItem(FILTER_KEY, value);
            for (const [key, button] of Object.entries(buttons))
              button.className = key === filter ? 'selected' : '';
            void refresh();
          },
        },
      },
      label,
    );
    buttons[value] = button;
    segmented.append(button);
  }
  const count = h('span', { class: 'muted' });
  const body = h('tbody');
  const table = h(
    'table',
    { class: 'stack', id: 'rollouts' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'Service'),
        h('th', {}, 'Version'),
        h('th', {}, 'Phase'),
        h('th', {}, 'Share'),
        h('th', { class: 'num' }, 'Tick'),
        h('th', {}, 'Started'),
        h('th', {}, 'Last verdict'),
        h('th', { class: 'num' }, 'Anomalies'),
      ),
    ),
    body,
  );
  append(
    main,
    h('div', { class: 'toolbar' }, h('h1', {}, 'Rollouts'), h('span', { class: 'spacer' }), count, segmented),
    h('section', { class: 'card' }, h('div', { class: 'table-scroll' }, table)),
  );

  const refresh = async () => {
    const { rollouts } = await listRollouts(filter);
    count.textContent = `${rollouts.length} ${filter === 'running' ? 'running' : 'shown'}`;
    clear(body);
    if (rollouts.length === 0)
      body.append(h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No rollouts yet.')));
    for (const rollout of rollouts) body.append(listRow(rollout));
  };
  return { stop: poll(refresh) };
}

/** @param {RolloutSummary} rollout */
function listRow(rollout) {
  const href = `/rollouts/${encodeURIComponent(rollout.rolloutId)}`;
  const verdict = rollout.lastVerdict;
  return h(
    'tr',
    {
      class: 'clickable',
      'data-rollout': rollout.rolloutId,
      on: {
        click: (event) => {
          if (event.target instanceof Element && event.target.closest('a')) return;
          navigate(href);
        },
      },
    },
    h('td', { 'data-label': 'Service' }, navLink(href, rollout.service || rollout.rolloutId)),
    h('td', { 'data-label': 'Version' }, rollout.version),
    h(
      'td',
      { 'data-label': 'Phase' },
      badge(rollout.phase),
      rollout.pausedReason ? h('div', { class: 'note' }, rollout.pausedReason) : null,
    ),
    h(
      'td',
      { 'data-label': 'Share' },
      h('span', { class: 'share-bar' }, barFill(rollout.share || 0)),
      pct(rollout.share),
    ),
    h('td', { class: 'num', 'data-label': 'Tick' }, rollout.tick === null ? '–' : rollout.tick),
    h('td', { 'data-label': 'Started', title: clock(rollout.startedAt) }, ago(rollout.startedAt)),
    h(
      'td',
      { 'data-label': 'Last verdict' },
      verdict
        ? [
            badge(verdict.status),
            verdict.notes.length ? h('div', { class: 'note' }, verdict.notes.join('; ')) : null,
          ]
        : '–',
      rollout.statusError ? h('div', { class: 'note' }, `status unavailable: ${rollout.statusError}`) : null,
    ),
    h(
      'td',
      { class: 'num', 'data-label': 'Anomalies' },
      rollout.anomalyCount === null ? '–' : rollout.anomalyCount,
    ),
  );
}
