/**
 * The sample shop: a small storefront API implementing every action of the default ontology
 * (profiles/ontology/default.yaml), run as baseline and as canary by the demo and the
 * end-to-end tests. It keeps carts and orders in memory and exposes prom-client metrics.
 */
import { createHash, randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { tokenMatches } from '../../platform/http/auth';
import { ValidationError } from '../../core/validation';
import { loadDelayMs, NO_FAULTS, parseFaults, RequestRate, type ShopAction, type ShopFaults } from './faults';

export interface ShopOptions {
  role: 'baseline' | 'canary';
  version: string;
  faults?: ShopFaults;
  /** Protects POST /admin/faults; without it the endpoint is disabled. */
  adminToken?: string;
  /** Random source for fault decisions (tests pass a seeded one). */
  random?: () => number;
  /** Clock for transient faults and request rates, in ms (tests pass their own). */
  now?: () => number;
}

const MAX_CARTS = 10_000;
const SESSION_COOKIE = 'shop_session';

interface CartItem {
  product_id: string;
  quantity: number;
  price: number;
}

function productFor(id: string) {
  // Any id is a product: its details derive from the id, so profiles never miss the catalogue.
  const digest = createHash('sha256').update(id).digest();
  return {
    id,
    name: `Product ${id}`,
    price: Math.round(((digest.readUInt16BE(0) % 20_000) + 99) / 1) / 100,
    stock: digest.readUInt8(2) % 50,
    rating: Math.round((digest.readUInt8(3) / 255) * 40 + 10) / 10,
  };
}

function sessionOf(request: FastifyRequest, reply: FastifyReply): string {
  const cookie = request.headers.cookie ?? '';
  const match = new RegExp(`(?:^|;\\s*)${SESSION_COOKIE}=([A-Za-z0-9-]{1,64})`).exec(cookie);
  if (match?.[1]) return match[1];
  const id = randomUUID();
  void reply.header('set-cookie', `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Lax`);
  return id;
}

function busyFor(ms: number): void {
  const until = performance.now() + ms;
  let x = 0;
  while (performance.now() < until) x = (x * 31 + 7) % 1_000_003;
  if (x < 0) throw new Error('unreachable');
}

export function buildShopApp(options: ShopOptions): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 11 * 2 ** 20 });
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  let faults = options.faults ?? NO_FAULTS;
  // Setting faults (at start or through the admin endpoint) is what starts a transient fault.
  let faultsSetAt = now();
  /** One rate per load fault: each may leave different requests uncounted. */
  let loadRates = (faults.load ?? []).map(() => new RequestRate());
  const faultsActive = () => faults.activeForMs === undefined || now() - faultsSetAt < faults.activeForMs;
  const carts = new Map<string, CartItem[]>();
  const leaked: Buffer[] = [];
  let orders = 0;

  const registry = new Registry();
  registry.setDefaultLabels({ role: options.role, version: options.version });
  collectDefaultMetrics({ register: registry });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time to answer a request, by user action.',
    labelNames: ['action', 'method', 'status_code'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'Requests answered, by user action and status.',
    labelNames: ['action', 'method', 'status_code'],
    registers: [registry],
  });

  const leakTimer =
    faults.leakBytesPerSecond > 0 || options.adminToken
      ? setInterval(() => {
          if (faults.leakBytesPerSecond > 0 && faultsActive())
            leaked.push(Buffer.alloc(Math.round(faults.leakBytesPerSecond / 4), 1));
        }, 250)
      : undefined;
  leakTimer?.unref();
  app.addHook('onClose', async () => {
    if (leakTimer) clearInterval(leakTimer);
  });

  const actionOf = new WeakMap<FastifyRequest, { action: ShopAction; started: bigint }>();

  /** Applies the configured faults to one request of `action`; resolves false if it must fail. */
  const applyFaults = async (action: ShopAction, request: FastifyRequest): Promise<boolean> => {
    const load = faults.load ?? [];
    // Arrivals are counted whether or not the faults are on: the rate is the shop's real load.
    const rates = load.map((fault, index) => {
      const rate = loadRates[index] as RequestRate;
      const counted = !fault.uncountedHeader || request.headers[fault.uncountedHeader] === undefined;
      return counted ? rate.arrive(now()) : rate.at(now());
    });
    if (!faultsActive()) return true;
    const slowedMs = load.reduce(
      (total, fault, index) => total + loadDelayMs(fault, action, rates[index] as number),
      0,
    );
    if (slowedMs > 0) await new Promise((resolve) => setTimeout(resolve, slowedMs));
    for (const fault of faults.cpu) if (fault.action === action) busyFor(fault.ms);
    for (const fault of faults.latency) {
      if (fault.action === action && random() < fault.fraction) {
        await new Promise((resolve) => setTimeout(resolve, fault.extraMs));
      }
    }
    return !faults.errors.some((fault) => fault.action === action && random() < fault.rate);
  };

  const handle =
    <T>(action: ShopAction, answer: (request: FastifyRequest, reply: FastifyReply) => T | Promise<T>) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      actionOf.set(request, { action, started: process.hrtime.bigint() });
      if (!(await applyFaults(action, request))) {
        return reply.code(500).send({ error: 'injected failure', action });
      }
      return answer(request, reply);
    };

  app.addHook('onResponse', async (request, reply) => {
    const tracked = actionOf.get(request);
    if (!tracked) return;
    const labels = { action: tracked.action, method: request.method, status_code: String(reply.statusCode) };
    duration.observe(labels, Number(process.hrtime.bigint() - tracked.started) / 1e9);
    requests.inc(labels);
  });

  app.setErrorHandler((error, _request, reply) => {
    if (error instanceof ValidationError)
      return reply.code(400).send({ error: error.message, issues: error.issues });
    const { statusCode, message } = error as { statusCode?: unknown; message?: string };
    // Fastify's own 4xx (bad JSON, body too large) keep their message; anything else is ours: 500.
    const status = typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500 ? statusCode : 500;
    return reply.code(status).send({ error: status < 500 ? message : 'internal error' });
  });

  app.get('/healthz', async () => ({ status: 'ok', role: options.role, version: options.version }));
  app.get('/metrics', async (_request, reply) => {
    void reply.header('content-type', registry.contentType);
    return registry.metrics();
  });

  app.get(
    '/search',
    handle('search', (request, reply) => {
      const q = (request.query as { q?: unknown }).q;
      if (typeof q !== 'string' || q.length === 0)
        return reply.code(400).send({ error: 'q: must be a non-empty string' });
      const results = Array.from({ length: 5 }, (_, i) => productFor(`${q}-${i}`));
      return { query: q, results };
    }),
  );

  app.get(
    '/products/:id',
    handle('view_product', (request) => productFor((request.params as { id: string }).id)),
  );

  app.post(
    '/cart/items',
    handle('add_to_cart', (request, reply) => {
      const body = request.body as { product_id?: unknown; quantity?: unknown } | undefined;
      const productId = body?.product_id;
      const quantity = body?.quantity ?? 1;
      if (
        (typeof productId !== 'string' && typeof productId !== 'number') ||
        String(productId).length === 0
      ) {
        return reply.code(400).send({ error: 'product_id: must be a string or number' });
      }
      if (typeof quantity !== 'number' || !Number.isInteger(quantity) || quantity < 1 || quantity > 99) {
        return reply.code(400).send({ error: 'quantity: must be an integer from 1 to 99' });
      }
      const session = sessionOf(request, reply);
      const items = carts.get(session) ?? [];
      items.push({ product_id: String(productId), quantity, price: productFor(String(productId)).price });
      carts.delete(session);
      carts.set(session, items.slice(-50));
      if (carts.size > MAX_CARTS) carts.delete(carts.keys().next().value as string);
      return reply.code(201).send({ items: carts.get(session) });
    }),
  );

  app.post(
    '/checkout',
    handle('checkout', (request, reply) => {
      const method = (request.body as { payment_method?: unknown } | undefined)?.payment_method ?? 'card';
      if (method !== 'card' && method !== 'paypal' && method !== 'invoice') {
        return reply.code(400).send({ error: 'payment_method: must be one of card, paypal, invoice' });
      }
      const session = sessionOf(request, reply);
      const items = carts.get(session) ?? [];
      carts.delete(session);
      orders += 1;
      const total = items.reduce((sum, item) => sum + item.price * item.quantity, 0);
      return reply.code(201).send({
        order_id: `o-${options.role}-${orders}`,
        items: items.length,
        total,
        payment_method: method,
      });
    }),
  );

  app.post(
    '/login',
    handle('login', (request, reply) => {
      const username = (request.body as { username?: unknown } | undefined)?.username;
      if (typeof username !== 'string' || !/^[A-Za-z0-9._@-]{1,64}$/.test(username)) {
        return reply.code(400).send({ error: 'username: must be 1-64 of A-Z a-z 0-9 . _ @ -' });
      }
      sessionOf(request, reply);
      return {
        token: createHash('sha256').update(`${username}:${options.version}`).digest('hex').slice(0, 32),
      };
    }),
  );

  app.get(
    '/api/*',
    handle('api_call', (request) => ({
      status: 'ok',
      endpoint: (request.params as { '*': string })['*'],
      version: options.version,
    })),
  );

  app.addContentTypeParser(
    'application/octet-stream',
    { parseAs: 'buffer', bodyLimit: 11 * 2 ** 20 },
    (_request, body, done) => done(null, body),
  );
  app.post(
    '/upload',
    handle('upload', (request, reply) => {
      const body = request.body;
      const bytes = Buffer.isBuffer(body) ? body.length : 0;
      return reply.code(201).send({ id: randomUUID(), bytes });
    }),
  );

  app.post('/admin/faults', async (request, reply) => {
    const auth = request.headers.authorization ?? '';
    if (!options.adminToken || !tokenMatches(auth, `Bearer ${options.adminToken}`)) {
      return reply.code(401).send({ error: 'authorization: a valid bearer token is required' });
    }
    faults = parseFaults(request.body);
    faultsSetAt = now();
    loadRates = (faults.load ?? []).map(() => new RequestRate());
    return { faults };
  });

  // Storefront pages: any path of the page_view pattern is a page.
  app.get(
    '/*',
    handle('page_view', (request, reply) => {
      const path = request.url.split('?')[0] ?? '/';
      void reply.type('text/html; charset=utf-8');
      return `<!doctype html><title>Shop</title><h1>${path.replace(/[^A-Za-z0-9/_.~-]/g, '')}</h1><p>${options.role} ${options.version}</p>`;
    }),
  );

  return app;
}
