// @ts-check
// The API's answers as the page reads them (types only: nothing imports this file at run time).
// The server defines them in dashboard/rollout-directory.ts, dashboard/read-model.ts and
// rollout/types.ts; only the fields the page uses are listed here.

/**
 * GET /api/config
 * @typedef {object} PageConfig
 * @property {boolean} controls Whether the server has an API token, so controls can work at all.
 * @property {number} refreshMs
 * @property {string | null} temporalUiUrl
 */

/** @typedef {{ tick: number, status: string, notes: string[] }} VerdictDigest */

/**
 * A row of GET /api/rollouts, and the summary of one rollout.
 * @typedef {object} RolloutSummary
 * @property {string} rolloutId
 * @property {string} service
 * @property {string} version
 * @property {string} phase
 * @property {number | null} share
 * @property {number | null} tick
 * @property {number} startedAt
 * @property {number | null} closedAt
 * @property {string} execution
 * @property {VerdictDigest | null} lastVerdict
 * @property {number | null} anomalyCount
 * @property {string | null} pausedReason
 * @property {string} [statusError]
 */

/**
 * GET /api/rollouts/:id
 * @typedef {object} RolloutDetail
 * @property {RolloutSummary} summary
 * @property {RolloutStatus | null} status
 * @property {SpecOverview | null} spec
 * @property {{ count: number, mix: Record<string, number> } | null} profiles
 * @property {string} runId
 * @property {number} historyLength
 * @property {{ temporalUi: string | null }} links
 */

/**
 * The workflow's status query.
 * @typedef {object} RolloutStatus
 * @property {number | null} appliedShare
 * @property {number | null} nextTickAt
 * @property {string[]} reasons
 * @property {Record<string, number>} policy
 */

/**
 * @typedef {object} SpecOverview
 * @property {{ baseline: { url: string }, canary: { url: string } }} targets
 * @property {string} router
 * @property {{ durationMs: number, concurrency: number }} probe
 * @property {number} intervalMs
 * @property {{ method: string, alpha: number }} analysis
 * @property {string} onAnomaly
 * @property {string[]} alertSinks
 * @property {{ criteria: unknown, sampleSize: number }} profiles
 */

/**
 * GET /api/rollouts/:id/ticks
 * @typedef {object} TickRecord
 * @property {number} tick
 * @property {number} finishedAt
 * @property {string} phase
 * @property {{ status: string, reasons: string[] }} verdict
 * @property {string} action
 * @property {number} shareBefore
 * @property {number} shareAfter
 * @property {string} reason
 * @property {{ requests: ByTarget, errors: ByTarget } | null} probe
 */

/** @typedef {{ baseline: number, canary: number }} ByTarget */

/**
 * GET /api/rollouts/:id/investigations
 * @typedef {object} Investigation
 * @property {number} tick
 * @property {number} openedAt
 * @property {number} shareBefore
 * @property {number} shareAfter
 * @property {string} action
 * @property {Anomaly[]} anomalies
 */

/**
 * @typedef {object} Anomaly
 * @property {string} metric
 * @property {string} [action]
 * @property {number} effect
 * @property {[number, number]} interval
 * @property {string} statistic
 * @property {boolean} critical
 * @property {string} summary
 * @property {string} [target]
 * @property {number} [quantile]
 * @property {number} [pValue]
 * @property {{ fromTick: number, toTick: number }} [window]
 * @property {{ regime: number, fromTick: number, samples: ByTarget }} [evidence] Samples in the current regime.
 * @property {AnomalyExemplars} [exemplars]
 */

/**
 * @typedef {object} AnomalyExemplars
 * @property {RequestExemplar[]} slowest
 * @property {RequestExemplar[]} failed
 * @property {number} fromTick
 * @property {number} toTick
 * @property {string} [reproduce] A `canary loadgen ...` line.
 */

/**
 * @typedef {object} RequestExemplar
 * @property {string} profileId
 * @property {string} method
 * @property {string} path
 * @property {number} status 0: no response.
 * @property {number} latencyMs
 * @property {string} target
 * @property {string} [error]
 */

/**
 * GET /api/rollouts/:id/probes: one (tick, action, target) point.
 * @typedef {object} ProbePoint
 * @property {number} tick
 * @property {number} at End of the probe window, ms since epoch.
 * @property {string} action
 * @property {string} target
 * @property {number | null} errorRate
 * @property {number | null} p50Ms
 * @property {number | null} p90Ms
 * @property {number | null} p99Ms
 */

export {};
