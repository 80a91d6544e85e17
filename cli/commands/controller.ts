/**
 * `canary controller`: runs the CanaryRollout controller until SIGTERM/SIGINT. In a pod it reads
 * the in-cluster API server address, ServiceAccount token and CA; flags override each.
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import type { Command } from 'commander';
import { RolloutClient } from '../../client/rollout-client';
import { CanaryController } from '../../controller/controller';
import { FieldReader, parseDuration } from '../../core/validation';
import { messageOf } from '../../core/errors';
import { KubernetesClient } from '../../platform/kubernetes';
import { createLogger } from '../../platform/logger';
import { connectClient, temporalTargetFromEnv } from '../../platform/temporal-connection';
import { CliError } from '../errors';

const IN_CLUSTER = '/var/run/secrets/kubernetes.io/serviceaccount';
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

interface ControllerFlags {
  apiServer?: string;
  tokenFile?: string;
  caFile?: string;
  namespace?: string;
  leaseNamespace?: string;
  leaseName: string;
  identity?: string;
  leaderElection: boolean;
  resync: string;
  address?: string;
  temporalNamespace?: string;
}

function readFileFlag(r: FieldReader, file: string, field: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (error) {
    r.fail(field, `cannot read ${file}: ${messageOf(error)}`);
    return undefined;
  }
}

/** The controller's settings from flags, the environment and the pod; `--flag: rule` otherwise. */
export function controllerSettings(flags: ControllerFlags, env: NodeJS.ProcessEnv) {
  const r = new FieldReader();
  const host = env.KUBERNETES_SERVICE_HOST;
  const apiServer =
    flags.apiServer ??
    (host
      ? `https://${host.includes(':') ? `[${host}]` : host}:${env.KUBERNETES_SERVICE_PORT ?? '443'}`
      : undefined);
  if (!apiServer) r.fail('--api-server', 'is required outside a pod (no KUBERNETES_SERVICE_HOST)');
  else if (!/^https?:\/\/[^\s/?#@]+\/?$/.test(apiServer)) r.fail('--api-server', 'must be an https:// URL');
  const tokenFile = flags.tokenFile ?? `${IN_CLUSTER}/token`;
  const token =
    flags.tokenFile === undefined && env.KUBERNETES_TOKEN
      ? env.KUBERNETES_TOKEN
      : readFileFlag(r, tokenFile, '--token-file');
  const caFile = flags.caFile ?? (existsSync(`${IN_CLUSTER}/ca.crt`) ? `${IN_CLUSTER}/ca.crt` : undefined);
  const ca = caFile === undefined ? undefined : readFileFlag(r, caFile, '--ca-file');
  for (const [flag, value] of [
    ['--namespace', flags.namespace],
    ['--lease-namespace', flags.leaseNamespace],
    ['--lease-name', flags.leaseName],
  ] as const)
    if (value !== undefined && !DNS_LABEL.test(value)) r.fail(flag, 'must be a Kubernetes name');
  const resyncMs = parseDuration(flags.resync);
  if (resyncMs === undefined || resyncMs < 100) r.fail('--resync', 'must be a duration of at least 100ms');
  const podNamespace = existsSync(`${IN_CLUSTER}/namespace`)
    ? readFileSync(`${IN_CLUSTER}/namespace`, 'utf8').trim()
    : undefined;
  r.throwIfAny();
  return {
    connection: { server: apiServer!, token: token!, ca },
    namespace: flags.namespace,
    resyncMs: resyncMs!,
    leaderElection: flags.leaderElection
      ? {
          namespace: flags.leaseNamespace ?? flags.namespace ?? podNamespace ?? 'default',
          name: flags.leaseName,
          identity: flags.identity ?? `${os.hostname()}-${process.pid}`,
          leaseDurationSeconds: 15,
        }
      : undefined,
  };
}

export function register(program: Command): void {
  program
    .command('controller')
    .description('Watch CanaryRollout resources and run their rollouts (Kubernetes-native mode)')
    .option('--api-server <url>', 'Kubernetes API server (default: in-cluster)')
    .option(
      '--token-file <path>',
      'bearer token file (default: the pod ServiceAccount token, or $KUBERNETES_TOKEN)',
    )
    .option('--ca-file <path>', "PEM of the API server's CA (default: the pod's)")
    .option('--namespace <name>', 'watch one namespace (default: all)')
    .option('--lease-namespace <name>', 'namespace of the leader-election Lease')
    .option('--lease-name <name>', 'name of the leader-election Lease', 'canary-controller')
    .option('--identity <id>', 'this replica in the Lease (default: hostname-pid)')
    .option('--no-leader-election', 'reconcile without a Lease (one replica only)')
    .option('--resync <duration>', 'reconcile every resource this often', '5s')
    .option('--address <host:port>', 'Temporal frontend (default: $TEMPORAL_ADDRESS)')
    .option('--temporal-namespace <name>', 'Temporal namespace (default: $TEMPORAL_NAMESPACE)')
    .action(async (flags: ControllerFlags) => {
      const settings = controllerSettings(flags, process.env);
      const target = temporalTargetFromEnv({ address: flags.address, namespace: flags.temporalNamespace });
      const temporal = await connectClient(target).catch((error: unknown) => {
        throw new CliError(`cannot reach Temporal at ${target.address}: ${messageOf(error)}`);
      });
      const kubernetes = new KubernetesClient(settings.connection);
      const logger = createLogger('canary-controller');
      const stop = new AbortController();
      process.once('SIGTERM', () => stop.abort());
      process.once('SIGINT', () => stop.abort());
      const controller = new CanaryController({
        kubernetes,
        rollouts: new RolloutClient(temporal),
        logger,
        namespace: settings.namespace,
        resyncMs: settings.resyncMs,
        leaderElection: settings.leaderElection,
      });
      logger.info(
        { apiServer: settings.connection.server, namespace: settings.namespace ?? '(all)' },
        'controller started',
      );
      try {
        await controller.run(stop.signal);
      } finally {
        await kubernetes.close();
        await temporal.connection.close();
      }
    });
}
