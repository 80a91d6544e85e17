#!/usr/bin/env node
/**
 * The built-in proxy as a process (the local stack runs it as a child):
 *
 *   node --import tsx routing/proxy/main.ts --listen 127.0.0.1:8080 \
 *     --admin-listen 127.0.0.1:9901 --admin-token-env CANARY_PROXY_TOKEN \
 *     --baseline http://127.0.0.1:18081 --canary http://127.0.0.1:18082
 *
 * The token comes from an environment variable so it never shows in `ps`. Exit codes: 0 after
 * SIGTERM/SIGINT, 2 on bad options or when it cannot listen.
 */
import { Command, CommanderError } from 'commander';
import { readConfig, text, variable } from '../../platform/config';
import { createLogger } from '../../platform/logger';
import { ValidationError } from '../../core/validation';
import { startBuiltinProxy, type BuiltinProxyInput } from './proxy';
import { writeErrorLines } from '../../platform/process';

interface Flags {
  listen: string;
  adminListen: string;
  adminTokenEnv: string;
  baseline: string;
  canary: string;
  share?: string;
  stickyCookie?: string;
  stickyHeader?: string;
  stickyMaxAge?: string;
  healthPath?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthFall?: string;
  healthRise?: string;
  healthChecks: boolean;
  connections?: string;
  upstreamTimeout?: string;
  stateFile?: string;
}

const numberOrText = (value: string | undefined): number | string | undefined =>
  value === undefined ? undefined : /^\d+(\.\d+)?$/.test(value) ? Number(value) : value;

export function inputFromFlags(flags: Flags, env: NodeJS.ProcessEnv): BuiltinProxyInput {
  if (flags.stickyCookie !== undefined && flags.stickyHeader !== undefined) {
    throw new ValidationError([
      { field: 'sticky', rule: 'choose --sticky-cookie or --sticky-header, not both' },
    ]);
  }
  // The one variable the proxy reads is the one --admin-token-env names (its length is checked
  // with the other options, as adminToken).
  const { token } = readConfig(env, { token: variable(flags.adminTokenEnv, text, { required: true }) });
  const stickyName = flags.stickyCookie ?? flags.stickyHeader;
  return {
    listen: flags.listen,
    adminListen: flags.adminListen,
    adminToken: token,
    upstreams: { baseline: flags.baseline, canary: flags.canary },
    share: numberOrText(flags.share) as number | undefined,
    sticky:
      stickyName === undefined
        ? undefined
        : {
            by: flags.stickyCookie !== undefined ? 'cookie' : 'header',
            name: stickyName,
            maxAge: numberOrText(flags.stickyMaxAge),
          },
    healthCheck: flags.healthChecks
      ? {
          path: flags.healthPath,
          interval: numberOrText(flags.healthInterval),
          timeout: numberOrText(flags.healthTimeout),
          fall: numberOrText(flags.healthFall) as number | undefined,
          rise: numberOrText(flags.healthRise) as number | undefined,
        }
      : false,
    connections: numberOrText(flags.connections) as number | undefined,
    upstreamTimeout: numberOrText(flags.upstreamTimeout),
    stateFile: flags.stateFile,
  };
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('builtin-proxy')
    .description('Splits HTTP requests between a baseline and a canary by weight')
    .requiredOption('--listen <host:port>', 'where the proxy serves traffic')
    .requiredOption('--admin-listen <host:port>', 'where the admin endpoint and /metrics listen')
    .requiredOption('--admin-token-env <name>', 'environment variable holding the admin bearer token')
    .requiredOption('--baseline <origin>', 'baseline origin, e.g. http://127.0.0.1:18081')
    .requiredOption('--canary <origin>', 'canary origin')
    .option('--share <percent>', "canary's share at start (default 0; a state file's value wins)")
    .option('--sticky-cookie <name>', 'keep a user on one side with this cookie')
    .option('--sticky-header <name>', 'keep a user on one side by hashing this header (e.g. x-user-id)')
    .option('--sticky-max-age <duration>', 'sticky cookie lifetime (default 1 day)')
    .option('--health-path <path>', 'active health check path (default /)')
    .option('--health-interval <duration>', 'between health checks (default 1s)')
    .option('--health-timeout <duration>', 'health check timeout (default 1s)')
    .option('--health-fall <n>', 'failed checks that mark an upstream down (default 2)')
    .option('--health-rise <n>', 'passed checks that bring it back (default 2)')
    .option('--no-health-checks', 'turn active health checks off')
    .option('--connections <n>', 'keep-alive connections per upstream (default 128)')
    .option('--upstream-timeout <duration>', 'time to upstream response headers (default 30s)')
    .option('--state-file <path>', 'keeps the admin-set share and upstreams across restarts')
    .exitOverride();
  const logger = createLogger('builtin-proxy');
  try {
    program.parse(argv, { from: 'user' });
    const proxy = await startBuiltinProxy(inputFromFlags(program.opts<Flags>(), process.env), logger);
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    logger.info('shutting down');
    await proxy.close();
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    writeErrorLines(error);
    return 2;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    () => process.exit(2),
  );
}
