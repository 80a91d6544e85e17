/**
 * The loadgen HTTP service's edges against a real FerretDB: populations over the cap are the
 * caller's criteria at fault (400), a store that is down is a 503 (and logged), the bearer
 * token is checked, and the server refuses to listen beyond loopback without a token.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { MongoClient, type Db } from 'mongodb';
import pino from 'pino';
import { FerretDbServer } from '../../devstack/ferretdb';
import { freePort } from '../../devstack/ports';
import { defaultOntology } from '../../loadgen/profile-sessions';
import { buildLoadgenApp } from '../../loadgen/service/app';
import { isLoopbackHost, startLoadgenService } from '../../loadgen/service/server';
import { parseProfile } from '../../profiles/profile-schema';
import { ProfileStore } from '../../profiles/store';
import { profile, ShopServer } from './support/shop-server';

let dataDir: string;
let ferret: FerretDbServer;
let mongo: MongoClient;
let db: Db;
let shop: ShopServer;

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'canary-loadgen-service-'));
  [ferret, shop] = await Promise.all([
    FerretDbServer.start({
      dataDir: path.join(dataDir, 'ferretdb'),
      logFile: path.join(dataDir, 'ferretdb.log'),
    }),
    ShopServer.start(),
  ]);
  mongo = await MongoClient.connect(ferret.uri, { serverSelectionTimeoutMS: 5000 });
  db = mongo.db('test_loadgen_service');
  const store = new ProfileStore(db);
  for (const id of ['a-1', 'a-2', 'a-3'])
    await store.put(parseProfile(profile(id, [{ t: 0, action: 'page_view' }]), defaultOntology()));
});

afterAll(async () => {
  await mongo?.close();
  await Promise.all([ferret?.stop(), shop?.close()]);
  rmSync(dataDir, { recursive: true, force: true });
});

const run = (extra: Record<string, unknown>) => ({
  duration: 1,
  concurrency: 1,
  target_url: shop.url,
  ...extra,
});

test('criteria matching more profiles than the cap get 400 naming criteria', async () => {
  const app = await buildLoadgenApp({ db, maxPopulation: 2 });
  try {
    const response = await app.inject({
      method: 'POST',
      url: '/runs',
      payload: run({ criteria: { device_type: 'desktop' } }),
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({
      error: 'bad_request',
      message: 'criteria: the criteria match more than 2 profiles; narrow them to sample',
      issues: [{ field: 'criteria' }],
    });
  } finally {
    await app.close();
  }
});

test('a store that is down is a 503, and the cause reaches the log', async () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString('utf8'));
      callback();
    },
  });
  const down = new MongoClient(`mongodb://127.0.0.1:${await freePort()}/`, {
    serverSelectionTimeoutMS: 300,
  });
  const app = await buildLoadgenApp({ db: down.db('nothing'), logger: pino(sink) });
  try {
    const response = await app.inject({ method: 'POST', url: '/runs', payload: run({ profile_id: 'a-1' }) });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toMatchObject({
      error: 'unavailable',
      message: 'the profile store is unavailable; retry later',
    });
    expect(lines.some((line) => line.includes('backend unavailable'))).toBe(true);
  } finally {
    await app.close();
    await down.close();
  }
});

test('with a token, requests without it or with a wrong one get 401', async () => {
  const token = 'a-token-of-16-characters';
  const app = await buildLoadgenApp({ db, token });
  try {
    const missing = await app.inject({ url: '/healthz' });
    expect(missing.statusCode).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer');
    const wrong = await app.inject({ url: '/healthz', headers: { authorization: 'Bearer nope' } });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json()).toMatchObject({ error: 'unauthorized' });
    const right = await app.inject({ url: '/healthz', headers: { authorization: `Bearer ${token}` } });
    expect(right.statusCode).toBe(200);
  } finally {
    await app.close();
  }
});

test('the server refuses a non-loopback host without LOADGEN_API_TOKEN', async () => {
  for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1'])
    expect(isLoopbackHost(host)).toBe(true);
  for (const host of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '128.0.0.1'])
    expect(isLoopbackHost(host)).toBe(false);
  await expect(
    startLoadgenService({ LOADGEN_HOST: '0.0.0.0', CANARY_MONGO_URI: ferret.uri }),
  ).rejects.toThrow(
    /^LOADGEN_API_TOKEN: is required when LOADGEN_HOST \(0\.0\.0\.0\) is not a loopback address/,
  );
});

/** A GET with the Host header a browser would send for a rebound DNS name. */
function getWithHost(url: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { headers: { host } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

test('the server answers only to loopback names and LOADGEN_ALLOWED_HOSTS (DNS rebinding)', async () => {
  const service = await startLoadgenService({
    LOADGEN_PORT: '0',
    CANARY_MONGO_URI: ferret.uri,
    CANARY_MONGO_DB: 'test_loadgen_hosts',
    LOADGEN_ALLOWED_HOSTS: 'loadgen.internal',
    LOG_LEVEL: 'silent',
  });
  try {
    const url = `${service.url}/healthz`;
    const port = new URL(service.url).port;
    const rebound = await getWithHost(url, `attacker.example:${port}`);
    expect(rebound.status).toBe(421);
    expect(JSON.parse(rebound.body)).toMatchObject({
      error: 'misdirected_request',
      issues: [{ field: 'host', rule: 'must be a loopback name or one listed in LOADGEN_ALLOWED_HOSTS' }],
    });
    expect(rebound.body).toContain('host \\"attacker.example\\" is not a name this service answers to');
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'loadgen.internal:8082'])
      expect((await getWithHost(url, host)).status).toBe(200);
  } finally {
    await service.close();
  }
  await expect(
    startLoadgenService({ LOADGEN_ALLOWED_HOSTS: 'a b', CANARY_MONGO_URI: ferret.uri }),
  ).rejects.toThrow('LOADGEN_ALLOWED_HOSTS: a b must be a host name or address');
});
