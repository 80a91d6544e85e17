/**
 * One JSON POST with a deadline, its answer sorted into delivered, retry later, or refused for
 * good. Error messages name the destination as the caller describes it (never a secret URL).
 */
import { request } from 'undici';
import { PermanentDeliveryError, RetryableDeliveryError } from './alert-sink';

export interface JsonPost {
  url: string;
  body: string;
  headers?: Record<string, string>;
  timeoutMs: number;
  /** How errors name the destination, e.g. `webhook https://hooks.example.com`. */
  describe: string;
  signal: AbortSignal;
}

const MAX_RETRY_AFTER_MS = 60_000;

function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, MAX_RETRY_AFTER_MS);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.min(Math.max(0, date - Date.now()), MAX_RETRY_AFTER_MS);
}

/** The first line of a refusal's body, short, printable only: enough to see why, no more. */
async function reasonOf(body: { text(): Promise<string> }): Promise<string> {
  const text = await body.text().catch(() => '');
  const line =
    text
      .split('\n')[0]
      ?.replace(/[^\x20-\x7e]/g, '?')
      .slice(0, 200) ?? '';
  return line ? `: ${line}` : '';
}

export async function postJson(post: JsonPost): Promise<void> {
  const timeout = AbortSignal.timeout(post.timeoutMs);
  let response;
  try {
    response = await request(post.url, {
      method: 'POST',
      body: post.body,
      headers: { 'content-type': 'application/json', 'user-agent': 'canary-alerts/1', ...post.headers },
      signal: AbortSignal.any([post.signal, timeout]),
      headersTimeout: post.timeoutMs,
      bodyTimeout: post.timeoutMs,
    });
  } catch (error) {
    const why = timeout.aborted
      ? `no answer within ${post.timeoutMs} ms`
      : ((error as NodeJS.ErrnoException).code ?? (error as Error).message);
    throw new RetryableDeliveryError(`${post.describe}: ${why}`);
  }
  const status = response.statusCode;
  if (status >= 200 && status < 300) {
    await response.body.dump();
    return;
  }
  const reason = await reasonOf(response.body);
  if (status >= 500 || status === 408 || status === 429)
    throw new RetryableDeliveryError(
      `${post.describe} answered ${status}${reason}`,
      retryAfterMs(response.headers['retry-after']),
    );
  throw new PermanentDeliveryError(`${post.describe} refused the alert with ${status}${reason}`);
}
