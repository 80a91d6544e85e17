/**
 * Readers for the options every sink kind shares: a name, a timeout, secrets by environment
 * variable name, label-like string maps. Issues name the field as it sits in the rollout spec.
 */
import { FieldReader, isPlainObject, join } from '../core/validation';

const ENV_NAME = /^[A-Z_][A-Z0-9_]{0,127}$/;
const SINK_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
const HTTP_URL = /^https?:\/\/[^\s/?#]+(\/[^\s]*)?$/;

/** Keys that must never carry a secret inline: the spec is stored in workflow history and logs. */
const INLINE_SECRETS = ['secret', 'token', 'password', 'webhookUrl', 'bearerToken', 'authorization'];

/** Reports unknown keys, and secrets given inline with a rule that says where they belong. */
export function checkSinkKeys(
  r: FieldReader,
  spec: Record<string, unknown>,
  allowed: readonly string[],
  field: string,
): void {
  for (const key of INLINE_SECRETS) {
    if (key in spec)
      r.fail(
        join(field, key),
        'must not be given inline (the spec is stored in workflow history): put it in an environment variable of the worker and name that variable instead',
      );
  }
  for (const key of Object.keys(spec)) {
    if (!allowed.includes(key) && !INLINE_SECRETS.includes(key))
      r.fail(join(field, key), `is not a known field (known: ${allowed.join(', ')})`);
  }
}

export function readSinkName(r: FieldReader, value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  return r.string(value, field, SINK_NAME, 'must be 1-63 of a-z 0-9 _ . -, starting with a letter or digit');
}

export function readTimeoutMs(r: FieldReader, value: unknown, field: string): number | undefined {
  // At most 20 s: a send must fit, with its retry bookkeeping, in the notify activity's 30 s.
  return r.duration(value, field, { minMs: 100, maxMs: 20_000 }, 5000);
}

export function readEnvName(r: FieldReader, value: unknown, field: string): string | undefined {
  return r.string(value, field, ENV_NAME, 'must be an environment variable name (A-Z, 0-9, _)');
}

export function readHttpUrl(r: FieldReader, value: unknown, field: string): string | undefined {
  const url = r.string(value, field, HTTP_URL, 'must be an http:// or https:// URL');
  return url?.replace(/\/+$/, '');
}

/** A map of short strings (labels, headers); `keyPattern` says which keys are allowed. */
export function readStringMap(
  r: FieldReader,
  value: unknown,
  field: string,
  keyPattern: RegExp,
  keyRule: string,
): Record<string, string> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) {
    r.fail(field, 'must be an object of strings');
    return {};
  }
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    if (!keyPattern.test(key)) r.fail(join(field, key), keyRule);
    else if (typeof item !== 'string' || item.length > 1024)
      r.fail(join(field, key), 'must be a string of at most 1024 characters');
    else out[key] = item;
  }
  return out;
}

/** The value of a secret's environment variable when the sink sends (the worker's environment). */
export function secretFromEnv(env: NodeJS.ProcessEnv, name: string, field: string): string {
  const value = env[name];
  if (!value) {
    const r = new FieldReader();
    r.fail(field, `names ${name}, which is not set in the worker's environment`);
    r.throwIfAny();
  }
  return value as string;
}
