import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { quietRuntime, workflowBundle } from '../support/environment';

const directory = path.join(__dirname, '..', 'fixtures', 'histories');
const fixtures = readdirSync(directory).filter((file) => file.endsWith('.json'));

describe('recorded rollout histories replay without determinism errors', () => {
  beforeAll(() => quietRuntime());

  test('fixtures exist', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(3);
  });

  test.each(fixtures)('%s', async (file) => {
    const history: unknown = JSON.parse(readFileSync(path.join(directory, file), 'utf8'));
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, file);
  });
});
