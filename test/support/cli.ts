import path from 'node:path';
import type { Options } from 'execa';
import { loadExeca } from '../../platform/execa';
import { projectRoot } from '../../devstack/tools';

export interface CliRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `canary` command from source in a child process, as a pipeline would. */
export async function runCli(args: string[], options: Options = {}): Promise<CliRun> {
  const { execa } = await loadExeca();
  const result = await execa(
    process.execPath,
    ['--import', 'tsx', path.join(projectRoot, 'cli/main.ts'), ...args],
    {
      cwd: projectRoot,
      reject: false,
      timeout: 120_000,
      ...options,
    },
  );
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}
