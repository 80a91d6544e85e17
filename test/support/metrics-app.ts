/**
 * A small real HTTP app for metric-source tests: prom-client's default process metrics plus a
 * request counter by status code and a total one, served on /metrics. Run as a child process (each target has its
 * own CPU and memory): `node --import tsx test/support/metrics-app.ts <port> <errorShare>`.
 * GET /work?n=K does K units of CPU work and answers 500 for `errorShare` of requests.
 */
import http from 'node:http';
import { collectDefaultMetrics, Counter, Registry } from 'prom-client';

const port = Number(process.argv[2]);
const errorShare = Number(process.argv[3] ?? '0');
const registry = new Registry();
collectDefaultMetrics({ register: registry });
const requests = new Counter({
  name: 'app_requests_total',
  help: 'Requests by status code',
  labelNames: ['code'],
  registers: [registry],
});
/** The conventional name the direct scrape divides CPU by (signals/scrape-source.ts). */
const answered = new Counter({
  name: 'http_requests_total',
  help: 'Requests answered',
  registers: [registry],
});
// Series exist from the first scrape, so increase() over the window counts every request.
requests.inc({ code: '200' }, 0);
requests.inc({ code: '500' }, 0);
let served = 0;

const server = http.createServer((request, response) => {
  const url = new URL(request.url ?? '/', 'http://localhost');
  if (url.pathname === '/metrics') {
    registry.metrics().then(
      (text) => {
        response.writeHead(200, { 'content-type': registry.contentType });
        response.end(text);
      },
      () => {
        response.writeHead(500);
        response.end();
      },
    );
    return;
  }
  if (url.pathname === '/work') {
    let x = 0;
    for (let i = 0; i < Number(url.searchParams.get('n') ?? '1000'); i += 1) x += Math.sqrt(i);
    served += 1;
    // Deterministic share of failures: every k-th request fails.
    const failing = errorShare > 0 && served % Math.round(1 / errorShare) === 0;
    requests.inc({ code: failing ? '500' : '200' });
    answered.inc();
    response.writeHead(failing ? 500 : 200);
    response.end(String(x));
    return;
  }
  response.writeHead(404);
  response.end();
});
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
