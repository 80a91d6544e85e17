/**
 * The worker policy: what the operator of a rollout worker lets a rollout spec reach. A spec is
 * written by whoever may start a rollout; the policy is written by whoever runs the worker (a file
 * and environment variables of the worker, never the spec), and a spec that names anything the
 * policy does not list is refused before the worker touches it.
 *
 * Pure: parsing and checking take plain values; client/worker-policy.ts loads them.
 */
import type { RolloutSpec } from './spec';
import { FieldReader, isPlainObject, join, ValidationError, type FieldIssue } from '../core/validation';

export const WORKER_POLICY_PROFILES = ['development', 'production'] as const;
export type WorkerPolicyProfile = (typeof WORKER_POLICY_PROFILES)[number];

export interface WorkerPolicy {
  /**
   * `production` allows exactly what is listed. `development` (a worker without a policy file)
   * also allows loopback hosts for every endpoint and secret names starting with `CANARY_`.
   */
  profile: WorkerPolicyProfile;
  /** Router admin endpoints (builtin adminUrl, the Kubernetes routers' apiServer, HAProxy runtimeApi). */
  routerEndpoints: string[];
  /** Hosts of webhook and Alertmanager sinks. */
  alertHosts: string[];
  /** Hosts of Prometheus sources (analysis.sources[].url). */
  prometheusHosts: string[];
  /** Environment variables of the worker a spec may name (tokenEnv, secretEnv, urlEnv, ...). */
  secretNames: string[];
  nginx: {
    /** NGINX binaries the router may run. */
    binaries: string[];
    /** Files or directories (ending in /) the router may read and write: configFile, includeFile, prefix. */
    configPaths: string[];
    /** Pid files the router may read a process id from and signal. */
    pidFiles: string[];
  };
}

export const WORKER_POLICY_LISTS = [
  'routerEndpoints',
  'alertHosts',
  'prometheusHosts',
  'secretNames',
  'nginx.binaries',
  'nginx.configPaths',
  'nginx.pidFiles',
] as const;
export type WorkerPolicyList = (typeof WORKER_POLICY_LISTS)[number];

/** What a router spec gets when it names no secret or binary (the routers' own defaults). */
export const ROUTER_DEFAULT_TOKEN_ENV = Object.freeze({
  builtin: 'CANARY_PROXY_TOKEN',
  'gateway-api': 'KUBERNETES_TOKEN',
  istio: 'KUBERNETES_TOKEN',
  'ingress-nginx': 'KUBERNETES_TOKEN',
} as const);
export const NGINX_DEFAULT_BINARY = '/usr/sbin/nginx';

const DEVELOPMENT_SECRET_PREFIX = 'CANARY_';
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** Absolute, with no `.`/`..` segments or doubled slashes: a prefix check on it means what it says. */
const NORMAL_PATH = /^(\/[^\s/]+)+\/?$/;
const DOT_SEGMENT = /(^|\/)\.\.?(\/|$)/;
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;
const ENDPOINT_URL = /^(https?|tcp):\/\/[^\s/?#@]+(\/[^\s?#]*)?$/;

export function emptyWorkerPolicy(profile: WorkerPolicyProfile): WorkerPolicy {
  return {
    profile,
    routerEndpoints: [],
    alertHosts: [],
    prometheusHosts: [],
    secretNames: [],
    nginx: { binaries: [], configPaths: [], pidFiles: [] },
  };
}

export function isNormalPath(path: string): boolean {
  return NORMAL_PATH.test(path) && !DOT_SEGMENT.test(path);
}

/**
 * Reads the entries of one list (from a file or a variable); `field` names where they came from
 * in the errors. Endpoints and hosts: `host`, `host:port`, a URL prefix `https://host:port/path`
 * (also `tcp://host:port`), and for router endpoints an absolute unix socket path.
 */
export function readPolicyEntries(
  r: FieldReader,
  list: WorkerPolicyList,
  value: unknown,
  field: string,
): string[] {
  if (!Array.isArray(value)) return r.fail(field, 'must be a list of strings') ?? [];
  const entries: string[] = [];
  value.forEach((entry, index) => {
    const at = join(field, index);
    const text = r.string(entry, at);
    if (text === undefined) return;
    const rule = entryRule(list, text);
    if (rule) r.fail(at, rule);
    else entries.push(text);
  });
  return entries;
}

function entryRule(list: WorkerPolicyList, entry: string): string | undefined {
  switch (list) {
    case 'secretNames':
      return ENV_NAME.test(entry) ? undefined : 'must be an environment variable name';
    case 'nginx.binaries':
    case 'nginx.pidFiles':
    case 'nginx.configPaths':
      return isNormalPath(entry)
        ? undefined
        : 'must be an absolute path without . or .. segments (a directory ends in /)';
    case 'routerEndpoints':
      if (entry.startsWith('/'))
        return isNormalPath(entry) ? undefined : 'must be an absolute unix socket path without . or ..';
      return endpointRule(entry);
    case 'alertHosts':
    case 'prometheusHosts':
      return endpointRule(entry);
  }
}

function endpointRule(entry: string): string | undefined {
  if (ENDPOINT_URL.test(entry) && URL.canParse(entry)) return undefined;
  if (HOST_PORT.test(entry) && URL.canParse(`http://${entry}`)) return undefined;
  return 'must be host, host:port or a URL prefix such as https://host:port/path';
}

/** Reads a policy document (a parsed JSON or YAML file); `field` prefixes every issue. */
export function parseWorkerPolicy(
  document: unknown,
  field: string,
  fallbackProfile: WorkerPolicyProfile = 'production',
): WorkerPolicy {
  const r = new FieldReader();
  const root = r.object(document, field);
  if (!root) throw new ValidationError(r.issues);
  r.onlyKeys(
    root,
    ['profile', 'routerEndpoints', 'alertHosts', 'prometheusHosts', 'secretNames', 'nginx'],
    field,
  );
  const policy = emptyWorkerPolicy(
    r.oneOf(root.profile, join(field, 'profile'), WORKER_POLICY_PROFILES, fallbackProfile) ?? fallbackProfile,
  );
  const nginx = r.optionalObject(root.nginx, join(field, 'nginx'));
  if (nginx) r.onlyKeys(nginx, ['binaries', 'configPaths', 'pidFiles'], join(field, 'nginx'));
  for (const list of WORKER_POLICY_LISTS) {
    const [group, key] = list.split('.') as [string, string | undefined];
    const value = key ? nginx?.[key] : root[group];
    if (value === undefined) continue;
    addEntries(policy, list, readPolicyEntries(r, list, value, join(field, list)));
  }
  r.throwIfAny();
  return policy;
}

export function addEntries(policy: WorkerPolicy, list: WorkerPolicyList, entries: readonly string[]): void {
  const target = listOf(policy, list);
  for (const entry of entries) if (!target.includes(entry)) target.push(entry);
}

function listOf(policy: WorkerPolicy, list: WorkerPolicyList): string[] {
  switch (list) {
    case 'nginx.binaries':
      return policy.nginx.binaries;
    case 'nginx.configPaths':
      return policy.nginx.configPaths;
    case 'nginx.pidFiles':
      return policy.nginx.pidFiles;
    default:
      return policy[list];
  }
}

const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

interface Endpoint {
  protocol: string;
  hostname: string;
  port: string;
  pathname: string;
}

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' };

function endpointOf(url: string): Endpoint | undefined {
  if (!URL.canParse(url)) return undefined;
  const parsed = new URL(url);
  return {
    protocol: parsed.protocol,
    hostname: parsed.hostname.toLowerCase(),
    port: parsed.port || DEFAULT_PORTS[parsed.protocol] || '',
    pathname: parsed.pathname || '/',
  };
}

function matchesEntry(target: Endpoint, entry: string): boolean {
  if (entry.startsWith('/')) return false;
  if (entry.includes('://')) {
    const allowed = endpointOf(entry);
    if (!allowed) return false;
    const prefix = allowed.pathname.endsWith('/') ? allowed.pathname : `${allowed.pathname}/`;
    return (
      allowed.protocol === target.protocol &&
      allowed.hostname === target.hostname &&
      allowed.port === target.port &&
      (allowed.pathname === '/' || target.pathname === allowed.pathname || target.pathname.startsWith(prefix))
    );
  }
  const hostPort = new URL(`http://${entry}`);
  return (
    hostPort.hostname.toLowerCase() === target.hostname &&
    (hostPort.port === '' || hostPort.port === target.port)
  );
}

function pathAllowed(path: string, allowed: readonly string[]): boolean {
  return allowed.some((entry) => (entry.endsWith('/') ? path.startsWith(entry) : path === entry));
}

type EndpointList = 'routerEndpoints' | 'alertHosts' | 'prometheusHosts';

const LIST_WORDS: Record<WorkerPolicyList, string> = {
  routerEndpoints: 'router endpoints',
  alertHosts: 'alert sink hosts',
  prometheusHosts: 'Prometheus hosts',
  secretNames: 'secret names',
  'nginx.binaries': 'NGINX binaries',
  'nginx.configPaths': 'NGINX config paths',
  'nginx.pidFiles': 'NGINX pid files',
};

/**
 * Checks what a validated spec would make the worker reach against the worker's policy; throws
 * one ValidationError naming each field and the rule (`router.tokenEnv: CANARY_X is not in the
 * worker's allowed secret names`). Fields of unknown kinds are left to the components, which
 * refuse those kinds; every `*Env` field of the router and the sinks is a secret name wherever it is.
 */
export function checkSpecAgainstWorkerPolicy(spec: RolloutSpec, policy: WorkerPolicy): void {
  const issues: FieldIssue[] = [];
  const development = policy.profile === 'development';
  const refuse = (field: string, value: string, list: WorkerPolicyList) => {
    const loopback =
      development && list !== 'secretNames' && !list.startsWith('nginx.')
        ? ' (this development worker also allows loopback hosts)'
        : development && list === 'secretNames'
          ? ` (this development worker also allows names starting with ${DEVELOPMENT_SECRET_PREFIX})`
          : '';
    issues.push({ field, rule: `${value} is not in the worker's allowed ${LIST_WORDS[list]}${loopback}` });
  };
  const checkEndpoint = (field: string, value: unknown, list: EndpointList) => {
    if (typeof value !== 'string') return;
    if (list === 'routerEndpoints' && value.startsWith('/')) {
      if (!isNormalPath(value) || !policy.routerEndpoints.includes(value)) refuse(field, value, list);
      return;
    }
    const target = endpointOf(value);
    if (!target) return refuse(field, value, list);
    if (development && LOOPBACK_HOST.test(target.hostname)) return;
    if (!listOf(policy, list).some((entry) => matchesEntry(target, entry))) refuse(field, value, list);
  };
  const checkSecret = (field: string, value: unknown) => {
    if (typeof value !== 'string') return;
    if (development && value.startsWith(DEVELOPMENT_SECRET_PREFIX)) return;
    if (!policy.secretNames.includes(value)) refuse(field, value, 'secretNames');
  };
  const checkPath = (field: string, value: unknown, list: 'nginx.configPaths' | 'nginx.pidFiles') => {
    if (typeof value !== 'string') return;
    if (!isNormalPath(value) || !pathAllowed(value, listOf(policy, list))) refuse(field, value, list);
  };
  const checkSecretFields = (object: Record<string, unknown>, field: string) => {
    for (const [key, value] of Object.entries(object))
      if (key.endsWith('Env') && key !== 'tokenEnv') checkSecret(join(field, key), value);
  };

  const router = spec.router;
  const defaults: Readonly<Record<string, string | undefined>> = ROUTER_DEFAULT_TOKEN_ENV;
  const tokenEnv = router.tokenEnv ?? defaults[router.kind];
  if (tokenEnv !== undefined) checkSecret('router.tokenEnv', tokenEnv);
  checkSecretFields(router, 'router');
  switch (router.kind) {
    case 'builtin':
      checkEndpoint('router.adminUrl', router.adminUrl, 'routerEndpoints');
      break;
    case 'gateway-api':
    case 'istio':
    case 'ingress-nginx':
      checkEndpoint('router.apiServer', router.apiServer, 'routerEndpoints');
      break;
    case 'haproxy':
      checkEndpoint('router.runtimeApi', router.runtimeApi, 'routerEndpoints');
      break;
    case 'nginx': {
      const binary = router.binary ?? NGINX_DEFAULT_BINARY;
      if (typeof binary === 'string' && !(isNormalPath(binary) && policy.nginx.binaries.includes(binary)))
        refuse('router.binary', binary, 'nginx.binaries');
      for (const key of ['configFile', 'includeFile', 'prefix'])
        checkPath(`router.${key}`, router[key], 'nginx.configPaths');
      checkPath('router.pidFile', router.pidFile, 'nginx.pidFiles');
      break;
    }
  }

  spec.alerts.sinks.forEach((sink, index) => {
    const field = `alerts.sinks[${index}]`;
    checkSecretFields(sink, field);
    if (sink.kind === 'webhook' || sink.kind === 'alertmanager')
      checkEndpoint(`${field}.url`, sink.url, 'alertHosts');
  });

  const sources = spec.analysis.options.sources;
  if (Array.isArray(sources))
    sources.forEach((source, index) => {
      if (isPlainObject(source) && source.kind === 'prometheus')
        checkEndpoint(`analysis.sources[${index}].url`, source.url, 'prometheusHosts');
    });

  if (issues.length > 0) throw new ValidationError(issues);
}
