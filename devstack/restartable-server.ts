import { ManagedProcess, type ProcessSpec } from './managed-process';

/**
 * A server process that can be stopped and started again with the same spec (same ports, same
 * files): what tests need to take a router or upstream down and bring it back.
 */
export abstract class RestartableServer {
  private process: ManagedProcess | undefined;

  /** How to start the process; called on every start. */
  protected abstract processSpec(): ProcessSpec;

  get running(): boolean {
    return this.process?.running ?? false;
  }

  /** The running process's id (to freeze it with SIGSTOP in a test), undefined when stopped. */
  get pid(): number | undefined {
    return this.process?.pid;
  }

  /** SIGTERM, then SIGKILL after the spec's grace period. */
  async stop(): Promise<void> {
    await this.process?.stop();
    this.process = undefined;
  }

  /** Kills the process at once (a crash), leaving it stopped until start(). */
  async kill(): Promise<void> {
    const process = this.process;
    this.process = undefined;
    process?.kill('SIGKILL');
    await process?.exited;
  }

  /** Starts it again after stop() or kill(). */
  async start(): Promise<void> {
    if (!this.running) await this.launch();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  protected async launch(): Promise<void> {
    this.process = await ManagedProcess.start(this.processSpec());
  }
}
