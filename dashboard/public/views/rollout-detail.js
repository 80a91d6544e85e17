// @ts-check
// `/rollouts/<id>`: one rollout. The tick log and probe series are read incrementally and kept
// here; every refresh redraws the sections from this state.
/** @import { Investigation, ProbePoint, RolloutDetail, TickRecord } from '../api-types.js' */
/** @import { View } from '../router.js' */
import { ApiError, investigations, probePoints, rolloutDetail, tickLog } from '../api.js';
import { append, clear, h, navLink } from '../dom.js';
import { poll } from '../poll.js';
import { actionCharts } from './action-charts.js';
import { renderAnomalies } from './anomalies.js';
import { rolloutControls } from './controls.js';
import { renderSetup } from './rollout-setup.js';
import { renderSummary } from './rollout-summary.js';
import { shareHistory } from './share-history.js';
import { renderTickLog } from './tick-log.js';

/**
 * @param {HTMLElement} main
 * @param {string} rolloutId
 * @returns {View}
 */
export function rolloutView(main, rolloutId) {
  const state = {
    /** @type {TickRecord[]} */
    ticks: [],
    /** @type {Map<string, ProbePoint>} by tick, action and target */
    points: new Map(),
    /** @type {Investigation[]} */
    investigations: [],
    lastTick: 0,
    lastProbeTick: 0,
  };
  const sections = {
    summary: h('section', { class: 'card', id: 'summary' }),
    share: h('section', { class: 'card', id: 'share' }),
    actions: h('section', { id: 'actions' }),
    anomalies: h('section', { class: 'card', id: 'anomalies' }),
    ticks: h('section', { class: 'card', id: 'ticks' }),
    context: h('div', { class: 'grid-2' }),
  };
  append(
    main,
    h('div', { class: 'toolbar' }, navLink('/', '← All rollouts')),
    sections.summary,
    sections.share,
    sections.actions,
    sections.anomalies,
    sections.context,
    sections.ticks,
  );
  const share = shareHistory(sections.share);
  const actions = actionCharts(sections.actions);

  const refresh = async () => {
    const [detail, ticks, probes, found] = await Promise.all([
      rolloutDetail(rolloutId),
      tickLog(rolloutId, state.lastTick),
      probePoints(rolloutId, state.lastProbeTick),
      investigations(rolloutId),
    ]);
    for (const tick of ticks.ticks) state.ticks.push(tick);
    const newest = state.ticks[state.ticks.length - 1];
    if (newest) state.lastTick = newest.tick;
    // The newest window is read again next time (a fanned-out probe may still be merging).
    for (const point of probes.points)
      state.points.set(`${point.tick}|${point.action}|${point.target}`, point);
    let maxTick = 0;
    for (const point of state.points.values()) maxTick = Math.max(maxTick, point.tick);
    state.lastProbeTick = Math.max(0, maxTick - 1);
    state.investigations = found.investigations;
    render(detail);
  };
  const controls = rolloutControls(rolloutId, refresh);

  /** @param {RolloutDetail} detail */
  const render = (detail) => {
    renderSummary(sections.summary, detail, h('div', {}, controls.buttons(detail.summary), controls.status));
    share.render(state.ticks);
    actions.render(state.points.values(), state.investigations);
    renderAnomalies(sections.anomalies, state.investigations);
    renderSetup(sections.context, detail);
    renderTickLog(sections.ticks, state.ticks);
  };

  const stopPolling = poll(async () => {
    try {
      await refresh();
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 400)) {
        clear(main).append(
          h('div', { class: 'toolbar' }, navLink('/', '← All rollouts')),
          h('p', { class: 'notice' }, error.message),
        );
        stopPolling();
        return;
      }
      throw error;
    }
  });
  return {
    stop() {
      stopPolling();
      share.destroy();
      actions.destroy();
    },
  };
}
