/**
 * Exemplars: a few concrete requests behind a (target, action)'s figures, the slowest successes
 * and the slowest failures, so a person can see and replay what a regression looks like. Bounded
 * (EXEMPLARS_KEPT of each per interval and after every merge) and without secrets: only the
 * profile id, method, path and outcome are kept, never headers or bodies, and query values that
 * look like credentials are replaced before anything is stored. No I/O here.
 */

import type { ActionExemplars, RequestExemplar } from '../rollout/exemplars';

export const EXEMPLARS_KEPT = 5;

export type { ActionExemplars, RequestExemplar } from '../rollout/exemplars';

/** Query parameter names whose values are credentials, or may be. */
const SECRET_NAME =
  /(token|secret|passw|pwd|api[-_]?key|access[-_]?key|^key$|auth|sig(nature)?$|session|sid$|cookie|credential|jwt|bearer|^code$)/i;
/** Values that look like a credential whatever their name: JWTs and long opaque strings. */
const SECRET_VALUE = /^(eyJ[\w-]+\.[\w-]+\.[\w-]*|[A-Za-z0-9+/_=-]{32,})$/;

/** The path with every credential-like query value replaced; the path itself is kept. */
export function scrubPath(path: string): string {
  const at = path.indexOf('?');
  if (at < 0) return path;
  const query = path
    .slice(at + 1)
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      if (equals < 0) return SECRET_VALUE.test(safeDecode(pair)) ? 'REDACTED' : pair;
      const name = safeDecode(pair.slice(0, equals));
      const value = safeDecode(pair.slice(equals + 1));
      return SECRET_NAME.test(name) || SECRET_VALUE.test(value) ? `${pair.slice(0, equals)}=REDACTED` : pair;
    })
    .join('&');
  return `${path.slice(0, at)}?${query}`;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

/** Slowest first, then by profile and path, so merged lists do not depend on input order. */
function slowerFirst(a: RequestExemplar, b: RequestExemplar): number {
  if (a.latencyMs !== b.latencyMs) return b.latencyMs - a.latencyMs;
  if (a.profileId !== b.profileId) return a.profileId < b.profileId ? -1 : 1;
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

/** The `EXEMPLARS_KEPT` slowest of a list. */
function keepSlowest(list: RequestExemplar[]): RequestExemplar[] {
  return list.sort(slowerFirst).slice(0, EXEMPLARS_KEPT);
}

/**
 * The recording side, owned by one ActionRecorder: a request becomes an exemplar (one small
 * object) only when it is slower than the fastest one kept, so after the first few requests
 * nearly every call is one comparison.
 */
export class ExemplarKeeper {
  private slowest: RequestExemplar[] = [];
  private failed: RequestExemplar[] = [];

  constructor(private readonly target: string) {}

  offerSuccess(micros: number, status: number, profileId: string, method: string, path: string): void {
    if (!this.wouldKeep(this.slowest, micros)) return;
    this.slowest = this.insert(this.slowest, { profileId, method, path, status, micros });
  }

  offerFailure(
    error: string,
    micros: number,
    status: number,
    profileId: string,
    method: string,
    path: string,
  ): void {
    if (!this.wouldKeep(this.failed, micros)) return;
    this.failed = this.insert(this.failed, { profileId, method, path, status, micros, error });
  }

  /** What was kept since the last drain (undefined if nothing), and starts afresh. */
  drain(): ActionExemplars | undefined {
    if (this.slowest.length === 0 && this.failed.length === 0) return undefined;
    const kept = { slowest: this.slowest, failed: this.failed };
    this.slowest = [];
    this.failed = [];
    return kept;
  }

  private wouldKeep(list: RequestExemplar[], micros: number): boolean {
    const fastest = list[EXEMPLARS_KEPT - 1];
    return fastest === undefined || Math.round(micros) / 1000 >= fastest.latencyMs;
  }

  private insert(
    list: RequestExemplar[],
    request: Omit<RequestExemplar, 'latencyMs' | 'target' | 'path'> & { micros: number; path: string },
  ): RequestExemplar[] {
    const { micros, path, ...rest } = request;
    const exemplar: RequestExemplar = {
      ...rest,
      path: scrubPath(path),
      latencyMs: Math.round(micros) / 1000,
      target: this.target,
    };
    return keepSlowest([...list, exemplar]);
  }
}

/** Exact-enough merge of several intervals', threads' or shards' exemplars: the slowest stay. */
export function mergeExemplars(lists: readonly (ActionExemplars | undefined)[]): ActionExemplars | undefined {
  const present = lists.filter((list): list is ActionExemplars => list !== undefined);
  if (present.length === 0) return undefined;
  return {
    slowest: keepSlowest(present.flatMap((list) => list.slowest)),
    failed: keepSlowest(present.flatMap((list) => list.failed)),
  };
}
