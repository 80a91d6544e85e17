/**
 * `canary controller` refuses bad settings before it connects to anything: exit 2, one
 * `error: --flag: rule` line per bad flag.
 */
import { runCli } from '../support/cli';

test('bad flags exit 2 naming each flag and its rule', async () => {
  const run = await runCli(
    [
      'controller',
      '--api-server',
      'ftp://kube',
      '--token-file',
      '/nonexistent/token',
      '--resync',
      '1ms',
      '--namespace',
      'Shop_1',
    ],
    { env: { KUBERNETES_SERVICE_HOST: '' } },
  );
  expect(run.exitCode).toBe(2);
  expect(run.stderr).toContain('error: --api-server: must be an https:// URL');
  expect(run.stderr).toMatch(/error: --token-file: cannot read \/nonexistent\/token: /);
  expect(run.stderr).toContain('error: --namespace: must be a Kubernetes name');
  expect(run.stderr).toContain('error: --resync: must be a duration of at least 100ms');
});

test('outside a pod, --api-server is required', async () => {
  const run = await runCli(['controller', '--token-file', '/dev/null'], {
    env: { KUBERNETES_SERVICE_HOST: '' },
  });
  expect(run.exitCode).toBe(2);
  expect(run.stderr).toContain('error: --api-server: is required outside a pod (no KUBERNETES_SERVICE_HOST)');
});
