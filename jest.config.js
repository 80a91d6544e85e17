// @ts-check
'use strict';
const fs = require('node:fs');
const path = require('node:path');

/**
 * Packages that ship only ES modules (execa >= 6 and its helpers). Node 20.19+
 * can require() them, but jest's own module loader cannot before Node 24.9, so
 * jest compiles them to CommonJS with swc like our own TypeScript. The list is
 * read from node_modules so a dependency bump does not silently break tests.
 */
function esmOnlyPackages() {
  const root = path.join(__dirname, 'node_modules');
  const names = new Set();
  const visit = (dir, scope) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      if (!scope && entry.name.startsWith('@')) {
        visit(path.join(dir, entry.name), entry.name);
        continue;
      }
      const name = scope ? `${scope}/${entry.name}` : entry.name;
      try {
        const manifest = JSON.parse(fs.readFileSync(path.join(dir, entry.name, 'package.json'), 'utf8'));
        if (manifest.type === 'module') names.add(name);
      } catch {
        // not a package directory
      }
      // Packages nested under another package's node_modules (version conflicts).
      const nested = path.join(dir, entry.name, 'node_modules');
      if (fs.existsSync(nested)) visit(nested, undefined);
    }
  };
  visit(root, undefined);
  return [...names];
}

const escape = (name) => name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const swc = [
  '@swc/jest',
  {
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  },
];

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/', '/.tools/', '/.data/'],
  transform: { '^.+\\.(t|j|mj)s$': swc },
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnlyPackages().map(escape).join('|')})/)`],
  resolver: '<rootDir>/test/support/jest-resolver.js',
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json', 'node'],
  testTimeout: 120_000,
  // Tests start real servers; two cores are shared by the servers and jest.
  maxWorkers: 1,
};
