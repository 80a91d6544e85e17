/** Text renderings of a run for people: the live progress line and the final per-action table. */
import type { LoadResult, LoadSnapshot } from './run-load';
import { summarize, type ActionSummary } from './stats';

const ms = (value: number | null) =>
  value === null ? '-' : value < 10 ? value.toFixed(2) : value.toFixed(1);

/** One line: elapsed, requests, current rate, errors, p99 of the last interval. */
export function formatProgress(snapshot: LoadSnapshot, durationMs: number): string {
  const intervalMs = Math.max(1, snapshot.interval.to - snapshot.interval.from);
  const interval = summarize(snapshot.interval.stats, intervalMs);
  const totals = summarize(snapshot.totals, Math.max(1, snapshot.elapsedMs));
  const requests = totals.reduce((sum, row) => sum + row.requests, 0);
  const errors = totals.reduce((sum, row) => sum + row.errors, 0);
  const rate = interval.reduce((sum, row) => sum + row.rps, 0);
  const p99 = Math.max(0, ...interval.map((row) => row.p99 ?? 0));
  const pct = Math.min(100, Math.round((snapshot.elapsedMs * 100) / durationMs));
  return (
    `${(snapshot.elapsedMs / 1000).toFixed(0)}/${(durationMs / 1000).toFixed(0)} s (${pct} %)  ` +
    `${requests} requests  ${rate.toFixed(0)} req/s  ${errors} errors  p99 ${ms(p99)} ms  ` +
    `sessions ${snapshot.sessions.started}${snapshot.sessions.dropped ? ` (${snapshot.sessions.dropped} dropped)` : ''}`
  );
}

function errorText(row: ActionSummary): string {
  if (row.errors === 0) return '0';
  const kinds = Object.entries(row.errorKinds)
    .sort(([, a], [, b]) => b - a)
    .map(([kind, n]) => `${kind} ${n}`)
    .join(', ');
  return `${row.errors} (${kinds})`;
}

/** The final table: per target and action, count, rps, p50/p90/p99 in ms and errors. */
export function formatSummaryTable(
  rows: ActionSummary[],
  result: Pick<LoadResult, 'elapsedMs' | 'sessions' | 'unfinished' | 'status'>,
): string {
  const header = ['target', 'action', 'count', 'rps', 'p50 ms', 'p90 ms', 'p99 ms', 'errors'];
  const body = rows.map((row) => [
    row.target,
    row.action,
    String(row.requests),
    row.rps.toFixed(1),
    ms(row.p50),
    ms(row.p90),
    ms(row.p99),
    errorText(row),
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...body.map((line) => (line[column] ?? '').length)),
  );
  const numeric = new Set([2, 3, 4, 5, 6]);
  const render = (line: string[]) =>
    line
      .map((cell, column) =>
        numeric.has(column) ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0),
      )
      .join('  ')
      .trimEnd();
  const lines = [render(header), ...body.map(render)];
  if (rows.length === 0) lines.push('(no requests completed)');
  lines.push(
    '',
    `${result.status} after ${(result.elapsedMs / 1000).toFixed(1)} s: ${result.sessions.started} sessions started, ` +
      `${result.sessions.completed} completed, ${result.sessions.dropped} dropped, ${result.unfinished} requests cut at the end`,
  );
  return `${lines.join('\n')}\n`;
}
