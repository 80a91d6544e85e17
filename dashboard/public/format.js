// @ts-check
// Numbers and times as the page writes them.

/**
 * A share of traffic in percent, e.g. `12.5 %`; `–` when unknown.
 * @param {number | null | undefined} share
 */
export const pct = (share) =>
  share === null || share === undefined ? '–' : `${Math.round(share * 100) / 100} %`;

/**
 * A relative change with its sign, e.g. `+38 %` for 0.38; `n/a` when not a number.
 * @param {number | undefined} ratio
 */
export function signedPct(ratio) {
  if (typeof ratio !== 'number' || !Number.isFinite(ratio)) return 'n/a';
  const value = ratio * 100;
  const text = value.toFixed(Math.abs(value) < 10 ? 1 : 0).replace(/\.0$/, '');
  return `${value > 0 ? '+' : ''}${text} %`;
}

/**
 * A chart value with 0 to 2 decimals depending on its size, e.g. `12.3 ms`; `–` when missing.
 * @param {number | null | undefined} value
 * @param {string} unit
 */
export function withUnit(value, unit) {
  if (value === null || value === undefined) return '–';
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return value.toFixed(digits) + unit;
}

/**
 * How long ago (or how soon) a moment is, e.g. `3 min ago`, `in 2 s`.
 * @param {number | null | undefined} ms since the epoch
 */
export function ago(ms) {
  if (!ms) return '–';
  const seconds = Math.round((Date.now() - ms) / 1000);
  if (seconds < 0) return `in ${duration(-seconds)}`;
  if (seconds < 5) return 'just now';
  return `${duration(seconds)} ago`;
}

/** @param {number} seconds */
function duration(seconds) {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86400) return `${Math.round(seconds / 360) / 10} h`;
  return `${Math.round(seconds / 8640) / 10} d`;
}

/** @param {number | null | undefined} ms since the epoch */
export const clock = (ms) => (ms ? new Date(ms).toLocaleString() : '–');

/** @param {number | null | undefined} ms since the epoch */
export const time = (ms) => (ms ? new Date(ms).toLocaleTimeString() : '–');
