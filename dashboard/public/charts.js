// @ts-check
// Thin helpers over uPlot (served from node_modules): time-series charts that size themselves
// to their container and take new data without being rebuilt. No data ever becomes HTML here:
// uPlot draws on a canvas and writes legend text with textContent.
/** @import uPlot from 'uplot' */
import { withUnit } from './format.js';

export const BASELINE = '#2563eb';
export const CANARY = '#ea580c';
const DASH = { p50: [3, 4], p90: [], p99: [10, 5] };
const WIDTH = { p50: 1.5, p90: 2.25, p99: 1.5 };

/** uPlot's IIFE build, loaded by its own script tag before the modules, sets this global. */
export const loadedUPlot = () => /** @type {Window & { uPlot?: typeof uPlot }} */ (window).uPlot;

/**
 * @typedef {object} TimeChartOptions
 * @property {number} [height]
 * @property {string} yLabel
 * @property {uPlot.Range.Function} [yRange]
 * @property {uPlot.Axis.Values} [yValues]
 * @property {uPlot.Series[]} series after the x series
 */

/** @typedef {{ update(data: uPlot.AlignedData): void, destroy(): void }} TimeChart */

/**
 * A chart bound to `container`, drawn on its first update.
 * @param {HTMLElement} container
 * @param {TimeChartOptions} options
 * @returns {TimeChart}
 */
function timeChart(container, options) {
  /** @type {uPlot | null} */
  let plot = null;
  /** @type {uPlot.AlignedData | null} */
  let pending = null;
  const height = options.height || 200;
  /**
   * @param {typeof uPlot} UPlot
   * @param {uPlot.AlignedData} data
   */
  const make = (UPlot, data) => {
    const width = Math.max(240, Math.floor(container.clientWidth || 600));
    return new UPlot(
      {
        width,
        height,
        scales: { x: { time: true }, y: options.yRange ? { range: options.yRange } : {} },
        axes: [
          { stroke: '#5b6675', grid: { stroke: '#eef1f4' }, ticks: { stroke: '#e1e5eb' } },
          {
            stroke: '#5b6675',
            grid: { stroke: '#eef1f4' },
            ticks: { stroke: '#e1e5eb' },
            size: 56,
            label: options.yLabel,
            labelSize: 18,
            values: options.yValues,
          },
        ],
        cursor: { drag: { x: true, y: false } },
        legend: { live: true },
        series: [{ label: 'time' }, ...options.series],
      },
      data,
      container,
    );
  };
  const observer = new ResizeObserver(() => {
    if (plot) plot.setSize({ width: Math.max(240, Math.floor(container.clientWidth)), height });
  });
  observer.observe(container);
  return {
    update(data) {
      const UPlot = loadedUPlot();
      if (!UPlot) {
        pending = data;
        return;
      }
      if (!plot) plot = make(UPlot, pending || data);
      plot.setData(data);
    },
    destroy() {
      observer.disconnect();
      if (plot) plot.destroy();
      plot = null;
    },
  };
}

/**
 * @param {string} label
 * @param {string} stroke
 * @param {uPlot.Series} extra
 * @returns {uPlot.Series}
 */
const line = (label, stroke, extra) =>
  Object.assign({ label, stroke, width: 2, spanGaps: false, points: { show: false } }, extra);

/**
 * Share of real traffic over time; anomalous and inconclusive ticks are marked as points.
 * Data: [x, share, anomaly share or null, inconclusive share or null].
 * @param {HTMLElement} container
 */
export function shareChart(container) {
  return timeChart(container, {
    height: 220,
    yLabel: 'canary share %',
    // Room above the highest share, so 5 % to 15 % is not a flat line at the bottom of 0-100.
    yRange: (u, min, max) => [0, Math.min(100, Math.max(10, Math.ceil((max * 1.25) / 5) * 5))],
    series: [
      line('canary share %', CANARY, {
        width: 2.5,
        fill: 'rgba(234,88,12,0.08)',
        value: (u, v) => withUnit(v, ' %'),
      }),
      {
        label: 'anomaly',
        stroke: '#b91c1c',
        fill: '#b91c1c',
        paths: () => null,
        points: { show: true, size: 11, fill: '#b91c1c' },
        value: (u, v) => (v === null ? '' : 'anomaly'),
      },
      {
        label: 'inconclusive',
        stroke: '#64748b',
        fill: '#94a3b8',
        paths: () => null,
        points: { show: true, size: 8, fill: '#94a3b8' },
        value: (u, v) => (v === null ? '' : 'inconclusive'),
      },
    ],
  });
}

/**
 * Baseline vs canary latency percentiles for one action.
 * Data: [x, baseline p50, p90, p99, canary p50, p90, p99].
 * @param {HTMLElement} container
 */
export function latencyChart(container) {
  /** @type {uPlot.Series[]} */
  const series = [];
  for (const [target, color] of /** @type {const} */ ([
    ['baseline', BASELINE],
    ['canary', CANARY],
  ])) {
    for (const p of /** @type {const} */ (['p50', 'p90', 'p99']))
      series.push(
        line(`${target} ${p}`, color, {
          dash: DASH[p],
          width: WIDTH[p],
          value: (u, v) => withUnit(v, ' ms'),
        }),
      );
  }
  return timeChart(container, { height: 200, yLabel: 'latency ms', series });
}

/**
 * Baseline vs canary error rate (percent of requests) for one action.
 * Data: [x, baseline errors %, canary errors %].
 * @param {HTMLElement} container
 */
export function errorChart(container) {
  return timeChart(container, {
    height: 150,
    yLabel: 'errors %',
    series: [
      line('baseline errors', BASELINE, { value: (u, v) => withUnit(v, ' %') }),
      line('canary errors', CANARY, { value: (u, v) => withUnit(v, ' %') }),
    ],
    yRange: (u, min, max) => [0, Math.max(1, max * 1.2)],
  });
}
