// The canary dashboard: plain JavaScript, no build step. Everything shown is built with DOM
// nodes and textContent (rollout, action and profile names are user input), never innerHTML.
// Controls go through the API with the bearer token kept in this tab's sessionStorage.
'use strict';

(function () {
  const TOKEN_KEY = 'canary.apiToken';
  const main = document.getElementById('main');
  const live = document.getElementById('live');
  let config = { controls: false, refreshMs: 2000, temporalUiUrl: null };
  let view = null; // the current view: { stop() }

  // ---------- DOM helpers ----------

  /** h('td', { class: 'num', 'data-label': 'Share' }, 'text', node, ...) */
  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'on')
        for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
      else if (key === 'href') node.setAttribute('href', safeHref(value));
      else node.setAttribute(key, String(value));
    }
    append(node, ...children);
    return node;
  }

  function append(node, ...children) {
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  /** Only same-origin paths and http(s) URLs become links; anything else is inert. */
  function safeHref(value) {
    const text = String(value);
    if (text.startsWith('/') && !text.startsWith('//')) return text;
    try {
      const url = new URL(text);
      if (url.protocol === 'http:' || url.protocol === 'https:') return url.href;
    } catch {
      // not a URL
    }
    return '#';
  }

  function badge(kind, text) {
    return h('span', { class: `badge ${String(kind).replace(/[^a-z_]/g, '')}` }, text || kind);
  }

  function navLink(href, text) {
    return h('a', { href, 'data-nav': '' }, text);
  }

  // ---------- formatting ----------

  const pct = (share) => (share === null || share === undefined ? '–' : `${Math.round(share * 100) / 100} %`);

  function signedPct(ratio) {
    if (typeof ratio !== 'number' || !Number.isFinite(ratio)) return 'n/a';
    const value = ratio * 100;
    const text = value.toFixed(Math.abs(value) < 10 ? 1 : 0).replace(/\.0$/, '');
    return `${value > 0 ? '+' : ''}${text} %`;
  }

  function effectText(anomaly) {
    const interval = Array.isArray(anomaly.interval) ? anomaly.interval : [];
    return `${signedPct(anomaly.effect)} [${signedPct(interval[0])}, ${signedPct(interval[1])}]`;
  }

  function ago(ms) {
    if (!ms) return '–';
    const seconds = Math.round((Date.now() - ms) / 1000);
    if (seconds < 0) return `in ${duration(-seconds)}`;
    if (seconds < 5) return 'just now';
    return `${duration(seconds)} ago`;
  }

  function duration(seconds) {
    if (seconds < 60) return `${seconds} s`;
    if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
    if (seconds < 86400) return `${Math.round(seconds / 360) / 10} h`;
    return `${Math.round(seconds / 8640) / 10} d`;
  }

  const clock = (ms) => (ms ? new Date(ms).toLocaleString() : '–');
  const time = (ms) => (ms ? new Date(ms).toLocaleTimeString() : '–');

  // ---------- API ----------

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || `HTTP ${status}`);
      this.status = status;
      this.issues = (body && body.issues) || [];
    }
  }

  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || '';
    } catch {
      return '';
    }
  }

  async function api(path, options) {
    const init = { method: (options && options.method) || 'GET', headers: { accept: 'application/json' } };
    const bearer = token();
    if (bearer) init.headers.authorization = `Bearer ${bearer}`;
    if (options && options.body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(options.body);
    }
    const response = await fetch(path, init);
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  function setLive(ok, text) {
    live.className = `live ${ok ? 'ok' : 'down'}`;
    live.textContent = text;
  }

  /** Calls `tick` now and then every refreshMs while the tab is visible; returns a stopper. */
  function poll(tick) {
    let stopped = false;
    let timer = null;
    const run = async () => {
      timer = null;
      if (stopped) return;
      if (!document.hidden) {
        try {
          await tick();
          setLive(true, `live · updated ${new Date().toLocaleTimeString()}`);
        } catch (error) {
          setLive(false, `not updating: ${error.message}`);
          if (
            error instanceof ApiError &&
            error.status === 401 &&
            !document.getElementById('token-dialog').open
          )
            tokenDialog(null, 'This dashboard needs the API token to read.');
        }
      }
      if (!stopped) timer = setTimeout(run, config.refreshMs);
    };
    const wake = () => {
      if (!document.hidden && timer !== null) {
        clearTimeout(timer);
        void run();
      }
    };
    document.addEventListener('visibilitychange', wake);
    void run();
    return () => {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      document.removeEventListener('visibilitychange', wake);
    };
  }

  // ---------- routing ----------

  function route() {
    if (view) view.stop();
    clear(main);
    const match = /^\/rollouts\/([^/]+)\/?$/.exec(location.pathname);
    if (match) {
      let id;
      try {
        id = decodeURIComponent(match[1]);
      } catch {
        id = '';
      }
      view = rolloutView(id);
    } else view = listView();
  }

  document.addEventListener('click', (event) => {
    const link = event.target instanceof Element ? event.target.closest('a[data-nav]') : null;
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    history.pushState(null, '', link.getAttribute('href'));
    route();
  });
  window.addEventListener('popstate', route);

  // ---------- rollouts list ----------

  function listView() {
    let filter = sessionStorage.getItem('canary.filter') || 'all';
    const buttons = {};
    const segmented = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Which rollouts' });
    for (const [value, label] of [
      ['running', 'Running'],
      ['all', 'All'],
    ]) {
      buttons[value] = h(
        'button',
        {
          type: 'button',
          class: value === filter ? 'selected' : '',
          on: {
            click: () => {
              filter = value;
              sessionStorage.setItem('canary.filter', value);
              for (const [key, button] of Object.entries(buttons))
                button.className = key === filter ? 'selected' : '';
              void refresh();
            },
          },
        },
        label,
      );
      segmented.append(buttons[value]);
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
      h(
        'div',
        { class: 'toolbar' },
        h('h1', {}, 'Rollouts'),
        h('span', { class: 'spacer' }),
        count,
        segmented,
      ),
      h('section', { class: 'card' }, h('div', { class: 'table-scroll' }, table)),
    );

    const refresh = async () => {
      const { rollouts } = await api(`/api/rollouts?status=${filter}&limit=200`);
      count.textContent = `${rollouts.length} ${filter === 'running' ? 'running' : 'shown'}`;
      clear(body);
      if (rollouts.length === 0)
        body.append(h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No rollouts yet.')));
      for (const rollout of rollouts) body.append(listRow(rollout));
    };
    return { stop: poll(refresh) };
  }

  function listRow(rollout) {
    const href = `/rollouts/${encodeURIComponent(rollout.rolloutId)}`;
    const verdict = rollout.lastVerdict;
    const row = h(
      'tr',
      {
        class: 'clickable',
        'data-rollout': rollout.rolloutId,
        on: {
          click: (event) => {
            if (event.target instanceof Element && event.target.closest('a')) return;
            history.pushState(null, '', href);
            route();
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
        h('span', { class: 'share-bar' }, shareFill(rollout.share)),
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
        rollout.statusError
          ? h('div', { class: 'note' }, `status unavailable: ${rollout.statusError}`)
          : null,
      ),
      h(
        'td',
        { class: 'num', 'data-label': 'Anomalies' },
        rollout.anomalyCount === null ? '–' : rollout.anomalyCount,
      ),
    );
    return row;
  }

  function shareFill(share) {
    const fill = h('span');
    fill.style.width = `${Math.max(0, Math.min(100, share || 0))}%`;
    return fill;
  }

  // ---------- one rollout ----------

  function rolloutView(rolloutId) {
    const state = {
      ticks: [],
      points: new Map(),
      investigations: [],
      detail: null,
      lastTick: 0,
      lastProbeTick: 0,
    };
    const charts = [];
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

    const shareChartBox = h('div', { class: 'chart', id: 'share-chart' });
    append(sections.share, h('h2', {}, 'Canary share of real traffic'), shareChartBox);
    const shareChart = window.CanaryCharts.shareChart(shareChartBox);
    charts.push(shareChart);
    const actionCards = new Map();
    const controlStatus = h('div', { class: 'control-status muted', id: 'control-status', role: 'status' });

    const refresh = async () => {
      const [detail, ticks, probes, investigations] = await Promise.all([
        api(`/api/rollouts/${encodeURIComponent(rolloutId)}`),
        api(`/api/rollouts/${encodeURIComponent(rolloutId)}/ticks?afterTick=${state.lastTick}`),
        api(`/api/rollouts/${encodeURIComponent(rolloutId)}/probes?afterTick=${state.lastProbeTick}`),
        api(`/api/rollouts/${encodeURIComponent(rolloutId)}/investigations`),
      ]);
      state.detail = detail;
      for (const tick of ticks.ticks) state.ticks.push(tick);
      if (state.ticks.length) state.lastTick = state.ticks[state.ticks.length - 1].tick;
      // The newest window is read again next time (a fanned-out probe may still be merging).
      for (const point of probes.points)
        state.points.set(`${point.tick}|${point.action}|${point.target}`, point);
      let maxTick = 0;
      for (const point of state.points.values()) maxTick = Math.max(maxTick, point.tick);
      state.lastProbeTick = Math.max(0, maxTick - 1);
      state.investigations = investigations.investigations;
      renderSummary();
      renderShare();
      renderActions();
      renderAnomalies();
      renderContext();
      renderTicks();
    };

    const renderSummary = () => {
      const { summary, status, links } = state.detail;
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
      // A decided rollout may still be finishing its routing: it takes no more controls.
      const running =
        summary.execution === 'RUNNING' && !['promoted', 'rolled_back', 'aborted'].includes(summary.phase);
      clear(sections.summary).append(
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
                  value instanceof Node && value.classList.contains('value')
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
                    {
                      href: links.temporalUi,
                      target: '_blank',
                      rel: 'noopener noreferrer',
                      id: 'temporal-link',
                    },
                    'Workflow in Temporal UI ↗',
                  )
                : null,
              h(
                'span',
                { class: 'muted' },
                `run ${state.detail.runId.slice(0, 8)} · ${state.detail.historyLength} history events`,
              ),
            ),
          ),
          h('div', {}, controls(summary, running), controlStatus),
        ),
      );
    };

    const controls = (summary, running) => {
      const phase = summary.phase;
      const paused = phase === 'paused';
      const disabledWhy = !running
        ? 'the rollout has ended'
        : !config.controls
          ? 'the server has no API token configured'
          : null;
      const button = (name, label, cls, enabled) =>
        h(
          'button',
          {
            type: 'button',
            id: `control-${name}`,
            class: cls,
            disabled: !enabled || disabledWhy !== null,
            title: disabledWhy ? `Unavailable: ${disabledWhy}` : null,
            on: { click: () => openControl(name) },
          },
          label,
        );
      return h(
        'div',
        { class: 'controls', role: 'group', 'aria-label': 'Controls' },
        button('pause', 'Pause', 'warn', !paused),
        button('resume', 'Resume', 'ok', paused),
        button('rollback', 'Roll back', 'danger', true),
        button('promote', 'Promote', '', true),
      );
    };

    const openControl = (kind) => {
      const title = state.detail
        ? `${state.detail.summary.service} ${state.detail.summary.version}`
        : rolloutId;
      controlDialog(kind, title, async (body) => {
        await api(`/api/rollouts/${encodeURIComponent(rolloutId)}/${kind}`, { method: 'POST', body });
        controlStatus.textContent = `${CONTROL_TEXT[kind].done} at ${new Date().toLocaleTimeString()}; the rollout applies it on its next step.`;
        await refresh().catch(() => undefined);
      });
    };

    const renderShare = () => {
      const xs = [];
      const share = [];
      const anomalies = [];
      const inconclusive = [];
      for (const tick of state.ticks) {
        xs.push(tick.finishedAt / 1000);
        share.push(tick.shareAfter);
        const status = tick.verdict.status;
        anomalies.push(status === 'anomalous' ? tick.shareBefore : null);
        inconclusive.push(status === 'inconclusive' ? tick.shareAfter : null);
      }
      shareChartBox.dataset.points = String(xs.length);
      if (xs.length === 0 && !shareChartBox.querySelector('.empty'))
        shareChartBox.append(h('div', { class: 'empty' }, 'No ticks recorded yet.'));
      else if (xs.length > 0) {
        const empty = shareChartBox.querySelector('.empty');
        if (empty) empty.remove();
        shareChart.update([xs, share, anomalies, inconclusive]);
      }
    };

    const renderActions = () => {
      const byAction = new Map();
      for (const point of state.points.values()) {
        if (!byAction.has(point.action)) byAction.set(point.action, []);
        byAction.get(point.action).push(point);
      }
      if (byAction.size === 0) {
        if (!sections.actions.querySelector('.empty'))
          append(
            clear(sections.actions),
            h(
              'div',
              { class: 'card' },
              h('h2', {}, 'Baseline vs canary per action'),
              h('div', { class: 'empty' }, 'No probe results yet.'),
            ),
          );
        return;
      }
      if (!sections.actions.querySelector('.actions-grid'))
        append(
          clear(sections.actions),
          h('h2', {}, 'Baseline vs canary per action'),
          h('div', { class: 'actions-grid' }),
        );
      const grid = sections.actions.querySelector('.actions-grid');
      const anomalousActions = new Map();
      for (const investigation of state.investigations)
        for (const anomaly of investigation.anomalies)
          if (anomaly.action)
            anomalousActions.set(anomaly.action, (anomalousActions.get(anomaly.action) || 0) + 1);
      for (const action of [...byAction.keys()].sort()) {
        let card = actionCards.get(action);
        if (!card) {
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
              legendKey('#2563eb'),
              'baseline',
              legendKey('#ea580c'),
              'canary',
            ),
            latencyBox,
            h('div', { class: 'chart-title' }, 'Error rate'),
            errorBox,
          );
          card = {
            element,
            flag,
            latency: window.CanaryCharts.latencyChart(latencyBox),
            errors: window.CanaryCharts.errorChart(errorBox),
            latencyBox,
          };
          charts.push(card.latency, card.errors);
          actionCards.set(action, card);
          grid.append(element);
        }
        const count = anomalousActions.get(action) || 0;
        clear(card.flag).append(
          count ? badge('anomalous', `${count} anomal${count === 1 ? 'y' : 'ies'}`) : '',
        );
        const points = byAction.get(action);
        const ticks = [...new Set(points.map((point) => point.tick))].sort((a, b) => a - b);
        const index = new Map(ticks.map((tick, i) => [tick, i]));
        const at = new Array(ticks.length).fill(null);
        const column = () => new Array(ticks.length).fill(null);
        const series = {
          baseline: [column(), column(), column(), column()],
          canary: [column(), column(), column(), column()],
        };
        for (const point of points) {
          const i = index.get(point.tick);
          at[i] = point.at / 1000;
          const target = series[point.target];
          if (!target) continue;
          target[0][i] = point.p50Ms;
          target[1][i] = point.p90Ms;
          target[2][i] = point.p99Ms;
          target[3][i] = point.errorRate === null ? null : point.errorRate * 100;
        }
        card.latencyBox.dataset.points = String(ticks.length);
        card.latency.update([at, ...series.baseline.slice(0, 3), ...series.canary.slice(0, 3)]);
        card.errors.update([at, series.baseline[3], series.canary[3]]);
      }
    };

    const renderAnomalies = () => {
      clear(sections.anomalies).append(
        h('h2', {}, `Anomalies (${state.investigations.length} anomalous ticks)`),
      );
      if (state.investigations.length === 0) {
        sections.anomalies.append(h('div', { class: 'empty' }, 'No anomalies so far.'));
        return;
      }
      for (const investigation of [...state.investigations].reverse()) {
        sections.anomalies.append(
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
    };

    const renderContext = () => {
      const { spec, profiles, status } = state.detail;
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
          const fill = h('span');
          fill.style.width = `${Math.max(0, Math.min(100, share * 100))}%`;
          mix.append(
            h(
              'div',
              { class: 'mix-row' },
              h('span', { class: 'key' }, key),
              h('span', { class: 'bar' }, fill),
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
          [
            'Profiles',
            `${spec.profiles.sampleSize} sampled, criteria ${JSON.stringify(spec.profiles.criteria)}`,
          ],
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
      clear(sections.context).append(mix, setup);
    };

    const renderTicks = () => {
      const body = h('tbody');
      for (const tick of [...state.ticks].reverse().slice(0, 500)) {
        const probe = tick.probe;
        body.append(
          h(
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
            h(
              'td',
              { 'data-label': 'Errors' },
              probe ? `${probe.errors.baseline} / ${probe.errors.canary}` : '–',
            ),
            h(
              'td',
              { 'data-label': 'Reason', class: 'note' },
              tick.reason,
              tick.verdict.status === 'inconclusive' && tick.verdict.reasons.length
                ? ` — ${tick.verdict.reasons.join('; ')}`
                : '',
            ),
          ),
        );
      }
      const table = h(
        'table',
        { class: 'stack', id: 'tick-log' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            [
              'Tick',
              'Time',
              'Phase',
              'Verdict',
              'Action',
              'Share',
              'Requests (b / c)',
              'Errors (b / c)',
              'Reason',
            ].map((label) => h('th', {}, label)),
          ),
        ),
        body,
      );
      clear(sections.ticks).append(
        h('h2', {}, `Tick log (${state.ticks.length})`),
        h('div', { class: 'table-scroll' }, table),
      );
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
        for (const chart of charts) chart.destroy();
      },
    };
  }

  function legendKey(color) {
    const key = h('span', { class: 'legend-key' });
    key.style.background = color;
    return key;
  }

  function evidenceText(anomaly) {
    const parts = [`evidence: ${anomaly.statistic}`];
    if (typeof anomaly.pValue === 'number') parts.push(`p = ${anomaly.pValue.toPrecision(2)}`);
    if (typeof anomaly.quantile === 'number') parts.push(`quantile p${Math.round(anomaly.quantile * 100)}`);
    if (anomaly.target) parts.push(`target ${anomaly.target}`);
    if (anomaly.window && typeof anomaly.window.fromTick === 'number')
      parts.push(`ticks ${anomaly.window.fromTick}–${anomaly.window.toTick}`);
    return parts.join(' · ');
  }

  // ---------- dialogs ----------

  const CONTROL_TEXT = {
    pause: {
      title: 'Pause',
      text: 'Hold the canary at its current share until someone resumes.',
      reason: 'optional',
      done: 'Pause sent',
    },
    resume: {
      title: 'Resume',
      text: 'Continue the rollout from where it was paused.',
      reason: null,
      done: 'Resume sent',
    },
    rollback: {
      title: 'Roll back',
      text: 'Take the canary out of real traffic now. The rollout ends as rolled back.',
      reason: 'required',
      done: 'Rollback sent',
    },
    promote: {
      title: 'Promote',
      text: 'Give the canary all traffic now. The rollout ends as promoted.',
      reason: 'optional',
      done: 'Promote sent',
    },
  };

  function controlDialog(kind, subject, send) {
    const dialog = document.getElementById('control-dialog');
    const form = document.getElementById('control-form');
    const reason = document.getElementById('reason-input');
    const reasonLabel = document.getElementById('reason-label');
    const error = document.getElementById('control-error');
    const ok = document.getElementById('control-ok');
    const text = CONTROL_TEXT[kind];
    document.getElementById('control-title').textContent = `${text.title}: ${subject}`;
    document.getElementById('control-text').textContent = text.text;
    reason.value = '';
    reason.setAttribute('aria-required', String(text.reason === 'required'));
    reason.hidden = reasonLabel.hidden = text.reason === null;
    reasonLabel.textContent = text.reason === 'required' ? 'Reason (required)' : 'Reason (optional)';
    ok.textContent = text.title;
    ok.className = kind === 'rollback' ? 'danger' : kind === 'pause' ? 'warn' : kind === 'resume' ? 'ok' : '';
    error.textContent = '';
    form.onsubmit = async (event) => {
      event.preventDefault();
      const body = {};
      if (text.reason !== null && reason.value.trim()) body.reason = reason.value.trim();
      if (text.reason === 'required' && !body.reason) {
        error.textContent = 'Please say why: the reason is recorded and sent with the alert.';
        reason.focus();
        return;
      }
      if (!token()) {
        error.textContent = 'Controls need the API token.';
        tokenDialog(() => form.requestSubmit());
        return;
      }
      ok.disabled = true;
      try {
        await send(body);
        dialog.close();
      } catch (failure) {
        if (failure instanceof ApiError && failure.status === 401) {
          error.textContent = failure.message;
          tokenDialog(() => form.requestSubmit(), failure.message);
        } else
          error.textContent =
            failure.issues && failure.issues.length
              ? failure.issues.map((i) => `${i.field}: ${i.rule}`).join('; ')
              : failure.message;
      } finally {
        ok.disabled = false;
      }
    };
    document.getElementById('control-cancel').onclick = () => dialog.close();
    dialog.showModal();
    if (!reason.hidden) reason.focus();
  }

  function tokenDialog(then, message) {
    const dialog = document.getElementById('token-dialog');
    const input = document.getElementById('token-input');
    document.getElementById('token-error').textContent = message || '';
    input.value = '';
    document.getElementById('token-form').onsubmit = (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (!value) {
        document.getElementById('token-error').textContent = 'Enter the token, or Cancel.';
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, value);
      dialog.close();
      updateTokenButton();
      if (then) then();
    };
    document.getElementById('token-forget').onclick = () => {
      sessionStorage.removeItem(TOKEN_KEY);
      updateTokenButton();
      dialog.close();
    };
    document.getElementById('token-cancel').onclick = () => dialog.close();
    dialog.showModal();
    input.focus();
  }

  function updateTokenButton() {
    document.getElementById('token-button').textContent = token() ? 'API token ✓' : 'API token';
  }

  document.getElementById('token-button').addEventListener('click', () => tokenDialog());

  // ---------- start ----------

  async function start() {
    updateTokenButton();
    try {
      config = await api('/api/config');
    } catch (error) {
      if (error instanceof ApiError && error.status === 401)
        tokenDialog(() => location.reload(), 'This dashboard needs the API token to read.');
      setLive(false, `cannot reach the API: ${error.message}`);
    }
    route();
  }

  if (window.uPlot) void start();
  else window.addEventListener('load', () => void start());
})();
