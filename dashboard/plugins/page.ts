/**
 * The web page: one HTML file, plain JavaScript and CSS from dashboard/public, and uPlot from
 * node_modules, all read once at start and served from memory (no build step, nothing from the
 * internet). Only the files listed here are served: no path from a request reaches the disk.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const PUBLIC_DIR = path.join(__dirname, '..', 'public');
const UPLOT_DIR = path.dirname(require.resolve('uplot'));

const FILES: Record<string, { file: string; type: string }> = {
  'app.js': { file: path.join(PUBLIC_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
  'charts.js': { file: path.join(PUBLIC_DIR, 'charts.js'), type: 'text/javascript; charset=utf-8' },
  'style.css': { file: path.join(PUBLIC_DIR, 'style.css'), type: 'text/css; charset=utf-8' },
  'favicon.svg': { file: path.join(PUBLIC_DIR, 'favicon.svg'), type: 'image/svg+xml' },
  'uplot.js': { file: path.join(UPLOT_DIR, 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' },
  'uplot.css': { file: path.join(UPLOT_DIR, 'uPlot.min.css'), type: 'text/css; charset=utf-8' },
};

function load(file: string, type: string): Asset {
  const body = readFileSync(file);
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

function serve(asset: Asset, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  void reply.header('etag', asset.etag).header('cache-control', 'no-cache');
  if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
  return reply.type(asset.type).send(asset.body);
}

export default fp(
  async function pagePlugin(app: FastifyInstance) {
    const index = load(path.join(PUBLIC_DIR, 'index.html'), 'text/html; charset=utf-8');
    const assets = new Map(Object.entries(FILES).map(([name, { file, type }]) => [name, load(file, type)]));
    const page = async (request: FastifyRequest, reply: FastifyReply) => serve(index, request, reply);
    app.get('/', page);
    app.get('/rollouts/:id', page);
    app.get<{ Params: { name: string } }>('/assets/:name', async (request, reply) => {
      const asset = assets.get(request.params.name);
      if (!asset) return reply.code(404).type('text/plain').send('no such asset');
      return serve(asset, request, reply);
    });
  },
  { name: 'dashboard-page' },
);
