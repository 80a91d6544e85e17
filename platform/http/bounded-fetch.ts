/**
 * GET for endpoints a spec names (a Prometheus, a target's /metrics): redirects are followed on
 * the same origin only, so an endpoint cannot send the worker to a host the spec did not name,
 * and the body is read up to a byte limit, so an endpoint cannot exhaust the worker's memory.
 * Errors name the host, never the credentials or the query of a URL.
 */
export interface BoundedFetchOptions {
  timeoutMs: number;
  maxBodyBytes: number;
  /** What is fetched, for messages: "prometheus", "scraping canary". */
  what: string;
}

export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;
const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export async function fetchBounded(
  url: string,
  options: BoundedFetchOptions,
): Promise<{ status: number; text: string }> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  let current = new URL(url);
  for (let redirects = 0; ; redirects++) {
    const response = await fetch(current, { signal, redirect: 'manual' });
    const location = response.headers.get('location');
    if (!REDIRECT_STATUSES.has(response.status) || location === null)
      return { status: response.status, text: await readBounded(response, current, options) };
    await response.body?.cancel();
    let next: URL;
    try {
      next = new URL(location, current);
    } catch {
      throw new Error(`${options.what} at ${current.host} redirected to an invalid location`);
    }
    if (next.origin !== current.origin)
      throw new Error(
        `${options.what} at ${current.host} redirected to another host (${next.protocol}//${next.host}): refused, redirects are followed on the same host only`,
      );
    if (redirects >= MAX_REDIRECTS)
      throw new Error(`${options.what} at ${current.host} redirected more than ${MAX_REDIRECTS} times`);
    current = next;
  }
}

async function readBounded(response: Response, url: URL, options: BoundedFetchOptions): Promise<string> {
  const tooLarge = () =>
    new Error(
      `${options.what} at ${url.host} answered a body over the limit of ${options.maxBodyBytes} bytes (maxBodyBytes)`,
    );
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > options.maxBodyBytes) {
    await response.body?.cancel();
    throw tooLarge();
  }
  if (!response.body) return '';
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > options.maxBodyBytes) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
