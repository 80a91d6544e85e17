/**
 * One leader among several controllers, through a coordination.k8s.io/v1 Lease: the holder
 * renews it; another takes it over only once it has not been renewed for its duration. Every
 * write carries the resourceVersion read, so two candidates cannot both win a takeover.
 */
import {
  KubernetesApiError,
  type KubernetesClient,
  type KubernetesObject,
  type ResourceRef,
} from '../platform/kubernetes';

interface Lease extends KubernetesObject {
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds: number;
  /** How often the holder renews and a candidate retries (default: a third of the duration). */
  retryMs?: number;
}

/** Kubernetes MicroTime: RFC 3339 with microseconds. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private leading = false;

  constructor(
    private readonly client: KubernetesClient,
    private readonly options: LeaderElectionOptions,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaigns until `signal` aborts: calls `lead(leadership)` on winning, where `leadership`
   * aborts when the lease is lost (a renewal failed for longer than the lease lasts).
   */
  async run(lead: (leadership: AbortSignal) => Promise<void>, signal: AbortSignal): Promise<void> {
    const retryMs = this.options.retryMs ?? (this.options.leaseDurationSeconds * 1000) / 3;
    while (!signal.aborted) {
      if (!(await this.tryAcquireOrRenew().catch(() => false))) {
        await sleep(retryMs, signal);
        continue;
      }
      const leadership = new AbortController();
      const onStop = () => leadership.abort();
      signal.addEventListener('abort', onStop);
      const renewing = this.keepRenewing(leadership, retryMs);
      try {
        await lead(leadership.signal);
      } finally {
        leadership.abort();
        signal.removeEventListener('abort', onStop);
        await renewing;
        this.leading = false;
      }
    }
    await this.release().catch(() => undefined);
  }

  /** One attempt: true when this identity holds the lease afterwards. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const ref = this.ref();
    const now = Date.now();
    const { identity, leaseDurationSeconds } = this.options;
    const existing = await this.client.find<Lease>(ref);
    try {
      if (!existing) {
        await this.client.create(
          { ...ref, name: undefined },
          {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name: this.options.name, namespace: this.options.namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds,
              acquireTime: microTime(now),
              renewTime: microTime(now),
              leaseTransitions: 0,
            },
          },
        );
        return (this.leading = true);
      }
      const spec = existing.spec;
      const renewedAt = spec.renewTime ? Date.parse(spec.renewTime) : 0;
      const expired = now > renewedAt + (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
      const ours = spec.holderIdentity === identity;
      if (!ours && !expired && spec.holderIdentity) return (this.leading = false);
      await this.client.replace(ref, {
        ...existing,
        spec: {
          holderIdentity: identity,
          leaseDurationSeconds,
          acquireTime: ours ? spec.acquireTime : microTime(now),
          renewTime: microTime(now),
          leaseTransitions: (spec.leaseTransitions ?? 0) + (ours ? 0 : 1),
        },
      });
      return (this.leading = true);
    } catch (error) {
      // Another candidate wrote first (409) or created it first (409 AlreadyExists).
      if (error instanceof KubernetesApiError && error.status === 409) return (this.leading = false);
      throw error;
    }
  }

  private async keepRenewing(leadership: AbortController, retryMs: number): Promise<void> {
    let lastRenewal = Date.now();
    while (!leadership.signal.aborted) {
      await sleep(retryMs, leadership.signal);
      if (leadership.signal.aborted) break;
      const renewed = await this.tryAcquireOrRenew().catch(() => undefined);
      if (renewed) lastRenewal = Date.now();
      // Lost to another holder, or unable to renew for as long as the lease lasts.
      if (renewed === false || Date.now() - lastRenewal > this.options.leaseDurationSeconds * 1000) {
        this.leading = false;
        leadership.abort();
      }
    }
  }

  /** Gives the lease up at once (a clean shutdown), so a standby need not wait for it to expire. */
  private async release(): Promise<void> {
    const existing = await this.client.find<Lease>(this.ref());
    if (existing?.spec.holderIdentity !== this.options.identity) return;
    await this.client.replace(this.ref(), {
      ...existing,
      spec: { ...existing.spec, holderIdentity: '', renewTime: microTime(0) },
    });
  }

  private ref(): ResourceRef {
    return {
      group: 'coordination.k8s.io',
      version: 'v1',
      plural: 'leases',
      namespace: this.options.namespace,
      name: this.options.name,
    };
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
