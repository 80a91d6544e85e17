import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import type { ProcessSpec } from './managed-process';
import { RestartableServer } from './restartable-server';
import { projectRoot } from './tools';

export interface NodeServiceOptions {
  name: string;
  /** TypeScript entry, relative to the repository root (run from source with tsx). */
  entry: string;
  args?: readonly string[];
  env?: Record<string, string | undefined>;
  logFile: string;
  /** Ready once this URL answers 2xx; or, for a process without HTTP, once `readyLine` is logged. */
  readyUrl?: string;
  readyLine?: string;
  readyTimeoutMs?: number;
}

/** One of our own Node processes (shop, worker, API) as a restartable child. */
export class NodeService extends RestartableServer {
  private constructor(readonly options: NodeServiceOptions) {
    super();
  }

  static async start(options: NodeServiceOptions): Promise<NodeService> {
    const service = new NodeService(options);
    await service.launch();
    return service;
  }

  protected processSpec(): ProcessSpec {
    const { readyUrl, readyLine, logFile } = this.options;
    // The log is appended to across restarts: only what this start writes counts.
    const offset = existsSync(logFile) ? statSync(logFile).size : 0;
    return {
      name: this.options.name,
      command: process.execPath,
      args: ['--import', 'tsx', path.join(projectRoot, this.options.entry), ...(this.options.args ?? [])],
      cwd: projectRoot,
      env: this.options.env,
      logFile: this.options.logFile,
      readyTimeoutMs: this.options.readyTimeoutMs ?? 60_000,
      stopGraceMs: 10_000,
      isReady: async () => {
        if (readyUrl) {
          const response = await request(readyUrl, { signal: AbortSignal.timeout(1000) });
          await response.body.dump();
          return response.statusCode >= 200 && response.statusCode < 300;
        }
        return (
          readyLine !== undefined &&
          readFileSync(logFile).subarray(offset).toString('utf8').includes(readyLine)
        );
      },
    };
  }
}
