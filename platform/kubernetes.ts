/**
 * A small Kubernetes API client on undici: bearer token, the server's CA, server-side apply with a
 * field manager, merge patches, list + watch streams. Errors name the verb and the object, so a
 * refusal by RBAC or a schema reads as what it is.
 */
import { Agent, request, type Dispatcher } from 'undici';
import { messageOf } from '../core/errors';

export interface KubernetesConnection {
  /** e.g. https://127.0.0.1:6443 (no trailing slash needed). */
  server: string;
  token: string;
  /** PEM of the CA that signed the server's certificate; system CAs when absent. */
  ca?: string;
  timeoutMs?: number;
}

/** Where an object lives in the API: `/api/v1/...` for the core group, `/apis/<group>/<version>/...` otherwise. */
export interface ResourceRef {
  group: string;
  version: string;
  plural: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** The API server answered with a failure status (a `Status` object). */
export class KubernetesApiError extends Error {
  override readonly name = 'KubernetesApiError';
  constructor(
    message: string,
    readonly status: number,
    readonly reason: string,
    readonly causes: { field?: string; message?: string }[],
  ) {
    super(message);
  }
}

/** The API server could not be reached (connection refused, TLS, timeout). */
export class KubernetesUnreachableError extends Error {
  override readonly name = 'KubernetesUnreachableError';
}

export interface KubernetesObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    generation?: number;
    uid?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    finalizers?: string[];
    deletionTimestamp?: string;
  };
  [key: string]: unknown;
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export function resourcePath(ref: ResourceRef): string {
  const base = ref.group === '' ? `/api/${ref.version}` : `/apis/${ref.group}/${ref.version}`;
  const namespace = ref.namespace === undefined ? '' : `/namespaces/${encodeURIComponent(ref.namespace)}`;
  const name = ref.name === undefined ? '' : `/${encodeURIComponent(ref.name)}`;
  const sub = ref.subresource === undefined ? '' : `/${ref.subresource}`;
  return `${base}${namespace}/${ref.plural}${name}${sub}`;
}

/** `httproutes shop/web` for messages. */
export function describeRef(ref: ResourceRef | string): string {
  if (typeof ref === 'string') return ref;
  const where = ref.namespace === undefined ? (ref.name ?? '') : `${ref.namespace}/${ref.name ?? ''}`;
  const kind = ref.group === '' ? ref.plural : `${ref.plural}.${ref.group}`;
  return `${kind}${ref.subresource ? `/${ref.subresource}` : ''} ${where}`.trim();
}

interface StatusBody {
  message?: string;
  reason?: string;
  details?: { causes?: { field?: string; message?: string }[] };
}

export class KubernetesClient {
  private readonly server: string;
  private readonly dispatcher: Agent;
  private readonly timeoutMs: number;

  constructor(private readonly connection: KubernetesConnection) {
    this.server = connection.server.replace(/\/$/, '');
    this.timeoutMs = connection.timeoutMs ?? 10_000;
    this.dispatcher = new Agent({ connect: connection.ca ? { ca: connection.ca } : {} });
  }

  get(ref: ResourceRef): Promise<KubernetesObject>;
  get<T>(ref: ResourceRef): Promise<T>;
  async get<T>(ref: ResourceRef): Promise<T> {
    return (await this.call('GET', ref)) as T;
  }

  /** The object, or undefined when it does not exist. */
  async find<T extends KubernetesObject>(ref: ResourceRef): Promise<T | undefined> {
    try {
      return await this.get<T>(ref);
    } catch (error) {
      if (error instanceof KubernetesApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  async list<T>(
    ref: ResourceRef,
    query: Record<string, string> = {},
  ): Promise<{ items: T[]; resourceVersion: string }> {
    const answer = (await this.call('GET', ref, { query })) as {
      items: T[];
      metadata: { resourceVersion: string };
    };
    return { items: answer.items, resourceVersion: answer.metadata.resourceVersion };
  }

  async create<T>(ref: ResourceRef, object: unknown, query: Record<string, string> = {}): Promise<T> {
    return (await this.call('POST', ref, { body: object, contentType: 'application/json', query })) as T;
  }

  /**
   * Server-side apply: `object` states the fields `fieldManager` owns. With a resourceVersion in
   * its metadata the apply fails with 409 when the object changed since it was read.
   */
  async apply<T>(
    ref: ResourceRef,
    object: unknown,
    fieldManager: string,
    options: { force?: boolean; dryRun?: boolean } = {},
  ): Promise<T> {
    const query: Record<string, string> = { fieldManager, force: String(options.force ?? false) };
    if (options.dryRun) query.dryRun = 'All';
    return (await this.call('PATCH', ref, {
      body: object,
      contentType: 'application/apply-patch+yaml',
      query,
    })) as T;
  }

  async mergePatch<T>(ref: ResourceRef, patch: unknown, fieldManager?: string): Promise<T> {
    const query: Record<string, string> = fieldManager ? { fieldManager } : {};
    return (await this.call('PATCH', ref, {
      body: patch,
      contentType: 'application/merge-patch+json',
      query,
    })) as T;
  }

  async replace<T>(ref: ResourceRef, object: unknown, fieldManager?: string): Promise<T> {
    const query: Record<string, string> = fieldManager ? { fieldManager } : {};
    return (await this.call('PUT', ref, { body: object, contentType: 'application/json', query })) as T;
  }

  async delete(ref: ResourceRef): Promise<void> {
    await this.call('DELETE', ref);
  }

  /**
   * One watch request from `resourceVersion` (with bookmarks); calls `onEvent` for each event and
   * resolves when the server ends the stream or `signal` aborts. A 410 (too old) arrives as an
   * ERROR event whose object is a Status with code 410.
   */
  async watch<T>(
    ref: ResourceRef,
    resourceVersion: string,
    onEvent: (event: WatchEvent<T>) => Promise<void> | void,
    options: { signal?: AbortSignal; timeoutSeconds?: number } = {},
  ): Promise<void> {
    const query = {
      watch: 'true',
      resourceVersion,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(options.timeoutSeconds ?? 300),
    };
    const url = this.url(ref, query);
    let response: Dispatcher.ResponseData;
    try {
      response = await request(url, {
        method: 'GET',
        dispatcher: this.dispatcher,
        headers: { authorization: `Bearer ${this.connection.token}`, accept: 'application/json' },
        headersTimeout: this.timeoutMs,
        bodyTimeout: 0,
        signal: options.signal,
      });
    } catch (error) {
      if (options.signal?.aborted) return;
      throw new KubernetesUnreachableError(`watch ${describeRef(ref)}: ${messageOf(error)}`, {
        cause: error,
      });
    }
    if (response.statusCode !== 200) {
      const body = (await response.body.json().catch(() => ({}))) as StatusBody;
      throw this.failure('watch', ref, response.statusCode, body);
    }
    let buffered = '';
    try {
      for await (const chunk of response.body) {
        buffered += (chunk as Buffer).toString('utf8');
        let newline = buffered.indexOf('\n');
        while (newline >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (line) await onEvent(JSON.parse(line) as WatchEvent<T>);
          newline = buffered.indexOf('\n');
        }
      }
    } catch (error) {
      if (options.signal?.aborted) return;
      throw new KubernetesUnreachableError(`watch ${describeRef(ref)}: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }

  /**
   * The objects as the server prints them (what `kubectl get` shows): the CRD's printer
   * columns and one row of cells per object.
   */
  async table(ref: ResourceRef): Promise<{ columns: string[]; rows: unknown[][] }> {
    const answer = (await this.call('GET', ref, {
      accept: 'application/json;as=Table;v=v1;g=meta.k8s.io',
    })) as { columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] };
    return {
      columns: answer.columnDefinitions.map((column) => column.name),
      rows: answer.rows.map((row) => row.cells),
    };
  }

  /** True when `GET /readyz` answers 200 (every post-start hook has run). */
  async isReady(): Promise<boolean> {
    try {
      await this.call('GET', '/readyz');
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  private url(ref: ResourceRef | string, query: Record<string, string> = {}): string {
    const search = new URLSearchParams(query).toString();
    const where = typeof ref === 'string' ? ref : resourcePath(ref);
    return `${this.server}${where}${search ? `?${search}` : ''}`;
  }

  private async call(
    method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
    ref: ResourceRef | string,
    options: { body?: unknown; contentType?: string; query?: Record<string, string>; accept?: string } = {},
  ): Promise<unknown> {
    const url = this.url(ref, options.query);
    let status: number;
    let answer: unknown;
    try {
      const response = await request(url, {
        method,
        dispatcher: this.dispatcher,
        headers: {
          authorization: `Bearer ${this.connection.token}`,
          accept: options.accept ?? 'application/json',
          ...(options.contentType ? { 'content-type': options.contentType } : {}),
        },
        body: options.body === undefined ? null : JSON.stringify(options.body),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      status = response.statusCode;
      answer = await response.body.json().catch(() => undefined);
    } catch (error) {
      throw new KubernetesUnreachableError(
        `${method} ${describeRef(ref)} at ${this.server}: ${messageOf(error)}`,
        {
          cause: error,
        },
      );
    }
    if (status >= 200 && status < 300) return answer;
    throw this.failure(method, ref, status, answer ?? {});
  }

  private failure(
    verb: string,
    ref: ResourceRef | string,
    status: number,
    body: StatusBody,
  ): KubernetesApiError {
    const reason = body.reason ?? `status ${status}`;
    return new KubernetesApiError(
      `${verb} ${describeRef(ref)}: ${status} ${reason}: ${body.message ?? '(no message)'}`,
      status,
      reason,
      body.details?.causes ?? [],
    );
  }
}
