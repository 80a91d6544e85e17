/** TypeBox schemas of the dashboard API: one per params, query and body. */
import { Type } from '@sinclair/typebox';

/** `rollout-<service>-<version>`, as rolloutIdFor() makes them. */
export const ROLLOUT_ID_PATTERN =
  '^rollout-[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?-[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$';

export const RolloutParams = Type.Object({
  id: Type.String({
    pattern: ROLLOUT_ID_PATTERN,
    maxLength: 200,
    errorMessage: 'must be a rollout id like rollout-<service>-<version>',
  }),
});

export const ListQuery = Type.Object(
  {
    status: Type.Union([Type.Literal('running'), Type.Literal('all')], {
      default: 'all',
      errorMessage: 'must be running or all',
    }),
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
  },
  { additionalProperties: false },
);

export const PageQuery = Type.Object(
  {
    afterTick: Type.Integer({ minimum: 0, default: 0 }),
    limit: Type.Integer({ minimum: 1, maximum: 5000, default: 2000 }),
  },
  { additionalProperties: false },
);

/** Investigations carry their evidence (a few kB each): pages are smaller than the tick log's. */
export const InvestigationsQuery = Type.Object(
  {
    afterTick: Type.Integer({ minimum: 0, default: 0 }),
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  },
  { additionalProperties: false },
);

const By = Type.String({
  minLength: 1,
  maxLength: 100,
  pattern: '^[A-Za-z0-9][A-Za-z0-9@._:+-]*$',
  errorMessage: 'must be 1-100 of A-Z a-z 0-9 @ . _ : + -, starting with a letter or digit',
});
const Reason = Type.String({
  minLength: 1,
  maxLength: 1000,
  pattern: '\\S',
  errorMessage: 'must be 1-1000 characters, not only spaces',
});

export const OptionalReasonBody = Type.Object(
  { reason: Type.Optional(Reason), by: Type.Optional(By) },
  { additionalProperties: false },
);
export const ResumeBody = Type.Object({ by: Type.Optional(By) }, { additionalProperties: false });
export const RollbackBody = Type.Object(
  { reason: Reason, by: Type.Optional(By) },
  { additionalProperties: false },
);

const Share = Type.Number({ exclusiveMinimum: 0, maximum: 100 });
const Ticks = Type.Integer({ minimum: 0, maximum: 10_000 });
export const PolicyBody = Type.Object(
  {
    initialShare: Type.Optional(Share),
    stepUp: Type.Optional(Share),
    stepDown: Type.Optional(Share),
    promoteAt: Type.Optional(Share),
    probingTicks: Type.Optional(Ticks),
    recoveryTicks: Type.Optional(Ticks),
    cooldownTicks: Type.Optional(Ticks),
    maxAnomalies: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    anomalyWindowTicks: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    maxInconclusiveTicks: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    raiseRequires: Type.Optional(Type.Union([Type.Literal('clean'), Type.Literal('proof')])),
    maxRecoveryTicks: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    maxCutsAtLevel: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    onRepeatedCuts: Type.Optional(Type.Union([Type.Literal('pause'), Type.Literal('rollback')])),
  },
  { additionalProperties: false, minProperties: 1 },
);
