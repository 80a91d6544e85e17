// @ts-check
// Every anomalous tick of a rollout, newest first, with the evidence the analysis gave, the
// blamed action's slowest and failed probe requests, and a command that plays them again.
/** @import { Anomaly, Investigation, RequestExemplar } from '../api-types.js' */
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
            exemplarsView(anomaly),
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
  const evidence = anomaly.evidence;
  if (evidence && evidence.samples)
    parts.push(
      `regime ${evidence.regime} since tick ${evidence.fromTick}: ${evidence.samples.baseline} baseline, ${evidence.samples.canary} canary samples`,
    );
  return parts.join(' · ');
}

/**
 * The blamed action's slowest and failed probe requests, and the reproduction line.
 * @param {Anomaly} anomaly
 */
function exemplarsView(anomaly) {
  const exemplars = anomaly.exemplars;
  if (!exemplars) return null;
  return h(
    'div',
    { class: 'exemplars' },
    exemplarTable(`Slowest requests (ticks ${exemplars.fromTick}–${exemplars.toTick})`, exemplars.slowest),
    exemplarTable('Failed requests', exemplars.failed),
    exemplars.reproduce
      ? h(
          'div',
          { class: 'reproduce' },
          h('div', {}, 'Reproduce (with CANARY_MONGO_URI pointing at the profile store):'),
          h('code', { class: 'reproduce-line' }, exemplars.reproduce),
        )
      : null,
  );
}

/**
 * @param {string} title
 * @param {RequestExemplar[]} requests
 */
function exemplarTable(title, requests) {
  if (!Array.isArray(requests) || requests.length === 0) return null;
  return h(
    'table',
    { class: 'stack exemplar-table' },
    h('caption', {}, title),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', {}, 'Profile'),
        h('th', {}, 'Request'),
        h('th', { class: 'num' }, 'Status'),
        h('th', { class: 'num' }, 'Latency'),
        h('th', {}, 'Target'),
      ),
    ),
    h(
      'tbody',
      {},
      requests.map((request) =>
        h(
          'tr',
          {},
          h('td', { 'data-label': 'Profile' }, request.profileId),
          h('td', { 'data-label': 'Request', class: 'request' }, `${request.method} ${request.path}`),
          h(
            'td',
            { 'data-label': 'Status', class: 'num' },
            request.status === 0 ? request.error || 'no response' : request.status,
          ),
          h('td', { 'data-label': 'Latency', class: 'num' }, `${request.latencyMs.toFixed(1)} ms`),
          h('td', { 'data-label': 'Target' }, request.target),
        ),
      ),
    ),
  );
}
