import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ResultPromise } from 'execa';
import { loadExeca } from '../platform/execa';

export interface ProcessSpec {
  /** Short name used in errors and log file names. */
  name: string;
  command: string;
  args: readonly string[];
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** stdout and stderr are appended here; the tail is quoted when the process fails to start. */
  logFile: string;
  /** Resolves true once the process serves requests. Polled until readyTimeoutMs. */
  isReady: () => Promise<boolean>;
  readyTimeoutMs?: number;
  /** Between SIGTERM and SIGKILL on stop(). */
  stopGraceMs?: number;
}

export interface ProcessExit {
  exitCode: number | undefined;
  signal: string | undefined;
}

// setpriv (util-linux) asks the kernel to SIGKILL the child when this process dies, however it
// dies: a crashed test run or a SIGKILLed demo leaves no server behind. execa's `cleanup` covers
// the ordinary exits as well.
const SETPRIV = '/usr/bin/setpriv';
const orphanGuard = existsSync(SETPRIV);

export class ProcessStartError extends Error {}

/** A child server process that is waited for until ready and never outlives its parent. */
export class ManagedProcess {
  readonly exited: Promise<ProcessExit>;
  private exit: ProcessExit | undefined;

  private constructor(
    readonly spec: ProcessSpec,
    private readonly subprocess: ResultPromise,
  ) {
    this.exited = subprocess.then(
      (result) => (this.exit = { exitCode: result.exitCode, signal: result.signal }),
      () => (this.exit = { exitCode: undefined, signal: undefined }),
    );
  }

  static async start(spec: ProcessSpec): Promise<ManagedProcess> {
    mkdirSync(path.dirname(spec.logFile), { recursive: true });
    const [command, args] = orphanGuard
      ? [SETPRIV, ['--pdeathsig', 'KILL', '--', spec.command, ...spec.args]]
      : [spec.command, [...spec.args]];
    const { execa } = await loadExeca();
    const subprocess = execa(command, args, {
      cwd: spec.cwd,
      env: spec.env,
      extendEnv: true,
      stdin: 'ignore',
      stdout: { file: spec.logFile, append: true },
      stderr: { file: spec.logFile, append: true },
      reject: false,
      cleanup: true,
      forceKillAfterDelay: spec.stopGraceMs ?? 5000,
    });
    const managed = new ManagedProcess(spec, subprocess);
    try {
      await managed.waitUntilReady();
    } catch (error) {
      await managed.stop();
      throw error;
    }
    return managed;
  }

  get pid(): number {
    const pid = this.subprocess.pid;
    if (pid === undefined) throw new Error(`${this.spec.name} has no pid (it did not start)`);
    return pid;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** Sends a signal and returns at once (SIGKILL to simulate a crash). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.subprocess.kill(signal);
  }

  /** SIGTERM, then SIGKILL after the grace period; resolves when the process is gone. */
  async stop(): Promise<ProcessExit> {
    if (this.exit) return this.exit;
    this.subprocess.kill('SIGTERM');
    return this.exited;
  }

  private async waitUntilReady(): Promise<void> {
    const deadline = Date.now() + (this.spec.readyTimeoutMs ?? 60_000);
    while (Date.now() < deadline) {
      if (this.exit) {
        throw new ProcessStartError(
          `${this.spec.name} exited during start (code ${this.exit.exitCode ?? '-'}, signal ${this.exit.signal ?? '-'}); last log lines:\n${this.logTail()}`,
        );
      }
      if (await this.spec.isReady().catch(() => false)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new ProcessStartError(
      `${this.spec.name} did not become ready within ${this.spec.readyTimeoutMs ?? 60_000} ms; last log lines:\n${this.logTail()}`,
    );
  }

  logTail(lines = 20): string {
    try {
      return readFileSync(this.spec.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}
