import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { ProcessSpec } from './managed-process';
import { RestartableServer } from './restartable-server';
import { resolveTool } from './tools';

export interface HaproxyOptions {
  /** Holds haproxy.cfg and the runtime API socket. */
  dir: string;
  /** host:port the frontend binds. */
  listen: string;
  /** Backend sections (e.g. from renderHaproxyBackend); the first is the frontend's default. */
  backends: string;
  defaultBackend: string;
  /** One thread by default: on a shared two-core machine it competes fairly with the others. */
  threads?: number;
  logFile: string;
  readyTimeoutMs?: number;
}

/**
 * A real HAProxy (Debian's) in the foreground with an admin-level runtime API socket; restart
 * starts it again from the same config (runtime weight changes are lost, as in production
 * without a server-state file).
 */
export class HaproxyServer extends RestartableServer {
  readonly socketPath: string;
  readonly configFile: string;

  private constructor(private readonly options: HaproxyOptions) {
    super();
    this.socketPath = path.join(options.dir, 'admin.sock');
    this.configFile = path.join(options.dir, 'haproxy.cfg');
  }

  static async start(options: HaproxyOptions): Promise<HaproxyServer> {
    mkdirSync(options.dir, { recursive: true });
    const server = new HaproxyServer(options);
    writeFileSync(server.configFile, renderHaproxyConfig({ ...options, socketPath: server.socketPath }));
    await server.launch();
    return server;
  }

  protected processSpec(): ProcessSpec {
    return {
      name: 'haproxy',
      command: resolveTool('haproxy'),
      args: ['-f', this.configFile, '-db'],
      logFile: this.options.logFile,
      readyTimeoutMs: this.options.readyTimeoutMs ?? 15_000,
      stopGraceMs: 2000,
      isReady: () => answersShowInfo(this.socketPath),
    };
  }
}

function renderHaproxyConfig(options: HaproxyOptions & { socketPath: string }): string {
  return [
    'global',
    `    stats socket ${options.socketPath} mode 600 level admin`,
    `    nbthread ${options.threads ?? 1}`,
    '    maxconn 4096',
    'defaults',
    '    mode http',
    '    timeout connect 2s',
    '    timeout client 60s',
    '    timeout server 60s',
    '    timeout http-keep-alive 60s',
    'frontend main',
    `    bind ${options.listen}`,
    `    default_backend ${options.defaultBackend}`,
    options.backends,
  ].join('\n');
}

async function answersShowInfo(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    let answer = '';
    socket.setTimeout(1000, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('utf8')));
    socket.once('error', () => resolve(false));
    socket.once('close', () => resolve(answer.includes('Name: HAProxy')));
    socket.end('show info\n');
  });
}
