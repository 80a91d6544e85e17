/**
 * The EXPERIMENTAL gateway-api router against a KUBERNETES API CONTRACT DOUBLE: no cluster runs
 * here, so a loopback server answers as the Kubernetes API server does for one HTTPRoute (JSON
 * Patch with `test`, resourceVersion and generation bumps, Status objects for errors, a gateway
 * controller that sets status conditions). The HTTPRoute fixture and the answers are written to
 * the API's documented shapes, not captured from a live cluster. The tests pin the requests the
 * router sends (method, path, content type, patch operations): that is the contract.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRouter } from '../../routing/routers';
import { RouterUnavailableError, type TrafficRouter } from '../../routing/traffic-router';
import { freePort } from '../../devstack/ports';
import { ValidationError } from '../../core/validation';

const ROUTE_PATH = '/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/shop';
const TOKEN = 'contract-double-token';
const FIXTURE = path.join(__dirname, '..', 'fixtures', 'gateway-api', 'httproute-shop.json');

interface RecordedRequest {
  method: string;
  path: string;
  contentType: string | undefined;
  body: unknown;
}

type Operation = { op: string; path: string; value?: unknown };

interface RouteDocument {
  metadata: { resourceVersion: string; generation: number };
  status: { parents: { conditions: Record<string, unknown>[] }[] };
  [field: string]: unknown;
}

const child = (node: unknown, key: string): unknown =>
  node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined;

/** The loopback stand-in for the API server (named as such: a test double for what cannot run here). */
class KubernetesApiContractDouble {
  route = JSON.parse(readFileSync(FIXTURE, 'utf8')) as RouteDocument;
  readonly requests: RecordedRequest[] = [];
  /** What the simulated gateway controller answers for the next generations. */
  controller: 'accepts' | 'rejects' = 'accepts';
  /** Makes the next PATCH meet a route someone else changed in between. */
  concurrentEdit = false;
  private server: http.Server | undefined;

  constructor(readonly port: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      let text = '';
      req.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      req.on('end', () => {
        const body: unknown = text ? JSON.parse(text) : undefined;
        this.requests.push({
          method: req.method ?? '',
          path: req.url ?? '',
          contentType: req.headers['content-type'],
          body,
        });
        const [status, answer] = this.answer(req, body as Operation[] | undefined);
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  private answer(req: http.IncomingMessage, operations: Operation[] | undefined): [number, unknown] {
    const status = (code: number, reason: string, message: string) =>
      [
        code,
        { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code },
      ] as [number, unknown];
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return status(401, 'Unauthorized', 'Unauthorized');
    if (req.url !== ROUTE_PATH)
      return status(404, 'NotFound', `httproutes.gateway.networking.k8s.io "${req.url}" not found`);
    if (req.method === 'GET') return [200, this.route];
    if (req.method !== 'PATCH' || req.headers['content-type'] !== 'application/json-patch+json')
      return status(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format');
    if (this.concurrentEdit) {
      this.concurrentEdit = false;
      this.route.metadata.resourceVersion = String(Number(this.route.metadata.resourceVersion) + 1);
    }
    const copy = JSON.parse(JSON.stringify(this.route)) as RouteDocument;
    for (const operation of operations ?? []) {
      const keys = operation.path.split('/').slice(1);
      const last = keys.pop() as string;
      const parent = keys.reduce<unknown>(child, copy);
      if (operation.op === 'test') {
        if (child(parent, last) !== operation.value)
          return status(
            422,
            'Invalid',
            `the server rejected our request due to an error in our request: testing value ${operation.path} failed`,
          );
      } else if (Array.isArray(parent) && last === '-') {
        parent.push(operation.value);
      } else if (parent !== null && typeof parent === 'object') {
        (parent as Record<string, unknown>)[last] = operation.value;
      } else {
        return status(422, 'Invalid', `doc is missing path: ${operation.path}`);
      }
    }
    const metadata = copy.metadata;
    metadata.resourceVersion = String(Number(metadata.resourceVersion) + 1);
    metadata.generation += 1;
    const accepted = this.controller === 'accepts';
    for (const parent of copy.status.parents) {
      for (const condition of parent.conditions) {
        if (condition.type === 'ResolvedRefs' && !accepted) {
          Object.assign(condition, {
            status: 'False',
            reason: 'BackendNotFound',
            message: 'service "shop-v2" not found',
          });
        }
        condition.observedGeneration = metadata.generation;
      }
    }
    this.route = copy;
    return [200, copy];
  }
}

describe('gateway-api router (experimental) against the Kubernetes API contract double', () => {
  let api: KubernetesApiContractDouble;
  let router: TrafficRouter;
  const spec = (apiServer: string) => ({
    kind: 'gateway-api',
    apiServer,
    tokenEnv: 'KUBE_TOKEN',
    namespace: 'shop',
    route: 'shop',
    backends: { baseline: { name: 'shop-v1', port: 8080 }, canary: { name: 'shop-v2', port: 8080 } },
    settleTimeout: '1s',
  });
  const targets = {
    baseline: { url: 'http://shop-v1.shop:8080' },
    canary: { url: 'http://shop-v2.shop:8080' },
  };
  const patches = () => api.requests.filter((recorded) => recorded.method === 'PATCH');

  beforeAll(async () => {
    api = new KubernetesApiContractDouble(await freePort());
    await api.start();
    router = createRouter(spec(api.url), targets, { KUBE_TOKEN: TOKEN });
  });

  afterAll(async () => {
    await router?.close();
    await api?.stop();
  });

  test('reconcile adds the missing canary backend at weight 0, guarded by the resourceVersion it read', async () => {
    await router.reconcile();
    expect(patches()).toEqual([
      {
        method: 'PATCH',
        path: ROUTE_PATH,
        contentType: 'application/json-patch+json',
        body: [
          { op: 'test', path: '/metadata/resourceVersion', value: '48213' },
          {
            op: 'add',
            path: '/spec/rules/0/backendRefs/-',
            value: { name: 'shop-v2', port: 8080, weight: 0 },
          },
        ],
      },
    ]);
    await router.reconcile();
    expect(patches()).toHaveLength(1);
    await expect(router.getCanaryWeight()).resolves.toBe(0);
  });

  test('sets a share as backendRef weights and reads it back once the gateway accepted it', async () => {
    await router.setCanaryWeight(5);
    expect(patches().at(-1)?.body).toEqual([
      { op: 'test', path: '/metadata/resourceVersion', value: '48214' },
      { op: 'add', path: '/spec/rules/0/backendRefs/0/weight', value: 95 },
      { op: 'add', path: '/spec/rules/0/backendRefs/1/weight', value: 5 },
    ]);
    await expect(router.getCanaryWeight()).resolves.toBe(5);
    await router.setCanaryWeight(5);
    expect(patches()).toHaveLength(2);
  });

  test('a concurrent edit of the route fails the patch retryably', async () => {
    api.concurrentEdit = true;
    await expect(router.setCanaryWeight(10)).rejects.toThrow(RouterUnavailableError);
    await expect(router.getCanaryWeight()).resolves.toBe(5);
    await router.setCanaryWeight(10);
  });

  test('a gateway that does not accept the new generation is reported with its condition', async () => {
    api.controller = 'rejects';
    await expect(router.setCanaryWeight(20)).rejects.toThrow(
      /not accepted generation \d+.*ResolvedRefs=False \(service "shop-v2" not found\)/,
    );
    api.controller = 'accepts';
  });

  test('a refused token is a configuration error, an unreachable API server a retryable one', async () => {
    const refused = createRouter(spec(api.url), targets, { KUBE_TOKEN: 'wrong' });
    await expect(refused.getCanaryWeight()).rejects.toThrow(ValidationError);
    const nowhere = createRouter(spec(`http://127.0.0.1:${await freePort()}`), targets, {
      KUBE_TOKEN: TOKEN,
    });
    await expect(nowhere.getCanaryWeight()).rejects.toThrow(RouterUnavailableError);
  });
});
