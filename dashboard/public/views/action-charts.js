// @ts-check
// Baseline vs canary per user action: latency percentiles and error rate over time, one card
// per action, each flagged with the anomalies found on it.
/** @import { Investigation, ProbePoint } from '../api-types.js' */
/** @import { TimeChart } from '../charts.js' */
import { BASELINE, CANARY, errorChart, latencyChart } from '../charts.js';
import { append, badge, clear, h } from '../dom.js';

/**
 * @typedef {object} ActionCard
 * @property {HTMLElement} element
 * @property {HTMLElement} flag
 * @property {TimeChart} latency
 * @property {TimeChart} errors
 * @property {HTMLElement} latencyBox
 */

/** @param {HTMLElement} section */
export function actionCharts(section) {
  /** @type {Map<string, ActionCard>} */
  const cards = new Map();
  return {
    /**
     * @param {Iterable<ProbePoint>} probePoints
     * @param {Investigation[]} investigations
     */
    render(probePoints, investigations) {
      /** @type {Map<string, ProbePoint[]>} */
      const byAction = new Map();
      for (const point of probePoints) {
        const points = byAction.get(point.action) || [];
        points.push(point);
        byAction.set(point.action, points);
      }
      if (byAction.size === 0) {
        if (!section.querySelector('.empty'))
          append(
            clear(section),
            h(
              'div',
              { class: 'card' },
              h('h2', {}, 'Baseline vs canary per action'),
              h('div', { class: 'empty' }, 'No probe results yet.'),
            ),
          );
        return;
      }
      let grid = section.querySelector('.actions-grid');
      if (!grid) {
        grid = h('div', { class: 'actions-grid' });
        append(clear(section), h('h2', {}, 'Baseline vs canary per action'), grid);
      }
      /** @type {Map<string, number>} */
      const anomalousActions = new Map();
      for (const investigation of investigations)
        for (const anomaly of investigation.anomalies)
          if (anomaly.action)
            anomalousActions.set(anomaly.action, (anomalousActions.get(anomaly.action) || 0) + 1);
      for (const [action, points] of [...byAction].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        let card = cards.get(action);
        if (!card) {
          card = actionCard(action);
          cards.set(action, card);
          grid.append(card.element);
        }
        const count = anomalousActions.get(action) || 0;
        clear(card.flag).append(
          count ? badge('anomalous', `${count} anomal${count === 1 ? 'y' : 'ies'}`) : '',
        );
        drawAction(card, points);
      }
    },
    destroy() {
      for (const card of cards.values()) {
        card.latency.destroy();
        card.errors.destroy();
      }
    },
  };
}

/**
 * @param {string} action
 * @returns {ActionCard}
 */
function actionCard(action) {
  const latencyBox = h('div', { class: 'chart latency-chart' });
  const errorBox = h('div', { class: 'chart error-chart' });
  const flag = h('span');
  const element = h(
    'article',
    { class: 'card action-card', 'data-action': action },
    h('h3', {}, action, ' ', flag),
    h(
      'div',
      { class: 'chart-title' },
      'Latency of successful requests (p50 dotted, p90 solid, p99 dashed) — ',
      legendKey(BASELINE),
      'baseline',
      legendKey(CANARY),
      'canary',
    ),
    latencyBox,
    h('div', { class: 'chart-title' }, 'Error rate'),
    errorBox,
  );
  return { element, flag, latency: latencyChart(latencyBox), errors: errorChart(errorBox), latencyBox };
}

/**
 * One column per tick that has points; baseline and canary side by side.
 * @param {ActionCard} card
 * @param {ProbePoint[]} points
 */
function drawAction(card, points) {
  const ticks = [...new Set(points.map((point) => point.tick))].sort((a, b) => a - b);
  const index = new Map(ticks.map((tick, i) => [tick, i]));
  /** @type {number[]} */
  const at = [];
  /** @returns {(number | null)[]} */
  const column = () => Array.from({ length: ticks.length }, () => null);
  const columns = () => ({ p50: column(), p90: column(), p99: column(), errors: column() });
  const series = { baseline: columns(), canary: columns() };
  for (const point of points) {
    const i = index.get(point.tick);
    if (i === undefined) continue;
    at[i] = point.at / 1000;
    const target = point.target === 'baseline' || point.target === 'canary' ? series[point.target] : null;
    if (!target) continue;
    target.p50[i] = point.p50Ms;
    target.p90[i] = point.p90Ms;
    target.p99[i] = point.p99Ms;
    target.errors[i] = point.errorRate === null ? null : point.errorRate * 100;
  }
  const { baseline, canary } = series;
  card.latencyBox.dataset.points = String(ticks.length);
  card.latency.update([at, baseline.p50, baseline.p90, baseline.p99, canary.p50, canary.p90, canary.p99]);
  card.errors.update([at, baseline.errors, canary.errors]);
}

/** @param {string} color */
function legendKey(color) {
  const key = h('span', { class: 'legend-key' });
  key.style.background = color;
  return key;
}
