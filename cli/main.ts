#!/usr/bin/env node
/**
 * The `canary` command. Each component adds its subcommands in cli/commands/<name>.ts and
 * one line below. Exit codes: 0 success, 1 the rollout was rolled back (or the command's own
 * negative answer), 2 bad input or an error.
 */
import { Command, CommanderError } from 'commander';
import { register as registerAnalyze } from './commands/analyze';
import { register as registerController } from './commands/controller';
import { register as registerDemo } from './commands/demo';
import { register as registerProfiles } from './commands/profiles';
import { CliError } from './errors';
import { register as registerLoadgen } from './commands/loadgen';
import { register as registerRollout } from './commands/rollout';
import { writeErrorLines } from '../platform/process';

const COMMANDS: ((program: Command) => void)[] = [
  registerRollout,
  registerProfiles,
  registerLoadgen,
  registerAnalyze,
  registerDemo,
  registerController,
];

export function buildProgram(): Command {
  const program = new Command('canary')
    .description('Adaptive canary rollouts on Temporal')
    .showHelpAfterError()
    .exitOverride();
  for (const register of COMMANDS) register(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version exit through here with code 0.
      return error.exitCode === 0 ? 0 : 2;
    }
    writeErrorLines(error);
    return error instanceof CliError ? error.exitCode : 2;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    () => process.exit(2),
  );
}
