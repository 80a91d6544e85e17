import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * The layout's arrows (eslint.config.mjs, docs/architecture.md) fail lint when an import breaks
 * them. ESLint runs in a child process: its flat config is an ES module, which jest cannot load.
 */
const root = path.join(__dirname, '..', '..');
const LINT_STDIN = `
const { ESLint } = require('eslint');
let input = '';
process.stdin.on('data', (chunk) => (input += chunk)).on('end', async () => {
  const { file, source } = JSON.parse(input);
  const [result] = await new ESLint().lintText(source, { filePath: file });
  process.stdout.write(JSON.stringify(result.messages));
});`;

async function lintErrors(file: string, source: string, ruleId: string): Promise<string[]> {
  const run = promisify(execFile)(process.execPath, ['-e', LINT_STDIN], { cwd: root });
  run.child.stdin?.end(JSON.stringify({ file: path.join(root, file), source }));
  const messages = JSON.parse((await run).stdout) as { ruleId: string | null; message: string }[];
  return messages.filter((message) => message.ruleId === ruleId).map((message) => message.message);
}

function boundaryErrors(file: string, source: string): Promise<string[]> {
  return lintErrors(file, source, 'boundaries/element-types');
}

describe('import boundaries', () => {
  it('refuses a component importing the workflow', async () => {
    const errors = await boundaryErrors(
      'alerts/alert-text.ts',
      "import { nextTrafficShare } from '../workflows/policy';\nexport const next = nextTrafficShare;\n",
    );
    expect(errors).toEqual(['alerts/ may not import workflows/ (docs/architecture.md)']);
  });

  it('refuses core importing anything of ours', async () => {
    const errors = await boundaryErrors(
      'core/json.ts',
      "import type { RolloutSpec } from '../rollout/spec';\nexport type Spec = RolloutSpec;\n",
    );
    expect(errors).toEqual(['core/ may not import rollout/ (docs/architecture.md)']);
  });

  it('refuses an entry point reaching workflow code instead of the client', async () => {
    const errors = await boundaryErrors(
      'dashboard/app.ts',
      "import { rolloutWorkflow } from '../workflows/rollout';\nexport const workflow = rolloutWorkflow;\n",
    );
    expect(errors).toEqual(['dashboard/ may not import workflows/ (docs/architecture.md)']);
  });

  it('lets the workflow import activity types but not activity code', async () => {
    const typeOnly = await boundaryErrors(
      'workflows/probe-summary.ts',
      "import type { RolloutActivities } from '../activities';\nexport type A = RolloutActivities;\n",
    );
    expect(typeOnly).toEqual([]);
    const value = await boundaryErrors(
      'workflows/probe-summary.ts',
      "import { createRolloutActivities } from '../activities';\nexport const create = createRolloutActivities;\n",
    );
    expect(value).toEqual(['workflows/ may not import activities/ (docs/architecture.md)']);
  });

  it('keeps metric sources apart from routers', async () => {
    const errors = await boundaryErrors(
      'signals/collector.ts',
      "import { validateRouterSpec } from '../routing/routers';\nexport const validate = validateRouterSpec;\n",
    );
    expect(errors).toEqual(['signals/ may not import routing/ (docs/architecture.md)']);
  });

  it('refuses Temporal client values in an entry point, which reaches rollouts through client/', async () => {
    const value = await lintErrors(
      'dashboard/plugins/errors.ts',
      "import { ServiceError } from '@temporalio/client';\nexport const unavailable = ServiceError;\n",
      'no-restricted-imports',
    );
    expect(value).toEqual([expect.stringContaining('entry points reach rollouts through RolloutClient')]);
    const typeOnly = await lintErrors(
      'cli/commands/rollout.ts',
      "import type { Client } from '@temporalio/client';\nexport type C = Client;\n",
      'no-restricted-imports',
    );
    expect(typeOnly).toEqual([]);
    // The entry points' block replaces the global rule for them: execa stays refused there.
    const execa = await lintErrors(
      'cli/commands/demo.ts',
      "import { execa } from 'execa';\nexport const run = execa;\n",
      'no-restricted-imports',
    );
    expect(execa).toEqual([expect.stringContaining('execa is ESM-only')]);
  });

  it('allows what the arrows allow', async () => {
    const errors = await boundaryErrors(
      'signals/templates.ts',
      "import { ValidationError } from '../core/validation';\nimport type { Verdict } from '../rollout/verdict';\nexport type V = [ValidationError, Verdict];\n",
    );
    expect(errors).toEqual([]);
  });
});
