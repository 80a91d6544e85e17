// @ts-check
// The canary's share of real traffic over the rollout, anomalous and inconclusive ticks marked.
/** @import { TickRecord } from '../api-types.js' */
import { shareChart } from '../charts.js';
import { append, h } from '../dom.js';

/** @param {HTMLElement} section */
export function shareHistory(section) {
  const box = h('div', { class: 'chart', id: 'share-chart' });
  append(section, h('h2', {}, 'Canary share of real traffic'), box);
  const chart = shareChart(box);
  return {
    /** @param {TickRecord[]} ticks oldest first */
    render(ticks) {
      /** @type {number[]} */
      const xs = [];
      /** @type {number[]} */
      const share = [];
      /** @type {(number | null)[]} */
      const anomalies = [];
      /** @type {(number | null)[]} */
      const inconclusive = [];
      for (const tick of ticks) {
        xs.push(tick.finishedAt / 1000);
        share.push(tick.shareAfter);
        const status = tick.verdict.status;
        anomalies.push(status === 'anomalous' ? tick.shareBefore : null);
        inconclusive.push(status === 'inconclusive' ? tick.shareAfter : null);
      }
      box.dataset.points = String(xs.length);
      if (xs.length === 0 && !box.querySelector('.empty'))
        box.append(h('div', { class: 'empty' }, 'No ticks recorded yet.'));
      else if (xs.length > 0) {
        const empty = box.querySelector('.empty');
        if (empty) empty.remove();
        chart.update([xs, share, anomalies, inconclusive]);
      }
    },
    destroy: () => chart.destroy(),
  };
}
