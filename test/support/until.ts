/**
 * Polling for tests that watch a real server change: the first value `probe` gives (anything but
 * undefined or false) within `timeoutMs`; a probe that throws (a server restarting) is asked again.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits until `predicate` holds. */
export async function until(predicate: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  await waitFor('condition', async () => (await predicate()) || undefined, timeoutMs);
}
