import path from 'node:path';
import { request } from 'undici';
import type { ProcessSpec } from './managed-process';
import { freePort } from './ports';
import { RestartableServer } from './restartable-server';
import { projectRoot } from './tools';

export interface BuiltinProxyServerOptions {
  baseline: string;
  canary: string;
  /** Passed through the environment variable CANARY_PROXY_TOKEN, never on the command line. */
  adminToken: string;
  port?: number;
  adminPort?: number;
  /** Extra flags of routing/proxy/main.ts, e.g. ['--sticky-cookie', 'canary_user']. */
  flags?: readonly string[];
  logFile: string;
  readyTimeoutMs?: number;
}

const MAIN = path.join(projectRoot, 'routing', 'proxy', 'main.ts');

/** The built-in proxy as a child process (as the local stack runs it), restartable on its ports. */
export class BuiltinProxyServer extends RestartableServer {
  private constructor(
    private readonly options: BuiltinProxyServerOptions,
    readonly port: number,
    readonly adminPort: number,
  ) {
    super();
  }

  static async start(options: BuiltinProxyServerOptions): Promise<BuiltinProxyServer> {
    const server = new BuiltinProxyServer(
      options,
      options.port ?? (await freePort()),
      options.adminPort ?? (await freePort()),
    );
    await server.launch();
    return server;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get adminUrl(): string {
    return `http://127.0.0.1:${this.adminPort}`;
  }

  protected processSpec(): ProcessSpec {
    return {
      name: 'builtin proxy',
      command: process.execPath,
      args: [
        '--import',
        'tsx',
        MAIN,
        '--listen',
        `127.0.0.1:${this.port}`,
        '--admin-listen',
        `127.0.0.1:${this.adminPort}`,
        '--admin-token-env',
        'CANARY_PROXY_TOKEN',
        '--baseline',
        this.options.baseline,
        '--canary',
        this.options.canary,
        ...(this.options.flags ?? []),
      ],
      cwd: projectRoot,
      env: { CANARY_PROXY_TOKEN: this.options.adminToken },
      logFile: this.options.logFile,
      readyTimeoutMs: this.options.readyTimeoutMs ?? 30_000,
      stopGraceMs: 3000,
      isReady: async () => {
        const response = await request(`${this.adminUrl}/healthz`, { signal: AbortSignal.timeout(1000) });
        await response.body.dump();
        return response.statusCode === 200;
      },
    };
  }
}
