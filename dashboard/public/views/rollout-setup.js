// @ts-check
// What a rollout runs with: the simulated users' profile mix, the spec, the traffic policy and
// the workflow's recent decisions.
/** @import { RolloutDetail } from '../api-types.js' */
import { barFill, clear, h } from '../dom.js';

/**
 * @param {HTMLElement} container
 * @param {RolloutDetail} detail
 */
export function renderSetup(container, detail) {
  const { spec, profiles, status } = detail;
  const mix = h(
    'section',
    { class: 'card', id: 'profile-mix' },
    h('h2', {}, 'Simulated users (profile mix)'),
  );
  if (!profiles) mix.append(h('div', { class: 'empty' }, 'Not known yet.'));
  else {
    mix.append(h('div', { class: 'muted' }, `${profiles.count} profiles sampled`));
    const entries = Object.entries(profiles.mix).sort((a, b) => b[1] - a[1]);
    if (entries.length === 0) mix.append(h('div', { class: 'empty' }, 'No strata reported.'));
    for (const [key, share] of entries) {
      mix.append(
        h(
          'div',
          { class: 'mix-row' },
          h('span', { class: 'key' }, key),
          h('span', { class: 'bar' }, barFill(share * 100)),
          h('span', { class: 'num' }, `${Math.round(share * 1000) / 10} %`),
        ),
      );
    }
  }
  const setup = h('section', { class: 'card', id: 'setup' }, h('h2', {}, 'Setup'));
  if (spec) {
    const rows = [
      ['Baseline', spec.targets.baseline.url],
      ['Canary', spec.targets.canary.url],
      ['Router', spec.router],
      [
        'Interval',
        `${spec.intervalMs / 1000} s (probe ${spec.probe.durationMs / 1000} s × ${spec.probe.concurrency})`,
      ],
      ['Analysis', `${spec.analysis.method}, alpha ${spec.analysis.alpha}`],
      ['On anomaly', spec.onAnomaly],
      ['Alert sinks', ['log', ...spec.alertSinks.filter((kind) => kind !== 'log')].join(', ')],
      ['Profiles', `${spec.profiles.sampleSize} sampled, criteria ${JSON.stringify(spec.profiles.criteria)}`],
    ];
    if (status)
      rows.push([
        'Policy',
        Object.entries(status.policy)
          .map(([key, value]) => `${key} ${value}`)
          .join(', '),
      ]);
    setup.append(
      h(
        'dl',
        { class: 'spec' },
        rows.map(([key, value]) => [h('dt', {}, key), h('dd', {}, value)]),
      ),
    );
  } else setup.append(h('div', { class: 'empty' }, 'The spec could not be read.'));
  const notes = status ? status.reasons.slice(-12).reverse() : [];
  if (notes.length)
    setup.append(
      h('h3', {}, 'Recent decisions'),
      h(
        'ul',
        { class: 'reasons' },
        notes.map((note) => h('li', {}, note)),
      ),
    );
  clear(container).append(mix, setup);
}
