/**
 * The web page: one HTML file, JavaScript modules, CSS and images from dashboard/public, and
 * uPlot from node_modules, all read once at start and served from memory (no build step, nothing
 * from the internet). Only the files found at start are served, under their path in
 * dashboard/public (`/assets/views/tick-log.js`): no path from a request reaches the disk.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
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

const JAVASCRIPT = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
/** What dashboard/public serves, by extension (index.html is the page itself, not an asset). */
const PUBLIC_TYPES: Record<string, string> = { '.js': JAVASCRIPT, '.css': CSS, '.svg': 'image/svg+xml' };

/** Scripts, style sheets and images under dashboard/public by their path there (with `/`), and uPlot's. */
function assetFiles(): Map<string, { file: string; type: string }> {
  const files = new Map([
    ['uplot.js', { file: path.join(UPLOT_DIR, 'uPlot.iife.min.js'), type: JAVASCRIPT }],
    ['uplot.css', { file: path.join(UPLOT_DIR, 'uPlot.min.css'), type: CSS }],
  ]);
  for (const relative of readdirSync(PUBLIC_DIR, { recursive: true, encoding: 'utf8' })) {
    const type = PUBLIC_TYPES[path.extname(relative)];
    if (type) files.set(relative.split(path.sep).join('/'), { file: path.join(PUBLIC_DIR, relative), type });
  }
  return files;
}

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
    const assets = new Map([...assetFiles()].map(([name, { file, type }]) => [name, load(file, type)]));
    const page = async (request: FastifyRequest, reply: FastifyReply) => serve(index, request, reply);
    app.get('/', page);
    app.get('/rollouts/:id', page);
    app.get<{ Params: { '*': string } }>('/assets/*', async (request, reply) => {
      const asset = assets.get(request.params['*']);
      if (!asset) return reply.code(404).type('text/plain').send('no such asset');
      return serve(asset, request, reply);
    });
  },
  { name: 'dashboard-page' },
);
