import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { Db } from 'mongodb';
import { analyzeTick } from '../analysis/engine';
import type { RolloutSpec } from '../rollout/spec';
import type { Verdict } from '../rollout/verdict';
import { isPlainObject, type Json } from '../core/validation';
import { validateAnalysisOptions } from './index';
import { SampleStore } from './sample-store';

export interface AnalyzeRequest {
  rolloutId: string;
  tick: number;
  analysis: RolloutSpec['analysis'];
  /** The engine's compact state after the previous tick (null on the first). */
  state: Json;
  /**
   * The traffic regime this tick belongs to: index 1 at the first tick, +1 whenever the canary's
   * applied share of real traffic changed. Evidence is scoped to it. Absent: the whole rollout
   * is one regime.
   */
  regime?: AnalyzeRegime;
  /**
   * The actions of the sampled profiles, known before the first look: they fix the multiplicity
   * correction (else `analysis.actions`, else `analysis.maxActions` slots).
   */
  actions?: string[];
}

export interface AnalyzeRegime {
  index: number;
  sinceTick: number;
  /** The canary's share of real traffic in this regime, in [0, 1]. */
  share: number;
}

/** The port the analyze activity calls. */
export interface Analyzer {
  analyze(request: AnalyzeRequest): Promise<{ verdict: Verdict; state: Json }>;
}

/**
 * The Analyzer port: the I/O half of the analysis engine. It reads the tick's samples that the
 * collector stored, runs the pure engine (analysis/engine.ts) with the configured method over
 * the state the rollout carries, and returns the verdict and the next state. The state travels
 * through workflow history on every tick, so it is carried deflated (62 KB of JSON becomes ~35 KB, base64 included).
 */
export class RolloutAnalyzer implements Analyzer {
  private readonly store: SampleStore;

  constructor(db: Db) {
    this.store = new SampleStore(db);
  }

  async analyze(request: AnalyzeRequest): Promise<{ verdict: Verdict; state: Json }> {
    const { config } = validateAnalysisOptions(
      request.analysis.options,
      request.analysis.method,
      request.analysis.alpha,
    );
    const record = await this.store.load(request.rolloutId, request.tick);
    const result = analyzeTick(config, unpackState(request.state), request.tick, record?.samples ?? [], {
      ...(request.regime ? { regime: request.regime } : {}),
      ...(request.actions ? { actions: request.actions } : {}),
    });
    const notes = record
      ? record.missing.map((outcome) => `source ${outcome.source} gave no data: ${outcome.reason}`)
      : [`no samples were collected for tick ${request.tick}`];
    const verdict: Verdict = { ...result.verdict, reasons: [...result.verdict.reasons, ...notes] };
    return { verdict, state: packState(result.state as unknown as Json) };
  }
}

export function packState(state: Json): Json {
  return { v: 1, deflated: deflateRawSync(Buffer.from(JSON.stringify(state))).toString('base64') };
}

export function unpackState(state: Json): unknown {
  if (isPlainObject(state) && typeof state.deflated === 'string') {
    try {
      return JSON.parse(inflateRawSync(Buffer.from(state.deflated, 'base64')).toString('utf8')) as unknown;
    } catch {
      return { unreadable: true }; // the engine starts afresh and says why
    }
  }
  return state;
}
