/**
 * The Temporal CLI dev server has no TLS options, so a real NGINX terminates TLS in front of it
 * (grpc_pass), as an ingress would: one port requires a client certificate signed by the CA that
 * deploy/temporal/generate-certs.sh makes (mutual TLS), another a bearer API key. The processes'
 * connection code (platform/temporal-connection.ts, configured by TEMPORAL_* variables) and the
 * Temporal CLI used by the compose healthcheck must get through with them and fail without.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadExeca } from '../../platform/execa';
import { connectClient, connectWorker, temporalTargetFromEnv } from '../../platform/temporal-connection';
import { NginxServer } from '../../devstack/nginx';
import { freePort } from '../../devstack/ports';
import { TemporalDevServer } from '../../devstack/temporal-server';
import { projectRoot, resolveTool } from '../../devstack/tools';

const API_KEY = 'temporal-api-key-for-the-test-0123456789';
let dir: string;
let certs: string;
let temporal: TemporalDevServer;
let nginx: NginxServer;
let mtlsAddress: string;
let apiKeyAddress: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'canary-temporal-tls-'));
  certs = path.join(dir, 'certs');
  const { execa } = await loadExeca();
  await execa(path.join(projectRoot, 'deploy/temporal/generate-certs.sh'), [certs, path.join(dir, 'ca')]);
  temporal = await TemporalDevServer.start({ uiPort: false, logFile: path.join(dir, 'temporal.log') });
  const [mtlsPort, apiKeyPort] = [await freePort(), await freePort()];
  mtlsAddress = `127.0.0.1:${mtlsPort}`;
  apiKeyAddress = `127.0.0.1:${apiKeyPort}`;
  const tls = [
    `ssl_certificate ${certs}/server.pem;`,
    `ssl_certificate_key ${certs}/server.key;`,
    'ssl_protocols TLSv1.2 TLSv1.3;',
  ].join('\n    ');
  nginx = await NginxServer.start({
    dir: path.join(dir, 'nginx'),
    readyPort: apiKeyPort,
    logFile: path.join(dir, 'nginx.log'),
    http: `
  server {
    listen ${mtlsAddress} ssl http2;
    ${tls}
    ssl_client_certificate ${certs}/ca.pem;
    ssl_verify_client on;
    location / { grpc_pass grpc://${temporal.address}; }
  }
  server {
    listen ${apiKeyAddress} ssl http2;
    ${tls}
    location / {
      if ($http_authorization != "Bearer ${API_KEY}") { return 401; }
      grpc_pass grpc://${temporal.address};
    }
  }`,
  });
});

afterAll(async () => {
  await nginx?.stop();
  await temporal?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const mtlsEnv = () => ({
  TEMPORAL_ADDRESS: mtlsAddress,
  TEMPORAL_TLS_CERT: `${certs}/client.pem`,
  TEMPORAL_TLS_KEY: `${certs}/client.key`,
  TEMPORAL_TLS_CA: `${certs}/ca.pem`,
  TEMPORAL_TLS_SERVER_NAME: 'temporal',
});

async function namespaceOf(env: NodeJS.ProcessEnv): Promise<string | null | undefined> {
  const client = await connectClient(temporalTargetFromEnv({}, env));
  try {
    const described = await client.workflowService.describeNamespace({ namespace: 'default' });
    return described.namespaceInfo?.name;
  } finally {
    await client.connection.close();
  }
}

describe('reaching Temporal with TEMPORAL_TLS_* (mutual TLS) or TEMPORAL_API_KEY', () => {
  test('a client and a worker connection with the generated client certificate get through', async () => {
    expect(await namespaceOf(mtlsEnv())).toBe('default');
    const worker = await connectWorker(temporalTargetFromEnv({}, mtlsEnv()));
    await worker.close();
  });

  test('without a client certificate, or with a certificate from another CA, the connection is refused', async () => {
    const { TEMPORAL_TLS_CERT: _cert, TEMPORAL_TLS_KEY: _key, ...withoutCertificate } = mtlsEnv();
    await expect(namespaceOf(withoutCertificate)).rejects.toThrow();
    await expect(namespaceOf({ TEMPORAL_ADDRESS: mtlsAddress })).rejects.toThrow();
    const other = path.join(dir, 'other');
    const { execa } = await loadExeca();
    await execa(path.join(projectRoot, 'deploy/temporal/generate-certs.sh'), [
      other,
      path.join(dir, 'other-ca'),
    ]);
    await expect(
      namespaceOf({
        ...mtlsEnv(),
        TEMPORAL_TLS_CERT: `${other}/client.pem`,
        TEMPORAL_TLS_KEY: `${other}/client.key`,
      }),
    ).rejects.toThrow();
  });

  test('an API key is sent over TLS as a bearer token; without it the call is refused', async () => {
    const env = {
      TEMPORAL_ADDRESS: apiKeyAddress,
      TEMPORAL_TLS_CA: `${certs}/ca.pem`,
      TEMPORAL_TLS_SERVER_NAME: 'temporal',
    };
    expect(await namespaceOf({ ...env, TEMPORAL_API_KEY: API_KEY })).toBe('default');
    await expect(namespaceOf({ ...env, TEMPORAL_API_KEY: 'not-the-key-0123456789' })).rejects.toThrow();
    await expect(namespaceOf(env)).rejects.toThrow();
  });

  test("the compose healthcheck's Temporal CLI reads the same TEMPORAL_TLS_* variables", async () => {
    const { execa } = await loadExeca();
    const health = (env: Record<string, string>) =>
      execa(resolveTool('temporal'), ['operator', 'cluster', 'health', '--address', mtlsAddress], {
        env: { HOME: dir, ...env },
        extendEnv: false,
        reject: false,
        timeout: 30_000,
      });
    const ok = await health(mtlsEnv());
    expect({ stdout: ok.stdout, stderr: ok.stderr }).toEqual({
      stdout: expect.stringContaining('SERVING') as unknown,
      stderr: '',
    });
    const { TEMPORAL_TLS_CERT: _cert, TEMPORAL_TLS_KEY: _key, ...withoutCertificate } = mtlsEnv();
    expect((await health(withoutCertificate)).exitCode).not.toBe(0);
  });
});
