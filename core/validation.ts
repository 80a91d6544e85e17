/**
 * Field-level validation shared by the edge (CLI, API) and the workflow's update validators.
 * Pure and deterministic: it runs inside Temporal's workflow sandbox too.
 */

export interface FieldIssue {
  /** Dotted path of the offending field, e.g. `policy.stepUp` or `alerts.sinks[1].kind`. */
  field: string;
  /** The rule it broke, phrased so `${field} ${rule}` reads as a sentence. */
  rule: string;
}

export class ValidationError extends Error {
  constructor(readonly issues: readonly FieldIssue[]) {
    super(issues.map((issue) => `${issue.field}: ${issue.rule}`).join('; '));
    this.name = 'ValidationError';
  }
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Collects issues while reading an untrusted object, so one pass reports every bad field. */
export class FieldReader {
  readonly issues: FieldIssue[] = [];

  fail(field: string, rule: string): undefined {
    this.issues.push({ field, rule });
    return undefined;
  }

  /** Reports keys that are not in `allowed` (typos must not pass silently). */
  onlyKeys(object: Record<string, unknown>, allowed: readonly string[], prefix: string): void {
    for (const key of Object.keys(object)) {
      if (!allowed.includes(key))
        this.fail(join(prefix, key), `is not a known field (known: ${allowed.join(', ')})`);
    }
  }

  object(value: unknown, field: string): Record<string, unknown> | undefined {
    if (!isPlainObject(value)) return this.fail(field, 'must be an object');
    return value;
  }

  optionalObject(value: unknown, field: string): Record<string, unknown> | undefined {
    if (value === undefined) return {};
    return this.object(value, field);
  }

  string(value: unknown, field: string, pattern?: RegExp, patternRule?: string): string | undefined {
    if (typeof value !== 'string' || value.length === 0)
      return this.fail(field, 'must be a non-empty string');
    if (pattern && !pattern.test(value))
      return this.fail(field, patternRule ?? `must match ${String(pattern)}`);
    return value;
  }

  optionalString(value: unknown, field: string): string | undefined {
    if (value === undefined) return undefined;
    return this.string(value, field);
  }

  number(
    value: unknown,
    field: string,
    bounds: { min?: number; max?: number; exclusiveMin?: number; integer?: boolean },
    fallback?: number,
  ): number | undefined {
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value))
      return this.fail(field, 'must be a finite number');
    if (bounds.integer && !Number.isInteger(value)) return this.fail(field, 'must be an integer');
    if (bounds.min !== undefined && value < bounds.min) return this.fail(field, `must be >= ${bounds.min}`);
    if (bounds.exclusiveMin !== undefined && value <= bounds.exclusiveMin) {
      return this.fail(field, `must be > ${bounds.exclusiveMin}`);
    }
    if (bounds.max !== undefined && value > bounds.max) return this.fail(field, `must be <= ${bounds.max}`);
    return value;
  }

  oneOf<T extends string>(value: unknown, field: string, options: readonly T[], fallback?: T): T | undefined {
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== 'string' || !(options as readonly string[]).includes(value)) {
      return this.fail(field, `must be one of ${options.join(', ')}`);
    }
    return value as T;
  }

  /** A duration as milliseconds, or a string like `500ms`, `2s`, `1m`, `1h`. */
  duration(
    value: unknown,
    field: string,
    bounds: { minMs: number; maxMs: number },
    fallbackMs?: number,
  ): number | undefined {
    if (value === undefined && fallbackMs !== undefined) return fallbackMs;
    const ms = parseDuration(value);
    if (ms === undefined)
      return this.fail(field, 'must be a duration such as 500ms, 30s, 2m or 1h (or milliseconds)');
    if (ms < bounds.minMs || ms > bounds.maxMs) {
      return this.fail(
        field,
        `must be between ${formatDuration(bounds.minMs)} and ${formatDuration(bounds.maxMs)}`,
      );
    }
    return ms;
  }

  throwIfAny(): void {
    if (this.issues.length > 0) throw new ValidationError(this.issues);
  }
}

export function join(prefix: string, key: string | number): string {
  if (typeof key === 'number') return `${prefix}[${key}]`;
  // An empty or blank key still names a visible field: `[""]`, `spec[" "]`.
  if (key.trim() === '' || key.trim() !== key) return `${prefix}[${JSON.stringify(key)}]`;
  return prefix ? `${prefix}.${key}` : key;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * (DURATION_UNITS[match[2] as string] as number));
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** Deep copy of JSON-compatible data; rejects functions, symbols, non-finite numbers and cycles. */
export function asJson(value: unknown, field: string, reader: FieldReader, depth = 0): Json | undefined {
  if (depth > 16) return reader.fail(field, 'is nested too deeply (max 16 levels)');
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number')
    return Number.isFinite(value) ? value : reader.fail(field, 'must be a finite number');
  if (Array.isArray(value)) {
    const out: Json[] = [];
    value.forEach((item, index) => {
      const copy = asJson(item, join(field, index), reader, depth + 1);
      if (copy !== undefined) out.push(copy);
    });
    return out;
  }
  if (isPlainObject(value)) {
    const out: Record<string, Json> = {};
    for (const [key, item] of Object.entries(value)) {
      const copy = asJson(item, join(field, key), reader, depth + 1);
      if (copy !== undefined) out[key] = copy;
    }
    return out;
  }
  return reader.fail(field, 'must be JSON data');
}
