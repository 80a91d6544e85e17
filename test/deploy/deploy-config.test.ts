/**
 * The Prometheus config, its alert rules and the Grafana dashboard in deploy/: Prometheus' own
 * promtool checks them, and every metric they name is one our processes export (a renamed
 * metric must not leave an empty panel behind).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { MongoClient } from 'mongodb';
import { parse } from 'yaml';
import { buildDashboard } from '../../dashboard/app';
import { buildShopApp } from '../../examples/shop/app';
import { ProxyMetrics } from '../../routing/proxy/metrics';
import { WorkerMetrics } from '../../workers/worker-metrics';

const DEPLOY = path.join(__dirname, '..', '..', 'deploy');
const PROMTOOL = '/usr/bin/promtool';

interface Panel {
  title: string;
  type: string;
  targets?: { expr: string }[];
  gridPos: { x: number; y: number; w: number; h: number };
}

const dashboard = JSON.parse(readFileSync(path.join(DEPLOY, 'grafana/dashboards/canary.json'), 'utf8')) as {
  uid: string;
  panels: Panel[];
};
const rules = parse(readFileSync(path.join(DEPLOY, 'prometheus/rules/canary.yml'), 'utf8')) as {
  groups: { rules: { alert: string; expr: string }[] }[];
};
const expressions = [
  ...dashboard.panels.flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({ where: panel.title, expr: target.expr })),
  ),
  ...rules.groups.flatMap((group) => group.rules.map((rule) => ({ where: rule.alert, expr: rule.expr }))),
];

/** Metric family names as a scrape shows them (histograms add _bucket, _sum, _count). */
function familyNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const match = /^# TYPE (\S+) (\S+)/.exec(line);
    if (!match) continue;
    names.add(match[1]!);
    if (match[2] === 'histogram')
      for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${match[1]}${suffix}`);
  }
  return names;
}

async function exportedMetricNames(): Promise<Set<string>> {
  const worker = await new WorkerMetrics().registry.metrics();
  const proxy = await new ProxyMetrics().registry.metrics();
  const shop = buildShopApp({ role: 'baseline', version: '1.0.0' });
  const shopText = (await shop.inject({ url: '/metrics' })).body;
  await shop.close();
  // The API's metrics, with a Temporal connection that is never reached (the listing gauge reads 0).
  const connection = Connection.lazy({ address: '127.0.0.1:1' });
  const mongo = new MongoClient('mongodb://127.0.0.1:1/', { serverSelectionTimeoutMS: 100 });
  const api = await buildDashboard({
    temporal: new Client({ connection }),
    db: mongo.db('unused'),
    settings: { auth: { protectReads: false }, refreshMs: 2000 },
    rollouts: { queryTimeoutMs: 200, listTimeoutMs: 200 },
  });
  await api.inject({ url: '/api/config' }); // one request, so the latency histogram has a series
  const apiText = (await api.inject({ url: '/metrics' })).body;
  await api.close();
  await connection.close();
  await mongo.close();
  return new Set([worker, proxy, shopText, apiText].flatMap((text) => [...familyNames(text)]));
}

test('promtool accepts the Prometheus config and its alert rules', () => {
  const config = execFileSync(PROMTOOL, ['check', 'config', path.join(DEPLOY, 'prometheus/prometheus.yml')], {
    encoding: 'utf8',
  });
  expect(config).toContain('is valid prometheus config file syntax');
  expect(config).toContain('1 rule files found');
  const rulesCheck = execFileSync(
    PROMTOOL,
    ['check', 'rules', path.join(DEPLOY, 'prometheus/rules/canary.yml')],
    {
      encoding: 'utf8',
    },
  );
  expect(rulesCheck).toContain('SUCCESS: 7 rules found');
});

test('every dashboard query is valid PromQL (checked by promtool as recording rules)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'canary-promql-'));
  try {
    const file = path.join(dir, 'dashboard.yml');
    const recordings = expressions.map(({ expr }, index) => ({
      record: `dashboard:expr_${index}`,
      // Grafana's interval variables become a fixed range for the syntax check.
      expr: expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '5m'),
    }));
    writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules: recordings }] }));
    const out = execFileSync(PROMTOOL, ['check', 'rules', file], { encoding: 'utf8' });
    expect(out).toContain(`SUCCESS: ${recordings.length} rules found`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every metric the dashboard and the rules name is exported by a worker, the API, the proxy or the shop', async () => {
  const exported = await exportedMetricNames();
  const missing: string[] = [];
  for (const { where, expr } of expressions) {
    for (const name of expr.match(/\b(canary_[a-z0-9_]+|http_[a-z0-9_]+)\b/g) ?? [])
      if (!exported.has(name)) missing.push(`${where}: ${name}`);
  }
  expect(missing).toEqual([]);
});

test("the dashboard is laid out on Grafana's 24-column grid without overlaps", () => {
  expect(dashboard.uid).toBe('canary-rollouts');
  const cells = new Set<string>();
  for (const panel of dashboard.panels) {
    const { x, y, w, h } = panel.gridPos;
    expect(x + w).toBeLessThanOrEqual(24);
    for (let row = y; row < y + h; row++)
      for (let column = x; column < x + w; column++) {
        const cell = `${row}:${column}`;
        if (cells.has(cell)) throw new Error(`panel "${panel.title}" overlaps another at ${cell}`);
        cells.add(cell);
      }
  }
});
