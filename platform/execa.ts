/**
 * execa >= 6 ships only ES modules. A dynamic import() loads it from our CommonJS output in
 * every runner we use: Node (tsc keeps import() under module nodenext), tsx, and jest (swc turns
 * it into a require of the swc-compiled package).
 */
import type * as ExecaModule from 'execa';

export type Execa = typeof ExecaModule;

let loading: Promise<Execa> | undefined;

export function loadExeca(): Promise<Execa> {
  loading ??= import('execa');
  return loading;
}
