import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';

/** The repository root, found from this file whether it runs from source or from dist/. */
export const projectRoot: string = (() => {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find package.json above ${__dirname}`);
    dir = parent;
  }
  return dir;
})();

export type ToolName =
  | 'temporal'
  | 'ferretdb'
  | 'haproxy'
  | 'nginx'
  | 'wrk'
  | 'alertmanager'
  | 'chromium'
  | 'kube-apiserver'
  | 'kine';

const ENV_OVERRIDES: Record<ToolName, string> = {
  temporal: 'TEMPORAL_CLI_PATH',
  ferretdb: 'FERRETDB_PATH',
  haproxy: 'HAPROXY_PATH',
  nginx: 'NGINX_PATH',
  wrk: 'WRK_PATH',
  alertmanager: 'ALERTMANAGER_PATH',
  chromium: 'CHROMIUM_PATH',
  'kube-apiserver': 'KUBE_APISERVER_PATH',
  kine: 'KINE_PATH',
};

/** Debian packages install these outside a non-root user's PATH (/usr/sbin). */
const DEBIAN_PATHS: Partial<Record<ToolName, string>> = {
  haproxy: '/usr/sbin/haproxy',
  nginx: '/usr/sbin/nginx',
  wrk: '/usr/bin/wrk',
  alertmanager: '/usr/bin/prometheus-alertmanager',
  chromium: '/usr/bin/chromium',
};

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Where a server binary is: the environment override, then the bootstrap's .tools/bin, then PATH.
 * Throws with the command that fixes it rather than letting a spawn fail with ENOENT.
 */
export function resolveTool(name: ToolName): string {
  const fromEnv = process.env[ENV_OVERRIDES[name]];
  if (fromEnv) {
    if (!isExecutable(fromEnv))
      throw new Error(`${ENV_OVERRIDES[name]}=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  const bootstrapped = path.join(projectRoot, '.tools', 'bin', name);
  if (isExecutable(bootstrapped)) return bootstrapped;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, name);
    if (dir && isExecutable(candidate)) return candidate;
  }
  const debian = DEBIAN_PATHS[name];
  if (debian !== undefined) {
    if (isExecutable(debian)) return debian;
    throw new Error(
      `${name} is not installed: run \`bash scripts/install-debian-packages.sh\` (or set ${ENV_OVERRIDES[name]})`,
    );
  }
  throw new Error(
    `${name} is not installed: run \`npm run setup\` (scripts/bootstrap.sh) to build it into .tools/bin`,
  );
}
