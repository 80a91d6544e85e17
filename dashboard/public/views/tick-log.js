// @ts-check
// The tick log: what the workflow decided at each tick, newest first (the last 500).
/** @import { TickRecord } from '../api-types.js' */
import { badge, clear, h } from '../dom.js';
import { pct, time } from '../format.js';

const COLUMNS = [
  'Tick',
  'Time',
  'Phase',
  'Verdict',
  'Action',
  'Share',
  'Requests (b / c)',
  'Errors (b / c)',
  'Reason',
];

/**
 * @param {HTMLElement} section
 * @param {TickRecord[]} ticks oldest first
 */
export function renderTickLog(section, ticks) {
  const body = h('tbody');
  for (const tick of [...ticks].reverse().slice(0, 500)) body.append(tickRow(tick));
  const table = h(
    'table',
    { class: 'stack', id: 'tick-log' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        COLUMNS.map((label) => h('th', {}, label)),
      ),
    ),
    body,
  );
  clear(section).append(
    h('h2', {}, `Tick log (${ticks.length})`),
    h('div', { class: 'table-scroll' }, table),
  );
}

/** @param {TickRecord} tick */
function tickRow(tick) {
  const probe = tick.probe;
  return h(
    'tr',
    { 'data-tick': tick.tick },
    h('td', { class: 'num', 'data-label': 'Tick' }, tick.tick),
    h('td', { 'data-label': 'Time' }, time(tick.finishedAt)),
    h('td', { 'data-label': 'Phase' }, badge(tick.phase)),
    h('td', { 'data-label': 'Verdict' }, badge(tick.verdict.status)),
    h('td', { 'data-label': 'Action' }, tick.action),
    h(
      'td',
      { class: 'num', 'data-label': 'Share' },
      tick.shareBefore === tick.shareAfter
        ? pct(tick.shareAfter)
        : `${pct(tick.shareBefore)} → ${pct(tick.shareAfter)}`,
    ),
    h(
      'td',
      { 'data-label': 'Requests' },
      probe ? `${probe.requests.baseline} / ${probe.requests.canary}` : '–',
    ),
    h('td', { 'data-label': 'Errors' }, probe ? `${probe.errors.baseline} / ${probe.errors.canary}` : '–'),
    h(
      'td',
      { 'data-label': 'Reason', class: 'note' },
      tick.reason,
      tick.verdict.status === 'inconclusive' && tick.verdict.reasons.length
        ? ` — ${tick.verdict.reasons.join('; ')}`
        : '',
    ),
  );
}
