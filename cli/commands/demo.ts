/**
 * `canary demo`: the whole product on loopback in one command. Starts the local stack (Temporal
 * dev server with its Web UI, FerretDB, the sample shop as baseline and canary, the built-in
 * router, the worker, the API), seeds profiles, starts a rollout with short ticks and follows it.
 * `--scenario regression` makes the canary's checkout slower once it has real traffic; the
 * rollout finds it, names checkout, cuts the share and rolls back. Stopping the demo mid-rollout
 * and starting it again continues the same rollout.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { stringify } from 'yaml';
import { validateComponentConfig } from '../../client/validate-spec';
import { parseRolloutDocument } from '../../rollout/document';
import { RolloutClient } from '../../client/rollout-client';
import { connectClient } from '../../platform/temporal-connection';
import { CHECKOUT_REGRESSION, demoRolloutDocument, NO_FAULTS } from '../../devstack/demo-rollout';
import { LocalStack } from '../../devstack/local-stack';
import { projectRoot } from '../../devstack/tools';
import type { RolloutResult } from '../../rollout/types';
import { formatStatus } from './rollout';

type Scenario = 'healthy' | 'regression';

interface DemoState {
  scenario: Scenario;
  rolloutId: string;
  run: number;
  faultsInjected: boolean;
}

const REGRESSION_AT_SHARE = 15;

function readState(file: string): DemoState | undefined {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as DemoState) : undefined;
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('run a full canary rollout of the sample shop on a local stack')
    .addOption(
      new Option('--scenario <name>', 'healthy promotes; regression rolls back')
        .choices(['healthy', 'regression'])
        .default('healthy'),
    )
    .option('--data-dir <dir>', 'where the stack keeps its data', path.join(projectRoot, '.data'))
    .option(
      '--interval <ms>',
      'tick interval in milliseconds',
      (value: string) => {
        const ms = Number(value);
        if (!Number.isInteger(ms) || ms < 500 || ms > 60_000)
          throw new InvalidArgumentError('must be 500-60000 ms');
        return ms;
      },
      3000,
    )
    .option('--profiles <n>', 'profiles generated into an empty store', (value: string) => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 10 || n > 100_000) throw new InvalidArgumentError('must be 10-100000');
      return n;
    })
    .option('--exit', 'stop the stack and exit when the rollout ends (0 promoted, 1 rolled back)')
    .option('--json', 'status lines as NDJSON')
    .action(
      async (flags: {
        scenario: Scenario;
        dataDir: string;
        interval: number;
        profiles?: number;
        exit?: boolean;
        json?: boolean;
      }) => {
        const say = (line: string) =>
          process.stdout.write(
            flags.json ? `${JSON.stringify({ type: 'log', message: line })}\n` : `${line}\n`,
          );
        const stateFile = path.join(flags.dataDir, 'demo.json');
        const previous = readState(stateFile);
        const resuming = previous?.scenario === flags.scenario ? previous : undefined;
        const stack = await LocalStack.start({
          dataDir: flags.dataDir,
          profiles: flags.profiles,
          canaryFaults: resuming?.faultsInjected ? CHECKOUT_REGRESSION : undefined,
          log: say,
        });
        let stopping = false;
        const shutdown = async (code: number) => {
          if (stopping) return;
          stopping = true;
          say('stopping the stack...');
          await stack.stop();
          process.exit(code);
        };
        process.once('SIGINT', () => void shutdown(130));
        process.once('SIGTERM', () => void shutdown(143));

        const client = await connectClient({ address: stack.temporal.address, namespace: 'default' });
        const rollouts = new RolloutClient(client);
        const isRunning = (rolloutId: string) => rollouts.isRunning(rolloutId).catch(() => false);
        // One router, one rollout: a rollout of the other scenario still running is rolled back first.
        if (previous && previous.scenario !== flags.scenario && (await isRunning(previous.rolloutId))) {
          say(
            `rolling back ${previous.rolloutId} (${previous.scenario}) before starting ${flags.scenario}...`,
          );
          await rollouts.rollback(previous.rolloutId, {
            by: 'canary demo',
            reason: `superseded by a ${flags.scenario} demo`,
          });
          await rollouts.result(previous.rolloutId).catch(() => undefined);
        }
        let state = resuming;
        const running = state && (await isRunning(state.rolloutId));
        if (state && running) {
          say(`resuming ${state.rolloutId} where it stopped`);
        } else {
          const run = (previous?.run ?? 0) + 1;
          const document = demoRolloutDocument(stack, {
            version: `1.1.0-${flags.scenario}.${run}`,
            intervalMs: flags.interval,
          });
          const specFile = path.join(flags.dataDir, 'demo-rollout.yaml');
          writeFileSync(specFile, stringify(document));
          const spec = parseRolloutDocument(readFileSync(specFile, 'utf8'), specFile);
          validateComponentConfig(spec);
          if (flags.scenario === 'regression') await stack.injectCanaryFaults(NO_FAULTS);
          const handle = await rollouts.start(spec);
          state = { scenario: flags.scenario, rolloutId: handle.workflowId, run, faultsInjected: false };
          writeFileSync(stateFile, JSON.stringify(state, null, 2));
          say(`started ${state.rolloutId} (spec: ${specFile})`);
        }
        const current = state;
        say(
          `dashboard:   ${stack.apiUrl}   (its controls ask for the API token: "apiToken" in ${path.join(flags.dataDir, 'stack.json')})`,
        );
        say(`Temporal UI: ${stack.temporalUiLink(current.rolloutId)}`);
        say(`router:      ${stack.proxyUrl} (real traffic)   logs: ${path.join(flags.dataDir, 'logs')}`);
        say('Ctrl-C stops everything; run the same command again to continue.');

        let lastLine = '';
        const outcome: RolloutResult = await rollouts.watch(current.rolloutId, async (status) => {
          if (
            flags.scenario === 'regression' &&
            !current.faultsInjected &&
            status.share >= REGRESSION_AT_SHARE
          ) {
            await stack.injectCanaryFaults(CHECKOUT_REGRESSION);
            current.faultsInjected = true;
            writeFileSync(stateFile, JSON.stringify(current, null, 2));
            say(`injected the regression: the canary's checkout is now 250 ms slower (at ${status.share} %)`);
          }
          const line = flags.json ? JSON.stringify({ type: 'status', ...status }) : formatStatus(status);
          if (line !== lastLine) say(line);
          lastLine = line;
        });
        const final = await rollouts.status(current.rolloutId).catch(() => undefined);
        const blamed = [
          ...new Set(final?.investigations.flatMap((i) => i.anomalies.map((a) => a.summary)) ?? []),
        ];
        if (flags.json)
          process.stdout.write(`${JSON.stringify({ type: 'result', ...outcome, anomalies: blamed })}\n`);
        else {
          say(`${outcome.rolloutId}: ${outcome.outcome} after ${outcome.ticks} ticks`);
          for (const line of blamed) say(`  anomaly: ${line}`);
        }
        await client.connection.close();
        const code = outcome.outcome === 'promoted' ? 0 : outcome.outcome === 'rolled_back' ? 1 : 2;
        if (flags.exit) await shutdown(code);
        else {
          say('the stack keeps running for you to look around; Ctrl-C stops it.');
          // Nothing else holds the event loop now; without this the process (and with it every
          // server, which dies with its parent) would end here.
          setInterval(() => undefined, 60_000);
          await new Promise<never>(() => undefined);
        }
      },
    );
}
