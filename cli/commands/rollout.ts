/**
 * `canary rollout ...`: what a pipeline calls. `start --wait` exits 0 when the canary is
 * promoted, 1 when it is rolled back, 2 on bad input, an abort or an error.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { Client } from '@temporalio/client';
import { type Command, Option } from 'commander';
import { validateComponentConfig } from '../../client/validate-spec';
import { checkSpecAgainstConfiguredPolicy } from '../../client/worker-policy';
import { inDocumentTerms, parseRolloutDocument } from '../../rollout/document';
import { ValidationError } from '../../core/validation';
import { RolloutClient } from '../../client/rollout-client';
import {
  PolicyUpdateRefusedError,
  RolloutAlreadyStartedError,
  RolloutEndedError,
  RolloutNotFoundError,
} from '../../client/rollout-errors';
import { connectClient, temporalTargetFromEnv } from '../../platform/temporal-connection';
import type { RolloutSpec } from '../../rollout/spec';
import type { RolloutResult, RolloutStatus } from '../../rollout/types';
import { CliError } from '../errors';
import { messageOf } from '../../core/errors';

interface ConnectionFlags {
  address?: string;
  namespace?: string;
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,250}$/;

function who(): string {
  try {
    return `cli:${os.userInfo().username}`;
  } catch {
    return 'cli';
  }
}

function checkId(id: string): string {
  if (!ID_PATTERN.test(id))
    throw new CliError(`rollout id '${id}': must be like rollout-<service>-<version>`);
  return id;
}

async function withClient<T>(
  flags: ConnectionFlags,
  run: (rollouts: RolloutClient) => Promise<T>,
): Promise<T> {
  const target = temporalTargetFromEnv({ address: flags.address, namespace: flags.namespace });
  let client: Client;
  try {
    client = await connectClient(target);
  } catch (error) {
    throw new CliError(`cannot reach Temporal at ${target.address}: ${messageOf(error)}`);
  }
  try {
    return await run(new RolloutClient(client));
  } catch (error) {
    // Temporal answers a signal or update to an ended workflow as not found; so does this CLI.
    if (error instanceof RolloutNotFoundError || error instanceof RolloutEndedError)
      throw new CliError(`no rollout with that id in namespace ${target.namespace}`);
    throw error;
  } finally {
    await client.connection.close();
  }
}

export function formatStatus(status: RolloutStatus): string {
  const verdict = status.lastVerdicts.at(-1);
  const notes = verdict?.notes ?? [];
  const shown = notes.length > 2 ? [...notes.slice(0, 2), `+${notes.length - 2} more`] : notes;
  const last = verdict ? `${verdict.status}${shown.length ? ` (${shown.join('; ')})` : ''}` : 'none yet';
  const paused = status.pausedReason ? ` — paused: ${status.pausedReason}` : '';
  return `${status.rolloutId}  ${status.phase}  share ${status.share} %  tick ${status.tick}  anomalies ${status.anomalyCount}  last verdict: ${last}${paused}`;
}

function exitCodeFor(result: RolloutResult): number {
  if (result.outcome === 'promoted') return 0;
  if (result.outcome === 'rolled_back') return 1;
  return 2;
}

/** Follows a rollout until it ends: a live line on a TTY, a line per change otherwise, NDJSON with --json. */
async function follow(rollouts: RolloutClient, id: string, json: boolean): Promise<number> {
  const tty = process.stdout.isTTY && !json;
  let last = '';
  const outcome = await rollouts.watch(id, (status) => {
    const line = json ? JSON.stringify({ type: 'status', ...status }) : formatStatus(status);
    if (tty) process.stdout.write(`\r\x1b[2K${line.slice(0, process.stdout.columns ?? 200)}`);
    else if (line !== last && (json || status.tick !== 0 || !last)) process.stdout.write(`${line}\n`);
    last = line;
  });
  if (tty) process.stdout.write('\n');
  if (json) process.stdout.write(`${JSON.stringify({ type: 'result', ...outcome })}\n`);
  else
    process.stdout.write(
      `${outcome.rolloutId}: ${outcome.outcome} after ${outcome.ticks} ticks — ${outcome.reasons.at(-1) ?? ''}\n`,
    );
  return exitCodeFor(outcome);
}

function connectionOptions(command: Command): Command {
  return command
    .option('--address <host:port>', 'Temporal frontend (env TEMPORAL_ADDRESS, default 127.0.0.1:7233)')
    .option('--namespace <name>', 'Temporal namespace (env TEMPORAL_NAMESPACE, default default)');
}

function parsePolicyAssignments(assignments: string[]): Record<string, number> {
  const patch: Record<string, number> = {};
  for (const assignment of assignments) {
    const match = /^([A-Za-z]+)=(-?\d+(?:\.\d+)?)$/.exec(assignment);
    if (!match) throw new CliError(`--set '${assignment}': must look like stepUp=2`);
    patch[match[1] as string] = Number(match[2]);
  }
  return patch;
}

/**
 * What `rollout start` checks before it reaches Temporal: the document, then every component's
 * section, issues named by their path in the document. Throws only ValidationError.
 */
export function readStartSpec(text: string, file: string, env: NodeJS.ProcessEnv = process.env): RolloutSpec {
  const spec = parseRolloutDocument(text, file);
  try {
    validateComponentConfig(spec);
    checkSpecAgainstConfiguredPolicy(spec, env);
  } catch (error) {
    throw error instanceof ValidationError ? inDocumentTerms(error) : error;
  }
  return spec;
}

export function register(program: Command): void {
  const rollout = program.command('rollout').description('start, follow and steer canary rollouts');

  connectionOptions(
    rollout
      .command('start')
      .description('validate a rollout spec and start its rollout')
      .requiredOption('-f, --file <path>', 'rollout spec (YAML or JSON)')
      .option('--wait', 'follow the rollout until it ends; exit 0 promoted, 1 rolled back, 2 otherwise')
      .option('--json', 'machine-readable output')
      .option('--allow-restart', 'start again a service+version whose earlier rollout has ended')
      .option('--task-queue <name>', 'task queue of the rollout workers', 'rollouts'),
  ).action(
    async (
      flags: ConnectionFlags & {
        file: string;
        wait?: boolean;
        json?: boolean;
        allowRestart?: boolean;
        taskQueue: string;
      },
    ) => {
      let text: string;
      try {
        text = readFileSync(flags.file, 'utf8');
      } catch (error) {
        throw new CliError(
          `--file ${flags.file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
        );
      }
      const spec = readStartSpec(text, flags.file);
      process.exitCode = await withClient(flags, async (rollouts) => {
        let id: string;
        try {
          const handle = await rollouts.start(spec, {
            taskQueue: flags.taskQueue,
            allowRestart: flags.allowRestart,
          });
          id = handle.workflowId;
        } catch (error) {
          if (error instanceof RolloutAlreadyStartedError)
            throw new CliError(
              error.holder ? error.message : `${error.message} (use --allow-restart after it has ended)`,
            );
          throw error;
        }
        if (flags.json) process.stdout.write(`${JSON.stringify({ type: 'started', rolloutId: id })}\n`);
        else process.stdout.write(`started ${id}\n`);
        return flags.wait ? follow(rollouts, id, Boolean(flags.json)) : 0;
      });
    },
  );

  connectionOptions(
    rollout.command('status <id>').description("a rollout's phase, share and verdicts").option('--json'),
  ).action(async (id: string, flags: ConnectionFlags & { json?: boolean }) => {
    checkId(id);
    await withClient(flags, async (rollouts) => {
      const status = await rollouts.status(id);
      process.stdout.write(flags.json ? `${JSON.stringify(status, null, 2)}\n` : `${formatStatus(status)}\n`);
    });
  });

  connectionOptions(
    rollout
      .command('watch <id>')
      .description('follow a rollout until it ends (exit codes as start --wait)')
      .option('--json'),
  ).action(async (id: string, flags: ConnectionFlags & { json?: boolean }) => {
    checkId(id);
    process.exitCode = await withClient(flags, (rollouts) => follow(rollouts, id, Boolean(flags.json)));
  });

  connectionOptions(
    rollout.command('pause <id>').description('hold the canary at its share').option('--reason <text>'),
  ).action(async (id: string, flags: ConnectionFlags & { reason?: string }) => {
    checkId(id);
    await withClient(flags, (rollouts) => rollouts.pause(id, { by: who(), reason: flags.reason }));
    process.stdout.write(`pause sent to ${id}\n`);
  });

  connectionOptions(rollout.command('resume <id>').description('continue a paused rollout')).action(
    async (id: string, flags: ConnectionFlags) => {
      checkId(id);
      await withClient(flags, (rollouts) => rollouts.resume(id, { by: who() }));
      process.stdout.write(`resume sent to ${id}\n`);
    },
  );

  connectionOptions(
    rollout
      .command('rollback <id>')
      .description('take the canary out of real traffic now')
      .requiredOption('--reason <text>', 'why (recorded and alerted)'),
  ).action(async (id: string, flags: ConnectionFlags & { reason: string }) => {
    checkId(id);
    if (!flags.reason.trim()) throw new CliError('--reason: must not be empty');
    await withClient(flags, (rollouts) => rollouts.rollback(id, { by: who(), reason: flags.reason }));
    process.stdout.write(`rollback sent to ${id}\n`);
  });

  connectionOptions(
    rollout
      .command('abort <id>')
      .description(
        'cancel the rollout: the canary is taken out of real traffic and it ends aborted (never terminate a rollout: that leaves the canary where it is)',
      )
      .option('--wait', 'follow the rollout until it has ended (exit 2: aborted)')
      .option('--json'),
  ).action(async (id: string, flags: ConnectionFlags & { wait?: boolean; json?: boolean }) => {
    checkId(id);
    process.exitCode = await withClient(flags, async (rollouts) => {
      await rollouts.abort(id);
      process.stdout.write(`abort sent to ${id}\n`);
      return flags.wait ? follow(rollouts, id, Boolean(flags.json)) : 0;
    });
  });

  connectionOptions(
    rollout.command('promote <id>').description('give the canary all traffic now').option('--reason <text>'),
  ).action(async (id: string, flags: ConnectionFlags & { reason?: string }) => {
    checkId(id);
    await withClient(flags, (rollouts) => rollouts.promote(id, { by: who(), reason: flags.reason }));
    process.stdout.write(`promote sent to ${id}\n`);
  });

  connectionOptions(
    rollout
      .command('set-policy <id>')
      .description('change policy fields of a running rollout, e.g. --set stepUp=2 --set recoveryTicks=5')
      .addOption(
        new Option('--set <field=value>', 'a policy field').argParser(
          (value: string, previous: string[] = []) => [...previous, value],
        ),
      ),
  ).action(async (id: string, flags: ConnectionFlags & { set?: string[] }) => {
    checkId(id);
    if (!flags.set?.length) throw new CliError('--set: give at least one field=value');
    const patch = parsePolicyAssignments(flags.set);
    const policy = await withClient(flags, (rollouts) =>
      rollouts.setPolicy(id, patch).catch((error: unknown) => {
        // One line, as the workflow's validator words it.
        if (error instanceof PolicyUpdateRefusedError) throw new CliError(error.refusal);
        throw error instanceof ValidationError ? new CliError(error.message) : error;
      }),
    );
    process.stdout.write(`${JSON.stringify(policy)}\n`);
  });

  connectionOptions(
    rollout
      .command('list')
      .description('rollouts, newest first')
      .option('--json')
      .option('--limit <n>', 'at most n', '50'),
  ).action(async (flags: ConnectionFlags & { json?: boolean; limit: string }) => {
    const limit = Number(flags.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new CliError('--limit: must be an integer from 1 to 1000');
    await withClient(flags, async (rollouts) => {
      const rows = (await rollouts.list({ running: false, limit })).map(({ summary, runStartedAt }) => {
        // Phase, share and verdict are a running rollout's live ones only.
        const live = summary.execution === 'RUNNING' && summary.statusError === undefined;
        return {
          rolloutId: summary.rolloutId,
          state: summary.execution,
          phase: live ? summary.phase : null,
          share: live ? summary.share : null,
          startedAt: new Date(runStartedAt).toISOString(),
          lastVerdict: live ? (summary.lastVerdict?.status ?? null) : null,
        };
      });
      if (flags.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
      else
        for (const row of rows)
          process.stdout.write(
            `${Object.values(row)
              .map((v) => String(v ?? '-'))
              .join('  ')}\n`,
          );
    });
  });
}
