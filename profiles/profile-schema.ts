/**
 * The profile data model: TypeBox schemas (published in the OpenAPI document and used to check
 * every write, HTTP or not), the semantic checks a schema cannot express (the ontology, time
 * order, limits) and the derived fields computed on write.
 */
import { Type, type Static } from '@sinclair/typebox';
import { checkActionData, type Ontology } from './ontology';
import { ValidationError, join, type FieldIssue } from '../core/validation';
import { schemaIssues } from '../platform/http/schema-issues';

/** Bumped when the stored format changes; readers migrate older versions. */
export const PROFILE_SCHEMA_VERSION = 1;

export const DEVICE_TYPES = ['mobile', 'desktop', 'tablet', 'bot', 'tv', 'wearable', 'other'] as const;
export type DeviceType = (typeof DEVICE_TYPES)[number];
export const ACTIVITY_LEVELS = ['low', 'medium', 'high'] as const;
export type ActivityLevel = (typeof ACTIVITY_LEVELS)[number];

/** Actions per minute at or above which a profile counts as medium / high activity. */
export const ACTIVITY_THRESHOLDS = { medium: 2, high: 6 } as const;

/** Ids the API's own routes take (`GET /profiles/sample`, `/profiles/stats`): no profile may use them. */
export const RESERVED_USER_IDS = ['sample', 'stats'] as const;
export const USER_ID_PATTERN = `^(?!(?:${RESERVED_USER_IDS.join('|')})$)[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$`;
/** USER_ID_PATTERN in words, for the 400s. */
export const USER_ID_RULE =
  'must be 1-128 characters of A-Z a-z 0-9 . _ : @ - starting with a letter or digit, and not ' +
  `${RESERVED_USER_IDS.map((id) => `"${id}"`).join(' or ')} (reserved: /profiles/sample and /profiles/stats are routes)`;
export const COUNTRY_PATTERN = '^[A-Z]{2}$';
export const REGION_PATTERN = '^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$';
export const ACTION_PATTERN = '^[a-z][a-z0-9_]{0,63}$';
const DATA_KEY_PATTERN = '^[A-Za-z_][A-Za-z0-9_]{0,63}$';

/** Hard ceilings of the schema; deployments may configure lower limits (ProfileLimits). */
export const MAX_PATTERNS_HARD = 10_000;
const MAX_DATA_KEYS = 32;
const MAX_DATA_STRING = 2048;

export interface ProfileLimits {
  maxPatternsPerProfile: number;
}

export const DEFAULT_PROFILE_LIMITS: ProfileLimits = { maxPatternsPerProfile: 1000 };

export const PatternData = Type.Record(
  Type.String({ pattern: DATA_KEY_PATTERN }),
  Type.Union([Type.String({ maxLength: MAX_DATA_STRING }), Type.Number(), Type.Boolean(), Type.Null()]),
  {
    // TypeBox records accept keys outside the pattern unless told otherwise.
    additionalProperties: false,
    maxProperties: MAX_DATA_KEYS,
    description: 'Parameters of the action, as the ontology declares them (flat scalars).',
  },
);

export const PatternInput = Type.Object(
  {
    timestamp: Type.Union(
      [Type.Number({ minimum: 0, maximum: 7 * 86_400_000 }), Type.String({ minLength: 10, maxLength: 40 })],
      {
        description:
          'Offset in ms from the session start, or an ISO 8601 date-time (normalised to an offset).',
      },
    ),
    action: Type.String({ pattern: ACTION_PATTERN, description: 'An action of the ontology.' }),
    data: Type.Optional(PatternData),
  },
  { additionalProperties: false },
);

export const ResourceIntensity = Type.Object(
  {
    period_ms: Type.Integer({
      minimum: 1,
      maximum: 86_400_000,
      description: 'The period the figures cover.',
    }),
    cpu_ms: Type.Optional(Type.Number({ minimum: 0, description: 'Server CPU time caused in the period.' })),
    memory_mb: Type.Optional(
      Type.Number({ minimum: 0, description: 'Peak server memory attributed to the user.' }),
    ),
    network_bytes: Type.Optional(
      Type.Number({ minimum: 0, description: 'Bytes transferred in the period.' }),
    ),
  },
  { additionalProperties: false },
);

export const GeoLocation = Type.Object(
  {
    country: Type.String({ pattern: COUNTRY_PATTERN, description: 'ISO 3166-1 alpha-2 code (ZZ: unknown).' }),
    region: Type.Optional(
      Type.String({ pattern: REGION_PATTERN, description: 'e.g. an ISO 3166-2 code such as US-CA.' }),
    ),
  },
  { additionalProperties: false },
);

const DerivedOnInput = {
  schema_version: Type.Optional(Type.Literal(PROFILE_SCHEMA_VERSION)),
  activity_level: Type.Optional(
    Type.String({ description: 'Derived on write; a supplied value is ignored.' }),
  ),
  actions_per_minute: Type.Optional(Type.Number({ description: 'Derived on write; ignored.' })),
  actions: Type.Optional(Type.Array(Type.String(), { description: 'Derived on write; ignored.' })),
  pattern_count: Type.Optional(Type.Number({ description: 'Derived on write; ignored.' })),
  session_duration_ms: Type.Optional(Type.Number({ description: 'Derived on write; ignored.' })),
  updated_at: Type.Optional(Type.String({ description: 'Set by the store; ignored.' })),
};

export const ProfileInput = Type.Object(
  {
    user_id: Type.String({
      pattern: USER_ID_PATTERN,
      errorMessage: USER_ID_RULE,
      description: 'Unique; writes are idempotent by user_id.',
    }),
    behavioral_patterns: Type.Array(PatternInput, { minItems: 1, maxItems: MAX_PATTERNS_HARD }),
    resource_intensity: ResourceIntensity,
    geo_location: GeoLocation,
    device_type: Type.Union(DEVICE_TYPES.map((device) => Type.Literal(device))),
    ...DerivedOnInput,
  },
  { additionalProperties: false, $id: 'ProfileInput' },
);
export type ProfileInput = Static<typeof ProfileInput>;

export const Pattern = Type.Object({
  timestamp: Type.Number({ description: 'Offset in ms from the session start.' }),
  action: Type.String(),
  data: Type.Optional(PatternData),
});
export type Pattern = Static<typeof Pattern>;

export const Profile = Type.Object(
  {
    user_id: Type.String(),
    schema_version: Type.Integer(),
    behavioral_patterns: Type.Array(Pattern),
    resource_intensity: ResourceIntensity,
    geo_location: GeoLocation,
    device_type: Type.String(),
    activity_level: Type.Union(ACTIVITY_LEVELS.map((level) => Type.Literal(level))),
    actions_per_minute: Type.Number(),
    actions: Type.Array(Type.String(), { description: 'The set of actions used, sorted.' }),
    pattern_count: Type.Integer(),
    session_duration_ms: Type.Number(),
    updated_at: Type.Optional(Type.String()),
  },
  { $id: 'Profile' },
);
export type Profile = Static<typeof Profile>;

/** Every top-level field of a stored profile, for `fields` projections. */
export const PROFILE_FIELDS = Object.keys(Profile.properties) as (keyof Profile)[];

// ---------------------------------------------------------------------------------------------
// Normalisation and derived fields

export function activityLevelOf(actionsPerMinute: number): ActivityLevel {
  if (actionsPerMinute >= ACTIVITY_THRESHOLDS.high) return 'high';
  if (actionsPerMinute >= ACTIVITY_THRESHOLDS.medium) return 'medium';
  return 'low';
}

/**
 * The session's length: last entry minus first (numeric offsets need not start at 0), 0 for an
 * empty session.
 */
export function sessionSpanOf(patterns: readonly { timestamp: number }[]): number {
  if (patterns.length === 0) return 0;
  const first = (patterns[0] as { timestamp: number }).timestamp;
  const last = (patterns[patterns.length - 1] as { timestamp: number }).timestamp;
  return Math.max(0, last - first);
}

/**
 * Actions per minute over the session; sessions shorter than a minute count as one minute, so
 * three clicks in five seconds do not make a "high activity" user.
 */
export function actionsPerMinuteOf(patterns: readonly { timestamp: number }[]): number {
  if (patterns.length === 0) return 0;
  const minutes = Math.max(sessionSpanOf(patterns), 60_000) / 60_000;
  return Math.round((patterns.length / minutes) * 100) / 100;
}

/** Adds the derived fields to a profile whose patterns are already normalised. */
export function withDerivedFields(
  base: Pick<
    Profile,
    'user_id' | 'behavioral_patterns' | 'resource_intensity' | 'geo_location' | 'device_type'
  >,
): Profile {
  const patterns = base.behavioral_patterns;
  const actionsPerMinute = actionsPerMinuteOf(patterns);
  return {
    user_id: base.user_id,
    schema_version: PROFILE_SCHEMA_VERSION,
    behavioral_patterns: patterns,
    resource_intensity: base.resource_intensity,
    geo_location: base.geo_location,
    device_type: base.device_type,
    activity_level: activityLevelOf(actionsPerMinute),
    actions_per_minute: actionsPerMinute,
    actions: [...new Set(patterns.map((pattern) => pattern.action))].sort(),
    pattern_count: patterns.length,
    session_duration_ms: sessionSpanOf(patterns),
  };
}

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Checks an untrusted profile against the schema, the ontology and the limits, and returns it
 * normalised (timestamps as offsets from the session start) with derived fields. Throws a
 * ValidationError listing every offending field, prefixed with `prefix` (e.g. `body[3]`).
 */
export function parseProfile(
  input: unknown,
  ontology: Ontology,
  limits: ProfileLimits = DEFAULT_PROFILE_LIMITS,
  prefix = '',
): Profile {
  const issues = profileIssues(input, ontology, limits, prefix);
  if (issues.length > 0) throw new ValidationError(issues);
  return normaliseChecked(input as ProfileInput);
}

/** Issues only (empty: the profile is valid); used to check a whole batch before writing any. */
export function profileIssues(
  input: unknown,
  ontology: Ontology,
  limits: ProfileLimits = DEFAULT_PROFILE_LIMITS,
  prefix = '',
): FieldIssue[] {
  const structural = schemaIssues(ProfileInput, input, prefix);
  if (structural.length > 0) return structural;
  const profile = input as ProfileInput;
  const issues: FieldIssue[] = [];
  const patternsField = join(prefix, 'behavioral_patterns');
  if (profile.behavioral_patterns.length > limits.maxPatternsPerProfile)
    issues.push({ field: patternsField, rule: `must have at most ${limits.maxPatternsPerProfile} entries` });
  const kinds = new Set(profile.behavioral_patterns.map((pattern) => typeof pattern.timestamp));
  if (kinds.size > 1)
    issues.push({
      field: patternsField,
      rule: 'timestamps must be all offsets in ms or all ISO date-times, not a mix',
    });
  let previous = -Infinity;
  profile.behavioral_patterns.forEach((pattern, index) => {
    const field = join(patternsField, index);
    let time: number;
    if (typeof pattern.timestamp === 'string') {
      time = ISO_DATE_TIME.test(pattern.timestamp) ? Date.parse(pattern.timestamp) : NaN;
      if (Number.isNaN(time)) {
        issues.push({
          field: join(field, 'timestamp'),
          rule: 'must be an ISO 8601 date-time with a time zone',
        });
        return;
      }
    } else time = pattern.timestamp;
    if (time < previous)
      issues.push({
        field: join(field, 'timestamp'),
        rule: 'must not be earlier than the previous entry (entries are ordered)',
      });
    previous = Math.max(previous, time);
    issues.push(...checkActionData(ontology, pattern.action, pattern.data, field));
  });
  if (kinds.size === 1 && kinds.has('string') && issues.length === 0) {
    const first = Date.parse(profile.behavioral_patterns[0]?.timestamp as string);
    const last = Date.parse(
      profile.behavioral_patterns[profile.behavioral_patterns.length - 1]?.timestamp as string,
    );
    if (last - first > 7 * 86_400_000)
      issues.push({ field: patternsField, rule: 'must span at most 7 days' });
  }
  return issues;
}

function normaliseChecked(profile: ProfileInput): Profile {
  const isoStart =
    typeof profile.behavioral_patterns[0]?.timestamp === 'string'
      ? Date.parse(profile.behavioral_patterns[0].timestamp)
      : undefined;
  const patterns: Pattern[] = profile.behavioral_patterns.map((pattern) => ({
    timestamp:
      isoStart === undefined
        ? (pattern.timestamp as number)
        : Date.parse(pattern.timestamp as string) - isoStart,
    action: pattern.action,
    ...(pattern.data && Object.keys(pattern.data).length > 0 ? { data: { ...pattern.data } } : {}),
  }));
  const geo = profile.geo_location;
  return withDerivedFields({
    user_id: profile.user_id,
    behavioral_patterns: patterns,
    resource_intensity: { ...profile.resource_intensity },
    geo_location: { country: geo.country, ...(geo.region !== undefined ? { region: geo.region } : {}) },
    device_type: profile.device_type,
  });
}
