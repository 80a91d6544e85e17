import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ManagedProcess } from './managed-process';
import { freePort, isListening } from './ports';

export interface NginxOptions {
  /** nginx's prefix: config, temp files, logs and the served file live here. */
  dir: string;
  port?: number;
  workerProcesses?: number;
  /** The body of GET / (and every other path). */
  body?: string;
  binary?: string;
}

export const NGINX_BINARY = process.env.NGINX_PATH ?? '/usr/sbin/nginx';

/**
 * Debian's nginx as a foreground child with its own prefix, serving one small static response on
 * loopback (the benchmark's reference server). No access log: it would measure the disk.
 */
export class NginxServer {
  private constructor(
    private readonly process: ManagedProcess,
    readonly port: number,
  ) {}

  static async start(options: NginxOptions): Promise<NginxServer> {
    const port = options.port ?? (await freePort());
    const dir = path.resolve(options.dir);
    for (const sub of ['html', 'logs', 'temp']) mkdirSync(path.join(dir, sub), { recursive: true });
    writeFileSync(path.join(dir, 'html', 'index.html'), options.body ?? 'hello from nginx\n');
    // Run as root, nginx's workers drop to `nobody`: they must be able to read the served file.
    for (const sub of ['', 'html']) chmodSync(path.join(dir, sub), 0o755);
    chmodSync(path.join(dir, 'html', 'index.html'), 0o644);
    const config = `
worker_processes ${options.workerProcesses ?? 1};
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${dir}/temp/body;
  proxy_temp_path ${dir}/temp/proxy;
  fastcgi_temp_path ${dir}/temp/fastcgi;
  uwsgi_temp_path ${dir}/temp/uwsgi;
  scgi_temp_path ${dir}/temp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  server {
    listen 127.0.0.1:${port} reuseport backlog=4096;
    root ${dir}/html;
    location / { try_files /index.html =404; default_type text/plain; }
  }
}
`;
    const configFile = path.join(dir, 'nginx.conf');
    writeFileSync(configFile, config);
    const process = await ManagedProcess.start({
      name: 'nginx',
      command: options.binary ?? NGINX_BINARY,
      args: ['-p', dir, '-c', configFile, '-e', path.join(dir, 'logs', 'error.log')],
      logFile: path.join(dir, 'logs', 'stdout.log'),
      isReady: () => isListening(port),
      readyTimeoutMs: 15_000,
      stopGraceMs: 3000,
    });
    return new NginxServer(process, port);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The nginx master and workers' pids are children of this one. */
  get pid(): number {
    return this.process.pid;
  }

  async stop(): Promise<void> {
    await this.process.stop();
  }
}
