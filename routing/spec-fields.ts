import { type FieldReader, ValidationError } from '../core/validation';

/** Spec fields several routers share, read the same way everywhere. */

export interface StickySpec {
  by: 'cookie' | 'header';
  name: string;
}

export function readStickySpec(r: FieldReader, value: unknown, field: string): StickySpec | undefined {
  if (value === undefined) return undefined;
  const sticky = r.object(value, field);
  if (!sticky) return undefined;
  r.onlyKeys(sticky, ['by', 'name'], field);
  const by = r.oneOf(sticky.by, `${field}.by`, ['cookie', 'header'] as const);
  const name = r.string(
    sticky.name,
    `${field}.name`,
    /^[A-Za-z][A-Za-z0-9_-]*$/,
    'must be a cookie or header name',
  );
  return by && name ? { by, name } : undefined;
}

/** Per call to the router's API. */
export function readCallTimeout(r: FieldReader, value: unknown, field: string): number | undefined {
  return r.duration(value, field, { minMs: 100, maxMs: 60_000 }, 2000);
}

/** `Bearer <token>` from the worker's environment variable `tokenEnv` (`router.tokenEnv`). */
export function bearerFromTokenEnv(env: NodeJS.ProcessEnv, tokenEnv: string): string {
  const token = env[tokenEnv];
  if (!token) {
    throw new ValidationError([
      { field: 'router.tokenEnv', rule: `environment variable ${tokenEnv} is not set on the worker` },
    ]);
  }
  return `Bearer ${token}`;
}
