// @ts-check
// The dashboard's API as the page calls it. The bearer token is kept in this tab's
// sessionStorage and sent with every request once set.
/** @import { Investigation, PageConfig, ProbePoint, RolloutDetail, RolloutSummary, TickRecord } from './api-types.js' */

const TOKEN_KEY = 'canary.apiToken';

/** @typedef {{ field: string, rule: string }} Issue */

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {{ message?: string, issues?: Issue[] } | null} body the API's error answer, if it was JSON
   */
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    /** @type {Issue[]} */
    this.issues = (body && body.issues) || [];
  }
}

/**
 * What went wrong, for the page to show.
 * @param {unknown} error
 */
export const errorMessage = (error) => (error instanceof Error ? error.message : String(error));

export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

/** @param {string} value */
export function saveToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * @param {string} path
 * @param {{ method: string, body: unknown }} [options]
 * @returns {Promise<unknown>} the JSON answer; an ApiError for any status but 2xx
 */
async function request(path, options) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' };
  /** @type {RequestInit} */
  const init = { method: (options && options.method) || 'GET', headers };
  const bearer = token();
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (options && options.body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(options.body);
  }
  const response = await fetch(path, init);
  const body = /** @type {unknown} */ (await response.json().catch(() => null));
  if (!response.ok)
    throw new ApiError(response.status, /** @type {ConstructorParameters<typeof ApiError>[1]} */ (body));
  return body;
}

/**
 * The page's settings: the defaults until loadConfig() has read the server's.
 * @type {PageConfig}
 */
export const config = { controls: false, refreshMs: 2000, temporalUiUrl: null };

export async function loadConfig() {
  Object.assign(config, /** @type {PageConfig} */ (await request('/api/config')));
}

/** @param {string} rolloutId */
const rolloutPath = (rolloutId) => `/api/rollouts/${encodeURIComponent(rolloutId)}`;

/** @param {string} status `running` or `all` */
export const listRollouts = (status) =>
  /** @type {Promise<{ rollouts: RolloutSummary[] }>} */ (
    request(`/api/rollouts?status=${status}&limit=200`)
  );

/** @param {string} rolloutId */
export const rolloutDetail = (rolloutId) =>
  /** @type {Promise<RolloutDetail>} */ (request(rolloutPath(rolloutId)));

/**
 * The tick log after `afterTick`, oldest first.
 * @param {string} rolloutId
 * @param {number} afterTick
 */
export const tickLog = (rolloutId, afterTick) =>
  /** @type {Promise<{ ticks: TickRecord[] }>} */ (
    request(`${rolloutPath(rolloutId)}/ticks?afterTick=${afterTick}`)
  );

/**
 * Probe points of the ticks after `afterTick`.
 * @param {string} rolloutId
 * @param {number} afterTick
 */
export const probePoints = (rolloutId, afterTick) =>
  /** @type {Promise<{ points: ProbePoint[] }>} */ (
    request(`${rolloutPath(rolloutId)}/probes?afterTick=${afterTick}`)
  );

/** @param {string} rolloutId */
export const investigations = (rolloutId) =>
  /** @type {Promise<{ investigations: Investigation[] }>} */ (
    request(`${rolloutPath(rolloutId)}/investigations`)
  );

/**
 * POSTs a control (pause, resume, rollback, promote); the token must be set.
 * @param {string} rolloutId
 * @param {string} kind
 * @param {{ reason?: string }} body
 */
export async function sendControl(rolloutId, kind, body) {
  await request(`${rolloutPath(rolloutId)}/${kind}`, { method: 'POST', body });
}
