/**
 * A real Kubernetes API server for tests and local runs: kine (etcd API on SQLite) and
 * kube-apiserver on free loopback ports, a static admin token, RBAC, self-signed serving
 * certificates and a service-account signing key, so TokenRequest issues real ServiceAccount
 * tokens. No scheduler, controller manager or nodes: objects are stored and validated, not run.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ManagedProcess } from './managed-process';
import { freePort, isListening } from './ports';
import { projectRoot, resolveTool } from './tools';
import { KubernetesClient, type KubernetesObject, type ResourceRef } from '../platform/kubernetes';

export interface KubernetesStackOptions {
  /** Holds kine's SQLite file, the certificates, keys and logs. */
  dir: string;
  readyTimeoutMs?: number;
}

/** A namespaced permission for a least-privilege ServiceAccount (a Role rule). */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** Plural and scope of the kinds our manifests and tests apply. */
const KINDS: Record<string, { plural: string; namespaced: boolean }> = {
  Namespace: { plural: 'namespaces', namespaced: false },
  ServiceAccount: { plural: 'serviceaccounts', namespaced: true },
  Secret: { plural: 'secrets', namespaced: true },
  ConfigMap: { plural: 'configmaps', namespaced: true },
  Service: { plural: 'services', namespaced: true },
  Deployment: { plural: 'deployments', namespaced: true },
  Role: { plural: 'roles', namespaced: true },
  RoleBinding: { plural: 'rolebindings', namespaced: true },
  ClusterRole: { plural: 'clusterroles', namespaced: false },
  ClusterRoleBinding: { plural: 'clusterrolebindings', namespaced: false },
  CustomResourceDefinition: { plural: 'customresourcedefinitions', namespaced: false },
  CanaryRollout: { plural: 'canaryrollouts', namespaced: true },
  HTTPRoute: { plural: 'httproutes', namespaced: true },
  Ingress: { plural: 'ingresses', namespaced: true },
};

/** Where an object of a manifest lives in the API (kinds in KINDS only). */
export function refOf(object: KubernetesObject): ResourceRef {
  const kind = KINDS[object.kind ?? ''];
  if (!kind) throw new Error(`no API path known for kind ${object.kind}`);
  const [group, version] = (object.apiVersion ?? '').includes('/')
    ? (object.apiVersion ?? '').split('/')
    : ['', object.apiVersion ?? ''];
  return {
    group: group ?? '',
    version: version ?? '',
    plural: kind.plural,
    ...(kind.namespaced ? { namespace: object.metadata.namespace ?? 'default' } : {}),
    name: object.metadata.name,
  };
}

/** The objects of YAML manifest files (multi-document), in order. */
export function readManifests(files: readonly string[]): KubernetesObject[] {
  return files.flatMap((file) =>
    parseAllDocuments(readFileSync(file, 'utf8'))
      .map((document) => document.toJSON() as KubernetesObject | null)
      .filter((object): object is KubernetesObject => object !== null),
  );
}

const CRD_REF: ResourceRef = {
  group: 'apiextensions.k8s.io',
  version: 'v1',
  plural: 'customresourcedefinitions',
};

/**
 * The Gateway API and Istio CRD files the bootstrap fetched from their Go modules
 * (`.tools/crds`, or CANARY_KUBERNETES_CRDS).
 */
export function thirdPartyCrdDir(): string {
  const dir = process.env.CANARY_KUBERNETES_CRDS ?? path.join(projectRoot, '.tools', 'crds');
  if (!existsSync(dir))
    throw new Error(
      `no Gateway API / Istio CRDs at ${dir}: run \`npm run setup\` (scripts/bootstrap.sh) to fetch them`,
    );
  return dir;
}

/** The CRD documents in `files` (multi-document YAML), e.g. to install a subset. */
export function readCrdFiles(files: readonly string[]): KubernetesObject[] {
  return readManifests(files).filter((object) => object.kind === 'CustomResourceDefinition');
}

export class KubernetesStack {
  private kine: ManagedProcess | undefined;
  private apiserver: ManagedProcess | undefined;
  private adminClient: KubernetesClient | undefined;

  private constructor(
    private readonly options: KubernetesStackOptions,
    readonly port: number,
    private readonly kinePort: number,
    readonly adminToken: string,
  ) {}

  /** The admin (system:masters) client; tests use it to arrange objects. */
  get admin(): KubernetesClient {
    // Created on first use: the CA exists only once the API server has started.
    this.adminClient ??= this.client(this.adminToken);
    return this.adminClient;
  }

  static async start(options: KubernetesStackOptions): Promise<KubernetesStack> {
    mkdirSync(path.join(options.dir, 'certs'), { recursive: true });
    const adminToken = randomBytes(24).toString('hex');
    writeFileSync(
      path.join(options.dir, 'tokens.csv'),
      `${adminToken},canary-admin,canary-admin,"system:masters"\n`,
      { mode: 0o600 },
    );
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(path.join(options.dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), {
      mode: 0o600,
    });
    writeFileSync(path.join(options.dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    const [port, kinePort] = [await freePort(), await freePort()];
    const stack = new KubernetesStack(options, port, kinePort, adminToken);
    try {
      await stack.startKine();
      await stack.startApiserver();
    } catch (error) {
      await stack.stop();
      throw error;
    }
    return stack;
  }

  get server(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  /** The CA of the self-signed serving certificate (kube-apiserver writes it on first start). */
  caPem(): string | undefined {
    const file = path.join(this.options.dir, 'certs', 'apiserver.crt');
    return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  }

  /** Applies CRDs (server-side) and waits until the API server serves each of them. */
  async installCrds(crds: readonly KubernetesObject[]): Promise<void> {
    const admin = this.client(this.adminToken);
    try {
      for (const crd of crds)
        await admin.apply({ ...CRD_REF, name: crd.metadata.name }, crd, 'canary-test-stack', { force: true });
      for (const crd of crds) await this.waitEstablished(admin, crd.metadata.name);
    } finally {
      await admin.close();
    }
  }

  /**
   * A namespace, a ServiceAccount in it, a Role with exactly `rules` and its RoleBinding, and a
   * token for that account from the TokenRequest API.
   */
  async serviceAccountToken(namespace: string, account: string, rules: PolicyRule[]): Promise<string> {
    const admin = this.client(this.adminToken);
    const manager = 'canary-test-stack';
    try {
      await admin.apply(
        { group: '', version: 'v1', plural: 'namespaces', name: namespace },
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
        manager,
      );
      await admin.apply(
        { group: '', version: 'v1', plural: 'serviceaccounts', namespace, name: account },
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: account, namespace } },
        manager,
      );
      const rbac = (plural: string, name: string): ResourceRef => ({
        group: 'rbac.authorization.k8s.io',
        version: 'v1',
        plural,
        namespace,
        name,
      });
      await admin.apply(
        rbac('roles', account),
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'Role',
          metadata: { name: account, namespace },
          rules,
        },
        manager,
        { force: true },
      );
      await admin.apply(
        rbac('rolebindings', account),
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: { name: account, namespace },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: account },
          subjects: [{ kind: 'ServiceAccount', name: account, namespace }],
        },
        manager,
      );
      const answer = await admin.create<{ status: { token: string } }>(
        {
          group: '',
          version: 'v1',
          plural: 'serviceaccounts',
          namespace,
          name: account,
          subresource: 'token',
        },
        { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } },
      );
      return answer.status.token;
    } finally {
      await admin.close();
    }
  }

  /** A client of this server with `token` (close it when done). */
  client(token: string): KubernetesClient {
    return new KubernetesClient({ server: this.server, token, ca: this.caPem() });
  }

  /** Stops the API server only (kine and its data stay): what an unreachable API server looks like. */
  async stopApiserver(): Promise<void> {
    await this.apiserver?.stop();
    this.apiserver = undefined;
  }

  async restartApiserver(): Promise<void> {
    await this.stopApiserver();
    await this.startApiserver();
  }

  async stop(): Promise<void> {
    await this.adminClient?.close().catch(() => undefined);
    await this.stopApiserver();
    await this.kine?.stop();
    this.kine = undefined;
  }

  private async startKine(): Promise<void> {
    const dir = this.options.dir;
    this.kine = await ManagedProcess.start({
      name: 'kine',
      command: resolveTool('kine'),
      args: [
        `--endpoint=sqlite://${path.join(dir, 'kine.db')}?_journal=WAL&cache=shared&_busy_timeout=30000`,
        `--listen-address=127.0.0.1:${this.kinePort}`,
        '--metrics-bind-address=0',
      ],
      logFile: path.join(dir, 'kine.log'),
      readyTimeoutMs: this.options.readyTimeoutMs ?? 30_000,
      isReady: () => isListening(this.kinePort),
    });
  }

  private async startApiserver(): Promise<void> {
    const dir = this.options.dir;
    this.apiserver = await ManagedProcess.start({
      name: 'kube-apiserver',
      command: resolveTool('kube-apiserver'),
      args: [
        `--etcd-servers=http://127.0.0.1:${this.kinePort}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${this.port}`,
        `--cert-dir=${path.join(dir, 'certs')}`,
        `--token-auth-file=${path.join(dir, 'tokens.csv')}`,
        '--authorization-mode=RBAC',
        '--anonymous-auth=false',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${path.join(dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${path.join(dir, 'sa.key')}`,
        '--service-cluster-ip-range=10.96.0.0/16',
        '--enable-priority-and-fairness=false',
        '--profiling=false',
        '--v=1',
      ],
      logFile: path.join(dir, 'kube-apiserver.log'),
      readyTimeoutMs: this.options.readyTimeoutMs ?? 60_000,
      stopGraceMs: 5000,
      isReady: () => this.answersReady(),
    });
  }

  private async answersReady(): Promise<boolean> {
    if (!(await isListening(this.port))) return false;
    const client = this.client(this.adminToken);
    try {
      return await client.isReady();
    } finally {
      await client.close();
    }
  }

  private async waitEstablished(admin: KubernetesClient, name: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const crd = await admin.get<{ status?: { conditions?: { type: string; status: string }[] } }>({
        ...CRD_REF,
        name,
      });
      if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return;
      if (Date.now() > deadline) throw new Error(`CRD ${name} was not established within 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** The files of the third-party CRD directory whose names match `pattern`. */
export function crdFiles(pattern: RegExp): string[] {
  const dir = thirdPartyCrdDir();
  return readdirSync(dir)
    .filter((file) => pattern.test(file))
    .map((file) => path.join(dir, file));
}
