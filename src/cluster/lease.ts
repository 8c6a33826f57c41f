// This node's lease, an adapter around etcd3's: granted on joining, then kept alive by our own loop on the clock
// (keepalivePlan in liveness.ts: etcd3's own loop can sit on a dead stream for a whole TTL), and given up when etcd
// says it expired.
import { EtcdLeaseInvalidError, type Etcd3, type Lease } from "etcd3";
import type { Logger } from "pino";
import type { Clock, Timer } from "../lib/clock.js";
import { deadlineIn } from "./etcd.js";
import { keepalivePlan } from "./liveness.js";

export interface LeaseHandlers {
  /** A keepalive went through: etcd answers. */
  alive(): void;
  failed(err: unknown): void;
  /** The lease expired while etcd could not be reached: etcd has dropped this node's keys. */
  lost(): void;
}

export class EtcdLease {
  private lease: Lease | undefined;
  private leaseId: string | undefined;
  private timer: Timer | undefined;
  private stopped = false;
  private readonly plan: ReturnType<typeof keepalivePlan>;
  losses = 0;

  constructor(
    private readonly client: Etcd3,
    private readonly ttlS: number,
    endpoints: number,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly on: LeaseHandlers,
  ) {
    this.plan = keepalivePlan(ttlS, endpoints);
  }

  get id(): string | undefined {
    return this.leaseId;
  }

  /** A new lease, not yet held (nothing keeps it alive until `hold`). */
  async grant(): Promise<{ lease: Lease; id: string }> {
    const lease = this.client.lease(this.ttlS, { autoKeepAlive: false });
    return { lease, id: await lease.grant() };
  }

  /** Makes a granted lease this node's (`startKeepalive` then keeps it alive). */
  hold({ lease, id }: { lease: Lease; id: string }): void {
    this.lease = lease;
    this.leaseId = id;
  }

  startKeepalive(): void {
    this.schedule(0);
  }

  /** No more keepalives (the lease stays until `release` or its revoke). */
  stop(): void {
    this.stopped = true;
    if (this.timer) this.clock.clearTimer(this.timer);
  }

  release(): void {
    this.lease?.release();
  }

  private schedule(delayMs: number): void {
    if (this.timer) this.clock.clearTimer(this.timer);
    if (this.stopped) return;
    this.timer = this.clock.setTimer(() => void this.keepalive(), delayMs);
  }

  private async keepalive(): Promise<void> {
    const lease = this.lease;
    if (lease === undefined || this.stopped) return;
    try {
      await this.keepaliveOnce(lease);
      this.on.alive();
      this.schedule(this.plan.everyMs);
    } catch (err) {
      if (this.stopped || lease !== this.lease) return;
      if (err instanceof EtcdLeaseInvalidError) {
        this.losses += 1;
        this.log.warn({ lease: this.leaseId }, "etcd lease lost: republishing this node's instances on a new lease");
        lease.release();
        this.lease = undefined;
        this.leaseId = undefined;
        this.on.lost();
        return;
      }
      this.on.failed(err);
      this.schedule(this.plan.retryMs);
    }
  }

  /** One keepalive, tried again at once on failure, up to plan.attempts times (see keepalivePlan). */
  private async keepaliveOnce(lease: Lease): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await lease.keepaliveOnce({ deadline: deadlineIn(this.plan.deadlineMs) });
        return;
      } catch (err) {
        if (err instanceof EtcdLeaseInvalidError || attempt >= this.plan.attempts || this.stopped) throw err;
      }
    }
  }
}
