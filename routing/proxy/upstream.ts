import { Pool } from 'undici';
import type { Logger } from '../../platform/logger';
import type { UpstreamMetrics, UpstreamRole } from './metrics';
import type { HealthCheckOptions } from './options';
import { UpstreamPool } from './upstream-pool';
import { messageOf } from '../../core/errors';

/**
 * One side (baseline or canary): a keep-alive connection pool for traffic, and an active health
 * check on its own connection (an undici pool: a few requests a second), so a saturated pool
 * cannot make a live upstream look dead.
 */
export class Upstream {
  readonly pool: UpstreamPool;
  healthy = true;
  private readonly checkPool: Pool | undefined;
  private failures = 0;
  private successes = 0;
  private timer: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(
    readonly role: UpstreamRole,
    readonly origin: string,
    options: { connections: number; timeoutMs: number },
    readonly metrics: UpstreamMetrics,
    private readonly healthCheck: HealthCheckOptions | undefined,
    private readonly logger: Logger,
  ) {
    this.pool = new UpstreamPool(origin, {
      connections: options.connections,
      timeoutMs: options.timeoutMs,
      connectTimeoutMs: Math.min(options.timeoutMs, 5000),
    });
    metrics.healthy.set(1);
    if (healthCheck) {
      this.checkPool = new Pool(origin, {
        connections: 1,
        headersTimeout: healthCheck.timeoutMs,
        bodyTimeout: healthCheck.timeoutMs,
        connect: { timeout: healthCheck.timeoutMs },
      });
      void this.check();
      this.timer = setInterval(() => void this.check(), healthCheck.intervalMs);
      this.timer.unref();
    }
  }

  /** Nothing listens there: no need to wait for the health check to notice (it brings it back). */
  markRefused(): void {
    if (!this.healthCheck) return;
    this.successes = 0;
    this.failures = Math.max(this.failures, this.healthCheck.fall);
    this.setHealthy(false, 'connection refused');
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([this.pool.close(), this.checkPool?.close()]);
  }

  private async check(): Promise<void> {
    if (!this.checkPool || !this.healthCheck || this.checking) return;
    this.checking = true;
    let failure: string | undefined;
    try {
      const response = await this.checkPool.request({
        path: this.healthCheck.path,
        method: 'GET',
        signal: AbortSignal.timeout(this.healthCheck.timeoutMs),
      });
      await response.body.dump();
      if (response.statusCode >= 400) failure = `status ${response.statusCode}`;
    } catch (error) {
      failure = messageOf(error);
    } finally {
      this.checking = false;
    }
    if (failure === undefined) {
      this.failures = 0;
      this.successes += 1;
      if (!this.healthy && this.successes >= this.healthCheck.rise)
        this.setHealthy(true, 'health check passes');
    } else {
      this.successes = 0;
      this.failures += 1;
      if (this.healthy && this.failures >= this.healthCheck.fall) this.setHealthy(false, failure);
    }
  }

  private setHealthy(healthy: boolean, reason: string): void {
    if (this.healthy === healthy) return;
    this.healthy = healthy;
    this.metrics.healthy.set(healthy ? 1 : 0);
    this.logger.warn(
      { upstream: this.role, origin: this.origin, healthy, reason },
      'upstream health changed',
    );
  }
}
