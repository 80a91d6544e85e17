/**
 * The built-in proxy's own HTTP/1.1 upstream client (routing/proxy/upstream-pool.ts and
 * response-parser.ts), end to end: a real proxy in front of real servers on loopback, Node `http`
 * servers where they can send the case and raw `net` servers where only hand-written bytes can
 * (malformed framing, resets mid-body, a connection closed as it is reused).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { startBuiltinProxy, type BuiltinProxy } from '../../routing/proxy/proxy';
import { MAX_HEAD_BYTES } from '../../routing/proxy/response-parser';
import { createLogger } from '../../platform/logger';
import { BuiltinProxyServer } from '../../devstack/builtin-proxy';

const TOKEN = randomBytes(24).toString('hex');
const logger = createLogger('proxy-http1-test', 'silent');

interface Upstream {
  url: string;
  /** Connections the upstream accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

async function listen(server: net.Server): Promise<Upstream> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A Node `http` server. */
function httpUpstream(handler: http.RequestListener): Promise<Upstream> {
  return listen(http.createServer(handler));
}

/**
 * A server that reads request heads and answers each with `answer(head, socket, index)`, where
 * `index` counts requests over all connections. Request bodies are not expected.
 */
function rawUpstream(answer: (head: string, socket: net.Socket, index: number) => void): Promise<Upstream> {
  let index = 0;
  return listen(
    net.createServer((socket) => {
      let buffered = '';
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('latin1');
        let end = buffered.indexOf('\r\n\r\n');
        while (end >= 0) {
          const head = buffered.slice(0, end);
          buffered = buffered.slice(end + 4);
          answer(head, socket, index++);
          end = buffered.indexOf('\r\n\r\n');
        }
      });
    }),
  );
}

async function metricsOf(proxy: BuiltinProxy): Promise<string> {
  return (await request(`${proxy.adminUrl}/metrics`)).body.text();
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe("the built-in proxy's HTTP/1.1 upstream connections", () => {
  const cleanups: (() => Promise<void>)[] = [];

  /** A proxy sending everything to `upstream` (share 0, no health checks). */
  async function proxyTo(upstream: Upstream, upstreamTimeout?: string): Promise<BuiltinProxy> {
    const proxy = await startBuiltinProxy(
      {
        listen: '127.0.0.1:0',
        adminListen: '127.0.0.1:0',
        adminToken: TOKEN,
        upstreams: { baseline: upstream.url, canary: upstream.url },
        share: 0,
        healthCheck: false,
        ...(upstreamTimeout ? { upstreamTimeout } : {}),
      },
      logger,
    );
    cleanups.push(
      () => proxy.close(),
      () => upstream.close(),
    );
    return proxy;
  }

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  });

  test('a chunked answer arrives whole, and its connection carries the next request', async () => {
    const upstream = await httpUpstream((_req, res) => {
      res.write('first,');
      setTimeout(() => res.end('second'), 20);
    });
    const proxy = await proxyTo(upstream);
    for (let i = 0; i < 3; i += 1) {
      const response = await request(proxy.url);
      expect(await response.body.text()).toBe('first,second');
    }
    expect(upstream.connections()).toBe(1);
  });

  test('chunk extensions and trailers are read past, not passed on as body', async () => {
    const upstream = await rawUpstream((_head, socket) => {
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-digest\r\n\r\n');
      socket.write('5;name=value\r\nhello\r\n');
      socket.write('1\r\n \r\nA\r\n0123456789\r\n0\r\nx-digest: abc\r\n\r\n');
    });
    const proxy = await proxyTo(upstream);
    const response = await request(proxy.url);
    expect(await response.body.text()).toBe('hello 0123456789');
    expect(response.headers).not.toHaveProperty('x-digest');
    expect(await (await request(proxy.url)).body.text()).toBe('hello 0123456789');
    expect(upstream.connections()).toBe(1);
  });

  test('a chunked answer split at every byte is framed the same', async () => {
    const answer = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n';
    const upstream = await rawUpstream((_head, socket) => {
      let at = 0;
      const next = (): void => {
        if (at >= answer.length) return;
        socket.write(answer[at++] as string, 'latin1', () => setImmediate(next));
      };
      next();
    });
    const proxy = await proxyTo(upstream);
    const response = await request(proxy.url);
    expect(response.statusCode).toBe(200);
    expect(await response.body.text()).toBe('abcde');
  });

  test('a close-delimited answer ends when the upstream closes, and is not reused', async () => {
    const upstream = await rawUpstream((_head, socket, index) => {
      socket.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close ${index}`);
    });
    const proxy = await proxyTo(upstream);
    expect(await (await request(proxy.url)).body.text()).toBe('until close 0');
    expect(await (await request(proxy.url)).body.text()).toBe('until close 1');
    expect(upstream.connections()).toBe(2);
  });

  test('an HTTP/1.0 answer without keep-alive is read to the close', async () => {
    const upstream = await rawUpstream((_head, socket) => {
      socket.end('HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nold!');
    });
    const proxy = await proxyTo(upstream);
    expect(await (await request(proxy.url)).body.text()).toBe('old!');
    expect(await (await request(proxy.url)).body.text()).toBe('old!');
    expect(upstream.connections()).toBe(2);
  });

  test('interim 1xx answers are skipped and the final answer is passed on', async () => {
    const upstream = await httpUpstream((_req, res) => {
      res.writeProcessing();
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      setTimeout(() => res.end('final'), 20);
    });
    const proxy = await proxyTo(upstream);
    const response = await request(proxy.url);
    expect(response.statusCode).toBe(200);
    expect(await response.body.text()).toBe('final');
  });

  test('answers to HEAD, 204 and 304 have no body whatever their headers say', async () => {
    const upstream = await rawUpstream((head, socket) => {
      if (head.startsWith('HEAD')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n');
      else if (head.startsWith('GET /204'))
        socket.write('HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n');
      else if (head.startsWith('GET /304'))
        socket.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n');
      else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nafter');
    });
    const proxy = await proxyTo(upstream);
    const head = await request(proxy.url, { method: 'HEAD' });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-length']).toBe('1000');
    expect(await head.body.text()).toBe('');
    expect((await request(`${proxy.url}/204`)).statusCode).toBe(204);
    expect((await request(`${proxy.url}/304`)).statusCode).toBe(304);
    // Had the proxy waited for those bodies, this one would hang or come back garbled.
    expect(await (await request(proxy.url)).body.text()).toBe('after');
    expect(upstream.connections()).toBe(1);
  });

  test('a 64 MiB answer streams through intact', async () => {
    const body = randomBytes(64 * 1024 * 1024);
    const upstream = await httpUpstream((_req, res) => {
      res.setHeader('content-length', body.length);
      res.end(body);
    });
    const proxy = await proxyTo(upstream);
    const response = await request(proxy.url);
    const received = Buffer.from(await response.body.arrayBuffer());
    expect(received.length).toBe(body.length);
    expect(sha256(received)).toBe(sha256(body));
  });

  test('a slow reader holds the upstream back rather than the proxy buffering the answer', async () => {
    let written = 0;
    const total = 256 * 1024 * 1024;
    const upstream = await httpUpstream((_req, res) => {
      const piece = Buffer.alloc(64 * 1024, 120);
      const pump = (): void => {
        while (written < total) {
          written += piece.length;
          if (!res.write(piece)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    const proxy = await proxyTo(upstream);
    const client = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http.get(proxy.url, resolve).on('error', reject),
    );
    client.pause();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // Kernel socket buffers on both hops plus the proxy's stream buffers, far below the total.
    expect(written).toBeLessThan(48 * 1024 * 1024);
    let received = 0;
    client.on('data', (chunk: Buffer) => (received += chunk.length));
    client.resume();
    await new Promise((resolve) => client.on('end', resolve));
    expect(received).toBe(total);
  }, 60_000);

  test('a connection whose last answer met a slow reader carries the next request', async () => {
    const big = Buffer.alloc(32 * 1024 * 1024, 120);
    const upstream = await httpUpstream((req, res) => res.end(req.url === '/big' ? big : 'small'));
    const proxy = await proxyTo(upstream);
    const client = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http.get(`${proxy.url}/big`, resolve).on('error', reject),
    );
    client.pause();
    await new Promise((resolve) => setTimeout(resolve, 500));
    let received = 0;
    client.on('data', (chunk: Buffer) => (received += chunk.length));
    client.resume();
    await new Promise((resolve) => client.on('end', resolve));
    expect(received).toBe(big.length);
    const next = await request(`${proxy.url}/small`, { headersTimeout: 3000, bodyTimeout: 3000 });
    expect(await next.body.text()).toBe('small');
    expect(upstream.connections()).toBe(1);
  });

  test('a chunked request body reaches the upstream intact', async () => {
    const upstream = await httpUpstream((req, res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
      });
      req.on('end', () =>
        res.end(JSON.stringify({ bytes, sha256: hash.digest('hex'), te: req.headers['transfer-encoding'] })),
      );
    });
    const proxy = await proxyTo(upstream);
    const parts = [randomBytes(100_000), randomBytes(1), randomBytes(3_000_000)];
    const response = await request(proxy.url, { method: 'POST', body: Readable.from(parts) });
    expect(await response.body.json()).toEqual({
      bytes: 3_100_001,
      sha256: sha256(Buffer.concat(parts)),
      te: 'chunked',
    });
  });

  test('an answer sent before the request body is done is passed on, and nothing is left waiting', async () => {
    const upstream = await httpUpstream((req, res) => {
      if (req.method === 'POST') {
        res.writeHead(413, { connection: 'close' });
        res.end('too large');
        return;
      }
      res.end('next');
    });
    const proxy = await proxyTo(upstream);
    const response = await request(proxy.url, { method: 'POST', body: randomBytes(8 * 1024 * 1024) });
    // 413, or 502 when the upstream's close reaches the proxy (EPIPE) before its answer.
    expect([413, 502]).toContain(response.statusCode);
    expect(response.headers.connection).toBe('close');
    await response.body.dump();
    expect(await (await request(proxy.url)).body.text()).toBe('next');
    // No connection is left half-read: the proxy closes at once.
    const closed = await Promise.race([
      proxy.close().then(() => true),
      new Promise((resolve) => setTimeout(() => resolve(false), 3000)),
    ]);
    expect(closed).toBe(true);
  });

  test('a reset before any answer gives a 502 with nothing else written', async () => {
    const upstream = await rawUpstream((_head, socket) => socket.resetAndDestroy());
    const proxy = await proxyTo(upstream);
    const response = await request(proxy.url);
    expect(response.statusCode).toBe(502);
    expect(await response.body.text()).toBe('bad gateway\n');
    expect(await metricsOf(proxy)).toMatch(
      /^canary_proxy_upstream_errors_total\{upstream="baseline",reason="reset"\} 2$/m, // sent once more
    );
  });

  test('a reset mid-body cuts the client connection short instead of appending an error', async () => {
    const upstream = await rawUpstream((_head, socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(100)}`, () =>
        setTimeout(() => socket.resetAndDestroy(), 50),
      );
    });
    const proxy = await proxyTo(upstream);
    const response = await request(proxy.url);
    expect(response.statusCode).toBe(200);
    await expect(response.body.text()).rejects.toThrow();
    expect(await metricsOf(proxy)).toMatch(
      /^canary_proxy_upstream_errors_total\{upstream="baseline",reason="reset"\} 1$/m,
    );
  });

  test('a connection the upstream closes as it is reused is replaced, and a safe request sent again', async () => {
    // Answers the first request on each connection, then closes the connection on the next one
    // without an answer: what a server whose keep-alive timeout just fired does.
    const upstream = await rawUpstream((_head, socket) => {
      const served = (socket as net.Socket & { served?: number }).served ?? 0;
      (socket as net.Socket & { served?: number }).served = served + 1;
      if (served === 0) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      else socket.end();
    });
    const proxy = await proxyTo(upstream);
    for (let i = 0; i < 4; i += 1) expect(await (await request(proxy.url)).body.text()).toBe('ok');
    expect(await metricsOf(proxy)).toMatch(
      /^canary_proxy_upstream_errors_total\{upstream="baseline",reason="reset"\} 0$/m,
    );
    // A POST may have been acted on: it is not sent twice.
    expect((await request(proxy.url, { method: 'POST' })).statusCode).toBe(502);
  });

  test("a kept connection is not used again after the upstream's Keep-Alive timeout less 1 s", async () => {
    const upstream = await rawUpstream((_head, socket) =>
      socket.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2\r\nContent-Length: 2\r\n\r\nok'),
    );
    const proxy = await proxyTo(upstream);
    await request(proxy.url).then((response) => response.body.text());
    await request(proxy.url).then((response) => response.body.text());
    expect(upstream.connections()).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await request(proxy.url).then((response) => response.body.text());
    expect(upstream.connections()).toBe(2);
  });

  test('silence before the answer gives 504; silence mid-body cuts the answer short', async () => {
    const upstream = await rawUpstream((head, socket) => {
      if (head.startsWith('GET /mid')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf');
      // GET /never: no answer at all
    });
    const proxy = await proxyTo(upstream, '300ms');
    const started = Date.now();
    const never = await request(`${proxy.url}/never`);
    expect(never.statusCode).toBe(504);
    expect(await never.body.text()).toBe('gateway timeout\n');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    const mid = await request(`${proxy.url}/mid`);
    expect(mid.statusCode).toBe(200);
    await expect(mid.body.text()).rejects.toThrow();
    expect(await metricsOf(proxy)).toMatch(
      /^canary_proxy_upstream_errors_total\{upstream="baseline",reason="timeout"\} 2$/m,
    );
  });

  test.each([
    [
      'two different Content-Lengths',
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
    ],
    ['a negative Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n'],
    ['a folded header line', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\nContent-Length: 0\r\n\r\n'],
    ['a bare LF in a header', 'HTTP/1.1 200 OK\r\nX-A: 1\nX-B: 2\r\nContent-Length: 0\r\n\r\n'],
    ['a space before the colon', 'HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n'],
    ['no status line', 'HTTP/2 200\r\nContent-Length: 0\r\n\r\n'],
    ['a 101 nobody asked for', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n'],
    ['a head over the limit', `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(MAX_HEAD_BYTES)}\r\n\r\n`],
  ])('%s is a 502', async (_case, answer) => {
    const upstream = await rawUpstream((_head, socket) => socket.write(answer));
    const proxy = await proxyTo(upstream);
    const response = await request(proxy.url);
    expect(response.statusCode).toBe(502);
    expect(await response.body.text()).toBe('bad gateway\n');
  });

  test('a bad chunk size after the head cuts the answer short', async () => {
    const upstream = await rawUpstream((_head, socket) =>
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n'),
    );
    const proxy = await proxyTo(upstream);
    // Head and bad chunk arrive together: the client sees the connection close, head or not.
    await expect(request(proxy.url).then((response) => response.body.text())).rejects.toThrow();
  });

  test('Transfer-Encoding beats Content-Length, whose value is not passed on, and the connection is not reused', async () => {
    const upstream = await rawUpstream((_head, socket) =>
      socket.write(
        'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      ),
    );
    const proxy = await proxyTo(upstream);
    const response = await request(proxy.url);
    expect(response.headers['content-length']).toBeUndefined();
    expect(await response.body.text()).toBe('hello');
    expect(await (await request(proxy.url)).body.text()).toBe('hello');
    expect(upstream.connections()).toBe(2);
  });

  test('a client that goes away mid-answer closes the upstream connection and is counted', async () => {
    let closed = false;
    const upstream = await httpUpstream((req, res) => {
      res.write('start');
      req.socket.on('close', () => (closed = true));
    });
    const proxy = await proxyTo(upstream);
    await new Promise<void>((resolve, reject) => {
      const call = http.get(proxy.url, (response) => {
        response.once('data', () => {
          call.destroy();
          resolve();
        });
      });
      call.on('error', () => undefined);
      setTimeout(() => reject(new Error('no first chunk')), 3000);
    });
    const deadline = Date.now() + 3000;
    while (!closed && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(closed).toBe(true);
    expect(await metricsOf(proxy)).toMatch(
      /^canary_proxy_upstream_errors_total\{upstream="baseline",reason="client_abort"\} 1$/m,
    );
  });

  test('an https upstream is proxied when its CA is trusted, and is a 502 when it is not', async () => {
    const fixtures = path.join(__dirname, '..', 'loadgen', 'fixtures');
    const certFile = path.join(fixtures, 'localhost-cert.pem');
    const server = https.createServer(
      { cert: readFileSync(certFile), key: readFileSync(path.join(fixtures, 'localhost-key.pem')) },
      (_req, res) => res.end('over tls'),
    );
    const upstream = await listen(server);
    const origin = upstream.url.replace('http://127.0.0.1', 'https://localhost');
    // This process does not trust the test CA: the connection fails, nothing reaches the client.
    const untrusting = await proxyTo({ ...upstream, url: origin });
    expect((await request(untrusting.url)).statusCode).toBe(502);
    // A proxy process started with the CA in NODE_EXTRA_CA_CERTS reaches it.
    const saved = process.env.NODE_EXTRA_CA_CERTS;
    process.env.NODE_EXTRA_CA_CERTS = certFile;
    let trusting: BuiltinProxyServer;
    try {
      trusting = await BuiltinProxyServer.start({
        baseline: origin,
        canary: origin,
        adminToken: TOKEN,
        flags: ['--no-health-checks'],
        logFile: path.join(os.tmpdir(), `proxy-tls-${process.pid}.log`),
      });
    } finally {
      if (saved === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
      else process.env.NODE_EXTRA_CA_CERTS = saved;
    }
    cleanups.push(() => trusting.stop());
    const response = await request(trusting.url);
    expect(response.statusCode).toBe(200);
    expect(await response.body.text()).toBe('over tls');
  }, 60_000);
});
