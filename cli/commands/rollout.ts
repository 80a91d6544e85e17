/**
 * `canary rollout ...`: what a pipeline calls. `start --wait` exits 0 when the canary is
 * promoted, 1 when it is rolled back, 2 on bad input, an abort or an error.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { type Command, Option } from 'commander';
import { validateComponentConfig } from '../../client/validate-spec';
import { inDocumentTerms, parseRolloutDocument } from '../../rollout/document';
import { ValidationError } from '../../core/validation';
import { startRollout, watchRollout } from '../../client/rollout-client';
import { connectClient, temporalTargetFromEnv } from '../../platform/temporal-connection';
import {
  pauseSignal,
  promoteSignal,
  resumeSignal,
  rollbackSignal,
  ROLLOUT_WORKFLOW_TYPE,
  setPolicyUpdate,
  statusQuery,
} from '../../rollout/messages';
import { rolloutIdFor } from '../../rollout/spec';
import type { RolloutResult, RolloutStatus } from '../../rollout/types';
import { CliError } from '../errors';

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

async function withClient<T>(flags: ConnectionFlags, run: (client: Client) => Promise<T>): Promise<T> {
  const target = temporalTargetFromEnv({ address: flags.address, namespace: flags.namespace });
  let client: Client;
  try {
    client = await connectClient(target);
  } catch (error) {
    throw new CliError(
      `cannot reach Temporal at ${target.address}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  try {
    return await run(client);
  } catch (error) {
    if (error instanceof WorkflowNotFoundError)
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
async function follow(client: Client, id: string, json: boolean): Promise<number> {
  const tty = process.stdout.isTTY && !json;
  let last = '';
  const outcome = await watchRollout(client, id, (status) => {
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
      const spec = parseRolloutDocument(text, flags.file);
      try {
        validateComponentConfig(spec);
      } catch (error) {
        throw error instanceof ValidationError ? inDocumentTerms(error) : error;
      }
      process.exitCode = await withClient(flags, async (client) => {
        let id = rolloutIdFor(spec.service, spec.version);
        try {
          const handle = await startRollout(client, spec, {
            taskQueue: flags.taskQueue,
            allowRestart: flags.allowRestart,
          });
          id = handle.workflowId;
        } catch (error) {
          if (error instanceof WorkflowExecutionAlreadyStartedError) {
            // rollout-<service>-<version> can collide across services with hyphens (a + b-1, a-b + 1).
            const memo = (
              await client.workflow
                .getHandle(id)
                .describe()
                .catch(() => undefined)
            )?.memo;
            if (memo && (memo.service !== spec.service || memo.version !== spec.version))
              throw new CliError(
                `${id} is the rollout of service ${String(memo.service)} version ${String(memo.version)}: ids of different deployments collide; use another version string`,
              );
            throw new CliError(
              `${id} was already started: a deployment is rolled out once (use --allow-restart after it has ended)`,
            );
          }
          throw error;
        }
        if (flags.json) process.stdout.write(`${JSON.stringify({ type: 'started', rolloutId: id })}\n`);
        else process.stdout.write(`started ${id}\n`);
        return flags.wait ? follow(client, id, Boolean(flags.json)) : 0;
      });
    },
  );

  connectionOptions(
    rollout.command('status <id>').description("a rollout's phase, share and verdicts").option('--json'),
  ).action(async (id: string, flags: ConnectionFlags & { json?: boolean }) => {
    checkId(id);
    await withClient(flags, async (client) => {
      const status = await client.workflow.getHandle(id).query(statusQuery);
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
    process.exitCode = await withClient(flags, (client) => follow(client, id, Boolean(flags.json)));
  });

  connectionOptions(
    rollout.command('pause <id>').description('hold the canary at its share').option('--reason <text>'),
  ).action(async (id: string, flags: ConnectionFlags & { reason?: string }) => {
    checkId(id);
    await withClient(flags, (client) =>
      client.workflow.getHandle(id).signal(pauseSignal, { by: who(), reason: flags.reason }),
    );
    process.stdout.write(`pause sent to ${id}\n`);
  });

  connectionOptions(rollout.command('resume <id>').description('continue a paused rollout')).action(
    async (id: string, flags: ConnectionFlags) => {
      checkId(id);
      await withClient(flags, (client) => client.workflow.getHandle(id).signal(resumeSignal, { by: who() }));
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
    await withClient(flags, (client) =>
      client.workflow.getHandle(id).signal(rollbackSignal, { by: who(), reason: flags.reason }),
    );
    process.stdout.write(`rollback sent to ${id}\n`);
  });

  connectionOptions(
    rollout.command('promote <id>').description('give the canary all traffic now').option('--reason <text>'),
  ).action(async (id: string, flags: ConnectionFlags & { reason?: string }) => {
    checkId(id);
    await withClient(flags, (client) =>
      client.workflow.getHandle(id).signal(promoteSignal, { by: who(), reason: flags.reason }),
    );
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
    const policy = await withClient(flags, (client) =>
      client.workflow
        .getHandle(id)
        .executeUpdate(setPolicyUpdate, { args: [patch] })
        .catch((error: unknown) => {
          const cause = (error as { cause?: { message?: string } }).cause?.message;
          throw cause ? new CliError(cause) : error;
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
    await withClient(flags, async (client) => {
      const rows: Record<string, string | number | null>[] = [];
      for await (const execution of client.workflow.list({
        query: `WorkflowType = '${ROLLOUT_WORKFLOW_TYPE}'`,
      })) {
        const running = execution.status.name === 'RUNNING';
        const status = running
          ? await client
              .withDeadline(Date.now() + 3000, () =>
                client.workflow.getHandle(execution.workflowId).query(statusQuery),
              )
              .catch(() => undefined)
          : undefined;
        rows.push({
          rolloutId: execution.workflowId,
          state: execution.status.name,
          phase: status?.phase ?? null,
          share: status?.share ?? null,
          startedAt: execution.startTime.toISOString(),
          lastVerdict: status?.lastVerdicts.at(-1)?.status ?? null,
        });
        if (rows.length >= limit) break;
      }
      // Visibility lists running ones first, then by close time: order by start as the help says.
      rows.sort((a, b) => String(b.startedAt).localeCompare(String(a.startedAt)));
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
