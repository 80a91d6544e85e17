// @ts-check
import eslint from '@eslint/js';
import boundaries from 'eslint-plugin-boundaries';
import tseslint from 'typescript-eslint';

/**
 * The layout's arrows (docs/architecture.md): which folder may import which. A file outside every
 * element (bench/, scripts/) is not checked; tests may import anything.
 */
const LAYERS = {
  core: [],
  rollout: ['core'],
  platform: ['core'],
  analysis: ['core', 'rollout'],
  workflows: ['core', 'rollout'],
  // Components: never the workflow, the activities, the client or an entry point.
  routing: ['core', 'rollout', 'platform'],
  alerts: ['core', 'rollout', 'platform'],
  profiles: ['core', 'rollout', 'platform'],
  loadgen: ['core', 'rollout', 'platform', 'profiles'],
  // Metric sources know no router: the worker hands them the router's template variables.
  signals: ['core', 'rollout', 'platform', 'analysis', 'loadgen'],
  activities: [
    'core',
    'rollout',
    'platform',
    'analysis',
    'signals',
    'routing',
    'alerts',
    'profiles',
    'loadgen',
  ],
  client: ['core', 'rollout', 'platform', 'analysis', 'signals', 'routing', 'alerts', 'profiles', 'loadgen'],
  examples: ['core', 'rollout', 'platform'],
  devstack: ['core', 'rollout', 'platform', 'profiles', 'examples'],
  // Entry points: they reach rollouts through client/ only.
  workers: [
    'core',
    'rollout',
    'platform',
    'signals',
    'routing',
    'alerts',
    'profiles',
    'loadgen',
    'activities',
    'client',
  ],
  dashboard: ['core', 'rollout', 'platform', 'loadgen', 'client'],
  // The CanaryRollout controller: steers rollouts through client/ like the CLI.
  controller: ['core', 'rollout', 'platform', 'client'],
  cli: ['core', 'rollout', 'platform', 'analysis', 'profiles', 'loadgen', 'client', 'devstack', 'controller'],
};

/** Every block that sets no-restricted-imports repeats this: a later block replaces the rule. */
const EXECA_IMPORT = {
  name: 'execa',
  message: 'execa is ESM-only: load it with loadExeca() from platform/execa so tsx and jest can run it.',
  allowTypeImports: true,
};

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      'dist/',
      '.tools/',
      '.data/',
      'coverage/',
      'test-artifacts/',
      '**/*.js',
      '**/*.mjs',
    ],
  },
  eslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { boundaries },
    settings: {
      'import/resolver': { typescript: { project: './tsconfig.json' } },
      'boundaries/elements': [
        { type: 'test', pattern: ['test/**', '**/*.test.ts'], mode: 'full' },
        ...Object.keys(LAYERS).map((type) => ({ type, pattern: `${type}/**`, mode: 'full' })),
      ],
    },
    rules: {
      'boundaries/element-types': [
        'error',
        {
          default: 'disallow',
          message: '${file.type}/ may not import ${dependency.type}/ (docs/architecture.md)',
          rules: [
            { from: 'test', allow: ['*'] },
            ...Object.entries(LAYERS).map(([from, allow]) => ({ from, allow: [from, ...allow] })),
            // The worker bundles the workflow code by path; the client types its start with it.
            { from: 'workers', allow: ['workflows'] },
            { from: 'client', allow: ['workflows'], importKind: 'type' },
            { from: 'workflows', allow: ['activities'], importKind: 'type' },
          ],
        },
      ],
    },
  },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // Interface implementations are async by contract even when one has nothing to await.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      eqeqeq: ['error', 'always'],
      'no-restricted-imports': ['error', { paths: [EXECA_IMPORT] }],
    },
  },
  {
    // Entry points reach rollouts through client/ (RolloutClient and its typed errors);
    // platform/temporal-connection builds the Temporal Client they hand to it.
    files: ['cli/**/*.ts', 'dashboard/**/*.ts', 'workers/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            EXECA_IMPORT,
            {
              name: '@temporalio/client',
              message:
                'entry points reach rollouts through RolloutClient (client/); a Client comes from platform/temporal-connection. Type imports are fine.',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no Node built-ins, clocks or I/O.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', 'fs', 'path', 'os', 'crypto', 'http', 'https', 'net', 'child_process'],
              message: 'Workflow code must stay deterministic: no Node built-ins.',
            },
            {
              group: [
                'mongodb',
                'undici',
                'execa',
                'fastify',
                'pino',
                'prom-client',
                '@temporalio/client',
                '@temporalio/worker',
                '@temporalio/activity',
              ],
              message: 'Workflow code must not import I/O libraries.',
            },
            {
              group: ['../activities/*', '../activities', '!../activities/types'],
              message: 'Workflows import only activity types.',
              allowTypeImports: true,
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'Use sleep() or condition() from @temporalio/workflow.' },
        { name: 'setInterval', message: 'Use sleep() in a loop.' },
      ],
    },
  },
  {
    // The dashboard's browser code: plain JavaScript ES modules served as they are, typed with
    // JSDoc and checked by tsconfig.browser.json (lib DOM, no Node types), which also makes the
    // type-aware rules above work on it.
    ignores: ['!dashboard/public/**/*.js'],
  },
  {
    files: ['dashboard/public/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      parserOptions: { projectService: false, project: './tsconfig.browser.json' },
    },
    rules: {
      // tsc reports unknown names against the DOM's globals (no-undef knows no browser globals).
      'no-undef': 'off',
    },
  },
);
