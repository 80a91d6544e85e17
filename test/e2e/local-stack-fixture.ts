/**
 * The local stack an end-to-end test file runs on: started once per file in beforeAll (Temporal
 * dev server, FerretDB, the sample shop as baseline and canary, the built-in router, the worker,
 * the API), with a Temporal client and a MongoDB client, and stopped in afterAll.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { MongoClient } from 'mongodb';
import { LocalStack } from '../../devstack/local-stack';
import { connectClient } from '../../platform/temporal-connection';

export interface E2eStack {
  dataDir: string;
  stack: LocalStack;
  client: Client;
  mongo: MongoClient;
}

/** `prefix` names the temporary directory; `profiles` are generated into the empty store. */
export async function startE2eStack(prefix: string, profiles: number): Promise<E2eStack> {
  const started: Partial<E2eStack> = { dataDir: mkdtempSync(path.join(os.tmpdir(), prefix)) };
  try {
    const dataDir = started.dataDir as string;
    const stack = (started.stack = await LocalStack.start({ dataDir, profiles }));
    started.client = await connectClient({ address: stack.temporal.address, namespace: 'default' });
    started.mongo = await MongoClient.connect(stack.ferret.uri);
    return started as E2eStack;
  } catch (error) {
    await stopE2eStack(started); // afterAll never sees a half-started stack
    throw error;
  }
}

/** Stops what was started; each part may be missing. */
export async function stopE2eStack(started: Partial<E2eStack>): Promise<void> {
  await started.mongo?.close();
  await started.client?.connection.close();
  await started.stack?.stop();
  if (started.dataDir) rmSync(started.dataDir, { recursive: true, force: true });
}
