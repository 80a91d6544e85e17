import { readFileSync } from 'node:fs';
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';

/**
 * Where Temporal is, from flags or the environment: a local dev server by default, a cluster or
 * Temporal Cloud (mTLS files or an API key) in production. Secrets come from the environment only.
 */
export interface TemporalTarget {
  address: string;
  namespace: string;
  apiKey?: string;
  tls?: { certFile?: string; keyFile?: string; caFile?: string; serverName?: string } | true;
}

export function temporalTargetFromEnv(
  overrides: Partial<Pick<TemporalTarget, 'address' | 'namespace'>> = {},
): TemporalTarget {
  const env = process.env;
  const tlsFiles = env.TEMPORAL_TLS_CERT || env.TEMPORAL_TLS_KEY || env.TEMPORAL_TLS_CA;
  return {
    address: overrides.address ?? env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
    namespace: overrides.namespace ?? env.TEMPORAL_NAMESPACE ?? 'default',
    apiKey: env.TEMPORAL_API_KEY || undefined,
    tls: tlsFiles
      ? {
          certFile: env.TEMPORAL_TLS_CERT,
          keyFile: env.TEMPORAL_TLS_KEY,
          caFile: env.TEMPORAL_TLS_CA,
          serverName: env.TEMPORAL_TLS_SERVER_NAME,
        }
      : env.TEMPORAL_TLS === 'true' || env.TEMPORAL_API_KEY
        ? true
        : undefined,
  };
}

function tlsOptions(target: TemporalTarget): ConnectionOptions['tls'] {
  if (!target.tls) return undefined;
  if (target.tls === true) return true;
  const { certFile, keyFile, caFile, serverName } = target.tls;
  if (Boolean(certFile) !== Boolean(keyFile))
    throw new Error(
      'TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY: must be set together (a client certificate and its key)',
    );
  return {
    serverNameOverride: serverName,
    serverRootCACertificate: caFile ? readTlsFile('TEMPORAL_TLS_CA', caFile) : undefined,
    clientCertPair:
      certFile && keyFile
        ? { crt: readTlsFile('TEMPORAL_TLS_CERT', certFile), key: readTlsFile('TEMPORAL_TLS_KEY', keyFile) }
        : undefined,
  };
}

function readTlsFile(variable: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new Error(
      `${variable}=${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
}

export async function connectClient(target: TemporalTarget): Promise<Client> {
  const connection = await Connection.connect({
    address: target.address,
    tls: tlsOptions(target),
    apiKey: target.apiKey,
    connectTimeout: 5000,
  });
  return new Client({ connection, namespace: target.namespace });
}

export async function connectWorker(target: TemporalTarget): Promise<NativeConnection> {
  return NativeConnection.connect({
    address: target.address,
    tls: tlsOptions(target),
    apiKey: target.apiKey,
  });
}
