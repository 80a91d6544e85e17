// @ts-check
// Every anomalous tick of a rollout, newest first, with the evidence the analysis gave.
/** @import { Anomaly, Investigation } from '../api-types.js' */
import { badge, clear, h } from '../dom.js';
import { clock, pct, signedPct } from '../format.js';

/**
 * @param {HTMLElement} section
 * @param {Investigation[]} investigations oldest first
 */
export function renderAnomalies(section, investigations) {
  clear(section).append(h('h2', {}, `Anomalies (${investigations.length} anomalous ticks)`));
  if (investigations.length === 0) {
    section.append(h('div', { class: 'empty' }, 'No anomalies so far.'));
    return;
  }
  for (const investigation of [...investigations].reverse()) {
    section.append(
      h(
        'div',
        { class: 'investigation' },
        h(
          'div',
          {},
          h('strong', {}, `Tick ${investigation.tick}`),
          ` · ${clock(investigation.openedAt)} · share ${pct(investigation.shareBefore)} → ${pct(investigation.shareAfter)} · `,
          badge(investigation.action === 'rollback' ? 'critical' : 'warning', investigation.action),
        ),
        investigation.anomalies.map((anomaly) =>
          h(
            'div',
            { class: 'anomaly' },
            h(
              'div',
              {},
              h('strong', {}, anomaly.action || 'all actions'),
              ' · ',
              anomaly.metric,
              ' ',
              h('strong', {}, effectText(anomaly)),
              anomaly.critical ? [' ', badge('critical', 'critical')] : null,
            ),
            h('div', {}, anomaly.summary),
            h('div', { class: 'evidence' }, evidenceText(anomaly)),
          ),
        ),
      ),
    );
  }
}

/**
 * The effect and its interval, e.g. `+38 % [+22 %, +55 %]`.
 * @param {Anomaly} anomaly
 */
function effectText(anomaly) {
  const interval = Array.isArray(anomaly.interval) ? anomaly.interval : [];
  return `${signedPct(anomaly.effect)} [${signedPct(interval[0])}, ${signedPct(interval[1])}]`;
}

/** @param {Anomaly} anomaly */
function evidenceText(anomaly) {
  const parts = [`evidence: ${anomaly.statistic}`];
  if (typeof anomaly.pValue === 'number') parts.push(`p = ${anomaly.pValue.toPrecision(2)}`);
  if (typeof anomaly.quantile === 'number') parts.push(`quantile p${Math.round(anomaly.quantile * 100)}`);
  if (anomaly.target) parts.push(`target ${anomaly.target}`);
  if (anomaly.window && typeof anomaly.window.fromTick === 'number')
    parts.push(`ticks ${anomaly.window.fromTick}–${anomaly.window.toTick}`);
  return parts.join(' · ');
}
