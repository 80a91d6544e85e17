import { readFileSync } from 'node:fs';
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { boolean, readConfig, text, variable, type ConfigOf } from './config';

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

/** Temporal's own variable names (its CLI and SDK samples use them), kept as they are. */
export const TEMPORAL_VARIABLES = {
  temporalAddress: variable('TEMPORAL_ADDRESS', text, { default: '127.0.0.1:7233' }),
  temporalNamespace: variable('TEMPORAL_NAMESPACE', text, { default: 'default' }),
  temporalApiKey: variable('TEMPORAL_API_KEY', text),
  temporalTls: variable('TEMPORAL_TLS', boolean, { default: false }),
  temporalTlsCert: variable('TEMPORAL_TLS_CERT', text),
  temporalTlsKey: variable('TEMPORAL_TLS_KEY', text),
  temporalTlsCa: variable('TEMPORAL_TLS_CA', text),
  temporalTlsServerName: variable('TEMPORAL_TLS_SERVER_NAME', text),
};

/** The target from the values of TEMPORAL_VARIABLES (read with the rest of a process's config). */
export function temporalTarget(
  values: ConfigOf<typeof TEMPORAL_VARIABLES>,
  overrides: Partial<Pick<TemporalTarget, 'address' | 'namespace'>> = {},
): TemporalTarget {
  const tlsFiles = values.temporalTlsCert || values.temporalTlsKey || values.temporalTlsCa;
  return {
    address: overrides.address ?? values.temporalAddress,
    namespace: overrides.namespace ?? values.temporalNamespace,
    apiKey: values.temporalApiKey,
    tls: tlsFiles
      ? {
          certFile: values.temporalTlsCert,
          keyFile: values.temporalTlsKey,
          caFile: values.temporalTlsCa,
          serverName: values.temporalTlsServerName,
        }
      : values.temporalTls || values.temporalApiKey
        ? true
        : undefined,
  };
}

export function temporalTargetFromEnv(
  overrides: Partial<Pick<TemporalTarget, 'address' | 'namespace'>> = {},
  env: NodeJS.ProcessEnv = process.env,
): TemporalTarget {
  return temporalTarget(readConfig(env, TEMPORAL_VARIABLES), overrides);
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
