import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MongoClient, type Db } from 'mongodb';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import {
  bundleWorkflowCode,
  DefaultLogger,
  Runtime,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { FerretDbServer } from '../../devstack/ferretdb';
import { TemporalDevServer } from '../../devstack/temporal-server';
import { WORKFLOWS_PATH } from '../../workers/rollout-worker';

export interface TestServers {
  dataDir: string;
  temporal: TemporalDevServer;
  ferret: FerretDbServer;
  env: TestWorkflowEnvironment;
  mongo: MongoClient;
  db: Db;
  stop(): Promise<void>;
}

let runtimeInstalled = false;

/** Worker logs at WARN keep test output readable; failures still show. Must precede any connection. */
export function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({ logger: new DefaultLogger('WARN') });
}

/** A real Temporal dev server (SQLite file) and a real FerretDB, on free loopback ports. */
export async function startTestServers(
  name: string,
  options: { dynamicConfig?: Record<string, unknown> } = {},
): Promise<TestServers> {
  quietRuntime();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `canary-${name}-`));
  const [temporal, ferret] = await Promise.all([
    TemporalDevServer.start({
      dbFile: path.join(dataDir, 'temporal.db'),
      uiPort: false,
      logFile: path.join(dataDir, 'temporal.log'),
      dynamicConfig: options.dynamicConfig,
    }),
    FerretDbServer.start({
      dataDir: path.join(dataDir, 'ferretdb'),
      logFile: path.join(dataDir, 'ferretdb.log'),
    }),
  ]);
  const env = await TestWorkflowEnvironment.createFromExistingServer({ address: temporal.address });
  const mongo = await MongoClient.connect(ferret.uri, { serverSelectionTimeoutMS: 5000 });
  const db = mongo.db(`test_${name.replace(/[^a-z0-9]/gi, '_')}`);
  return {
    dataDir,
    temporal,
    ferret,
    env,
    mongo,
    db,
    async stop() {
      await mongo.close().catch(() => undefined);
      await env.teardown().catch(() => undefined);
      await Promise.all([temporal.stop(), ferret.stop()]);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/** Webpack runs once per test file instead of once per worker. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietBundlerLogger });
  return bundle;
}

const quietBundlerLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => console.warn(message),
  error: (message: string) => console.error(message),
};
