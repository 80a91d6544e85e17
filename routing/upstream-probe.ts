import { request } from 'undici';

/**
 * Asks an upstream directly whether it answers (status below 400), for routers that cannot tell:
 * NGINX open source exposes no upstream health, and HAProxy does not check servers in maintenance.
 */
export async function probeUpstream(origin: string, path: string, timeoutMs: number): Promise<boolean> {
  try {
    const response = await request(`${origin.replace(/\/$/, '')}${path}`, {
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
      // A new connection per probe, as health checks do: a kept-alive one may be stale.
      reset: true,
    });
    await response.body.dump();
    return response.statusCode < 400;
  } catch {
    return false;
  }
}
