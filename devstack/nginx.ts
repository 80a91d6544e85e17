import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ProcessSpec } from './managed-process';
import { RestartableServer } from './restartable-server';
import { isListening } from './ports';
import { resolveTool } from './tools';

export interface NginxOptions {
  /** The prefix: nginx.conf, the pid file, logs and temp paths all live here. */
  dir: string;
  /** Directives inside `http { }`: servers, upstreams, includes. */
  http: string;
  /** Port to wait for before the server counts as started. */
  readyPort: number;
  workers?: number;
  logFile: string;
  readyTimeoutMs?: number;
}

/**
 * A real NGINX (Debian's) as a foreground master process with its own prefix, config, pid file
 * and logs, run as the current user (workers too, when that user is root). Stopping it is
 * NGINX's fast shutdown (SIGTERM).
 */
export class NginxServer extends RestartableServer {
  readonly dir: string;

  private constructor(private readonly options: NginxOptions) {
    super();
    this.dir = options.dir;
  }

  static async start(options: NginxOptions): Promise<NginxServer> {
    mkdirSync(path.join(options.dir, 'temp'), { recursive: true });
    writeFileSync(path.join(options.dir, 'nginx.conf'), renderNginxConfig(options));
    const server = new NginxServer(options);
    await server.launch();
    return server;
  }

  /** The `-p` prefix it runs with. */
  get prefix(): string {
    return `${this.dir}/`;
  }

  get configFile(): string {
    return path.join(this.dir, 'nginx.conf');
  }

  get pidFile(): string {
    return path.join(this.dir, 'nginx.pid');
  }

  get errorLog(): string {
    return path.join(this.dir, 'error.log');
  }

  protected processSpec(): ProcessSpec {
    return {
      name: 'nginx',
      command: resolveTool('nginx'),
      args: ['-c', this.configFile, '-p', this.prefix, '-e', this.errorLog],
      logFile: this.options.logFile,
      readyTimeoutMs: this.options.readyTimeoutMs ?? 15_000,
      stopGraceMs: 2000,
      isReady: () => isListening(this.options.readyPort),
    };
  }
}

/**
 * The `http` block of an NGINX in front of a router-managed upstream: the router's include
 * file and one server proxying to the upstream with keep-alive; `stickyCookie` passes on the
 * cookie the include's map sets (NGINX open source cannot insert one by itself).
 */
export function nginxProxyHttp(options: {
  includeFile: string;
  listen: string;
  upstream: string;
  stickyCookie?: boolean;
}): string {
  const cookie = options.stickyCookie
    ? `\n            add_header Set-Cookie $canary_set_cookie_${options.upstream};`
    : '';
  return `    include ${options.includeFile};
    server {
        listen ${options.listen};
        location / {
            proxy_pass http://${options.upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;${cookie}
        }
    }`;
}

function renderNginxConfig(options: NginxOptions): string {
  const dir = options.dir;
  const temp = (name: string) => `${path.join(dir, 'temp', name)}`;
  const asRoot = process.getuid?.() === 0;
  return `${asRoot ? 'user root;\n' : ''}daemon off;
master_process on;
worker_processes ${options.workers ?? 1};
pid ${path.join(dir, 'nginx.pid')};
error_log ${path.join(dir, 'error.log')} warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path ${temp('body')};
    proxy_temp_path ${temp('proxy')};
    fastcgi_temp_path ${temp('fastcgi')};
    uwsgi_temp_path ${temp('uwsgi')};
    scgi_temp_path ${temp('scgi')};
    keepalive_requests 100000;
${options.http}
}
`;
}

/** A server block answering every request with `body` from memory (a reference upstream). */
export function nginxStaticHttp(port: number, body: string): string {
  const escaped = body.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  return `    server {
        listen 127.0.0.1:${port} reuseport backlog=4096;
        location / { default_type text/plain; return 200 "${escaped}"; }
    }`;
}
