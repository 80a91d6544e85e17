// Copies the files the compiled code reads at run time (ontology YAML, the dashboard's static
// files, example specs) next to the JavaScript in dist/, preserving paths.
import { cpSync, existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE_DIRS = [
  'profiles',
  'dashboard',
  'examples',
  'routing',
  'loadgen',
  'analysis',
  'signals',
  'alerts',
  'deploy',
];
const ASSET = /\.(ya?ml|json|html|css|js|mjs|svg|png|ico|txt|cfg|conf)$/;
const SKIP = /(^|\/)(node_modules|dist|test|.*\.test\.)/;

// The dashboard serves every file in its public/ folder: one deleted from the source must go.
rmSync(path.join(root, 'dist', 'dashboard', 'public'), { recursive: true, force: true });

let copied = 0;
function visit(relative) {
  const absolute = path.join(root, relative);
  for (const entry of readdirSync(absolute)) {
    const child = path.join(relative, entry);
    if (SKIP.test(child)) continue;
    if (statSync(path.join(root, child)).isDirectory()) visit(child);
    else if (ASSET.test(entry) && !entry.endsWith('.d.ts')) {
      cpSync(path.join(root, child), path.join(root, 'dist', child));
      copied += 1;
    }
  }
}
for (const dir of SOURCE_DIRS) if (existsSync(path.join(root, dir))) visit(dir);
console.log(`copied ${copied} asset files into dist/`);
