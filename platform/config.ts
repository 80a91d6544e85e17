/**
 * A process's settings from its environment, read in one place through a declaration: each
 * variable has a name, a parser that states its rule, a default, and the names it had before.
 * One pass reports every bad variable as a ValidationError whose field is the variable's name
 * (`DASHBOARD_PORT: must be an integer between 0 and 65535`), so a process stops before it listens.
 *
 * Naming: `CANARY_*` for what several processes read and must agree on (the database, the
 * ontology, retention); `<COMPONENT>_*` for one component's own settings (DASHBOARD_*,
 * PROFILES_API_*, LOADGEN_*, WORKER_*); Temporal's own `TEMPORAL_*` and the common `LOG_LEVEL`
 * as they are.
 */
import { ValidationError, type FieldIssue } from '../core/validation';
import { createLogger, type Logger } from './logger';

/** Turns a variable's text into its value, or throws a ValidationError naming `name`. */
export type Parser<T> = (text: string, name: string) => T;

export interface Variable<T> {
  name: string;
  parse: Parser<T>;
  default?: T;
  /** Unset is an error (`must be set`); for what has no sensible default. */
  required?: boolean;
  /** Names the variable had before: still read, with a warning, for one release. */
  legacy?: readonly string[];
}

// `any`: a declaration mixes variables of every value type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Declaration = Record<string, Variable<any>>;

/** What readConfig returns: a variable with a default, or a required one, always has a value. */
export type ConfigOf<D extends Declaration> = {
  [K in keyof D]: D[K] extends Variable<infer T>
    ? D[K] extends { default: T } | { required: true }
      ? T
      : T | undefined
    : never;
};

export function variable<T>(
  name: string,
  parse: Parser<T>,
  options: { default: T; legacy?: readonly string[] },
): Variable<T> & { default: T };
export function variable<T>(
  name: string,
  parse: Parser<T>,
  options: { required: true; legacy?: readonly string[] },
): Variable<T> & { required: true };
export function variable<T>(
  name: string,
  parse: Parser<T>,
  options?: { legacy?: readonly string[] },
): Variable<T>;
export function variable<T>(
  name: string,
  parse: Parser<T>,
  options: { default?: T; required?: true; legacy?: readonly string[] } = {},
): Variable<T> {
  return { name, parse, ...options };
}

/** The same variable under the names it had in one process before (each process had its own). */
export function withLegacy<V extends Variable<unknown>>(declared: V, ...legacy: string[]): V {
  return { ...declared, legacy };
}

export interface ReadOptions<D extends Declaration> {
  /** Where deprecation warnings go (default: a logger named `config`, created when needed). */
  logger?: Pick<Logger, 'warn'>;
  /** Command-line flags that win over the environment, named by the flag: `{ port: ['--port', text] }`. */
  flags?: { [K in keyof D]?: readonly [flag: string, text: string | undefined] };
}

/**
 * Reads every declared variable from `env`. An empty value counts as unset (compose files write
 * `NAME=` to clear one). A legacy name is read only when the new one is unset; either way its
 * presence is logged once as a warning that names the new variable.
 */
export function readConfig<D extends Declaration>(
  env: NodeJS.ProcessEnv,
  declaration: D,
  options: ReadOptions<D> = {},
): ConfigOf<D> {
  const { logger } = options;
  const flags: ReadOptions<D>['flags'] = options.flags ?? {};
  const issues: FieldIssue[] = [];
  const config: Record<string, unknown> = {};
  // Created only to warn: LOG_LEVEL is not read unless there is something to say.
  const warner = {
    warn: (...args: Parameters<Logger['warn']>) => (logger ?? createLogger('config')).warn(...args),
  };
  for (const [key, declared] of Object.entries(declaration)) {
    const flag = flags[key as keyof D];
    const source =
      flag?.[1] !== undefined ? { name: flag[0], text: flag[1] } : sourceOf(env, declared, warner);
    if (source === undefined) {
      if (declared.required) issues.push({ field: declared.name, rule: 'must be set' });
      config[key] = declared.default;
      continue;
    }
    try {
      config[key] = declared.parse(source.text, source.name);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      issues.push(...error.issues);
    }
  }
  if (issues.length > 0) throw new ValidationError(issues);
  return config as ConfigOf<D>;
}

function sourceOf(
  env: NodeJS.ProcessEnv,
  declared: Variable<unknown>,
  logger: Pick<Logger, 'warn'>,
): { name: string; text: string } | undefined {
  const current = nonEmpty(env[declared.name]);
  for (const legacy of declared.legacy ?? []) {
    if (nonEmpty(env[legacy]) === undefined) continue;
    if (current === undefined) {
      logger.warn(
        { variable: legacy, replacement: declared.name },
        `${legacy} is deprecated and will stop working in the next release: set ${declared.name} instead`,
      );
      return { name: legacy, text: env[legacy] as string };
    }
    logger.warn(
      { variable: legacy, replacement: declared.name },
      `${legacy} is ignored because ${declared.name} is set: remove ${legacy}`,
    );
  }
  return current === undefined ? undefined : { name: declared.name, text: current };
}

const nonEmpty = (text: string | undefined) => (text === undefined || text === '' ? undefined : text);

/** Throws the ValidationError a parser reports: `name: rule`. */
export function reject(name: string, rule: string): never {
  throw new ValidationError([{ field: name, rule }]);
}

// Parsers. Each states its rule in the words the error shows.

export const text: Parser<string> = (value) => value;

export function matching(pattern: RegExp, rule: string): Parser<string> {
  return (value, name) => (pattern.test(value) ? value : reject(name, rule));
}

export function integer(bounds: { min: number; max?: number }): Parser<number> {
  const rule =
    bounds.max === undefined
      ? `must be an integer >= ${bounds.min}`
      : `must be an integer between ${bounds.min} and ${bounds.max}`;
  return (value, name) => {
    const number = /^\s*-?\d+\s*$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(number) || number < bounds.min || number > (bounds.max ?? Infinity))
      return reject(name, rule);
    return number;
  };
}

/** A TCP port to listen on; 0 asks the system for any free one. */
export const port: Parser<number> = integer({ min: 0, max: 65535 });

export const boolean: Parser<boolean> = (value, name) => {
  if (value === 'true') return true;
  if (value === 'false') return false;
  return reject(name, 'must be true or false');
};

export function oneOf<T extends string>(values: readonly T[]): Parser<T> {
  return (value, name) =>
    (values as readonly string[]).includes(value)
      ? (value as T)
      : reject(name, `must be one of ${values.join(', ')}`);
}

/** A bearer token or other secret: long enough not to be guessed. */
export function secret(minLength = 16): Parser<string> {
  return (value, name) =>
    value.length >= minLength ? value : reject(name, `must be at least ${minLength} characters`);
}

export const httpUrl: Parser<string> = matching(
  /^https?:\/\/[^\s/?#]+(\/[^\s]*)?$/,
  'must be an http:// or https:// URL',
);

// Variables several processes read. They must agree: set them once for every process.

export const MONGO_VARIABLES = {
  mongoUri: variable(
    'CANARY_MONGO_URI',
    matching(/^mongodb(\+srv)?:\/\//, 'must be a mongodb:// or mongodb+srv:// URI'),
    { default: 'mongodb://127.0.0.1:27017/' },
  ),
  mongoDb: variable(
    'CANARY_MONGO_DB',
    matching(/^[A-Za-z0-9_-]{1,63}$/, 'must be a database name (1-63 of A-Z a-z 0-9 _ -)'),
    { default: 'canary' },
  ),
};

/** The action ontology file: the writer of profiles and the prober that plays them must agree. */
export const ONTOLOGY_VARIABLE = variable('CANARY_ONTOLOGY', text);

/** pino's levels; `silent` logs nothing. */
export const LOG_LEVEL_VARIABLE = variable(
  'LOG_LEVEL',
  oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
  { default: 'info' },
);

/** How long per-tick data (probe results, samples, alert deliveries) is kept. */
export const RETENTION_VARIABLE = variable('CANARY_RETENTION_DAYS', integer({ min: 1, max: 3650 }), {
  default: 30,
});
