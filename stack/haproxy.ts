import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ManagedProcess } from './managed-process';
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

/** A real HAProxy (Debian's) in the foreground with an admin-level runtime API socket. */
export class HaproxyServer {
  private constructor(
    private readonly process: ManagedProcess,
    readonly socketPath: string,
    readonly configFile: string,
  ) {}

  static async start(options: HaproxyOptions): Promise<HaproxyServer> {
    mkdirSync(options.dir, { recursive: true });
    const socketPath = path.join(options.dir, 'admin.sock');
    const configFile = path.join(options.dir, 'haproxy.cfg');
    writeFileSync(configFile, renderHaproxyConfig({ ...options, socketPath }));
    const process = await ManagedProcess.start({
      name: 'haproxy',
      command: resolveTool('haproxy'),
      args: ['-f', configFile, '-db'],
      logFile: options.logFile,
      readyTimeoutMs: options.readyTimeoutMs ?? 15_000,
      stopGraceMs: 2000,
      isReady: () => answersShowInfo(socketPath),
    });
    return new HaproxyServer(process, socketPath, configFile);
  }

  get running(): boolean {
    return this.process.running;
  }

  async stop(): Promise<void> {
    await this.process.stop();
  }
}

function renderHaproxyConfig(options: HaproxyOptions & { socketPath: string }): string {
  return [
    'global',
    `    stats socket ${options.socketPath} mode 600 level admin`,
    `    nbthread ${options.threads ?? 1}`,
    '    maxconn 20000',
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
