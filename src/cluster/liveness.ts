// Whether this node is in touch with etcd: the state (starting, ok, degraded, unreachable, conflict), the last
// error, the retry backoff of the publish loop, the lease keepalive's timing and the watch echo probe. A pure state
// machine: every call takes `now`; the caller makes the etcd calls and keeps the timers.
import type { Logger } from "pino";

export type ClusterState = "starting" | "ok" | "degraded" | "unreachable" | "conflict";

/** A failure this long (longer than a normal leader failover, <= 2.6 s measured) makes the replica stale. */
export const DEGRADED_AFTER_MS = 3_000;
/**
 * The watch probe: every second a node rewrites its own node key and expects the event back through its watch.
 * A watch whose member froze (SIGSTOP, a hung disk) stays connected and silent: unary calls fail over to other
 * members, and gRPC's keepalive notices only after 5-7 s. Measured before the probe, with two endpoints and
 * the watch's member frozen: new registrations missing for 3-7 s while the status said ok.
 */
export const PROBE_EVERY_MS = 1_000;
/** A probe not back while nothing at all arrives for this long after the later of etcd's acknowledgement and the
 * watch's last event means a silent watch. */
export const PROBE_WAIT_MS = 1_000;

/** What the probe should do now: nothing yet, note that its echo came back, give up on a silent watch, or send one. */
export type ProbeStep = "wait" | "back" | "silent" | "send";

/** The publish loop's wait after a failed pass: 250 ms doubling to 5 s (the keepalive cuts it short). */
export function nextRetryDelay(prevMs: number): number {
  return Math.min(Math.max(250, prevMs * 2), 5_000);
}

/**
 * Our own keepalive: one call every TTL/3 (etcd3's own loop can sit on a dead stream for a TTL), 500 ms after a
 * failure. Each call is tried again at once on failure: etcd3 sends each attempt to a member picked at random and
 * never retries a keepalive itself, so with one member frozen a single attempt fails half the time or more, and
 * two failures in a row lost a 2 s lease (measured). Every attempt gets its share of a third of the TTL.
 */
export function keepalivePlan(leaseTtlS: number, endpoints: number): { everyMs: number; retryMs: number; attempts: number; deadlineMs: number } {
  const everyMs = (leaseTtlS * 1000) / 3;
  const attempts = Math.min(endpoints + 1, 4);
  return { everyMs, retryMs: Math.min(500, everyMs), attempts, deadlineMs: Math.max(200, Math.min(1_000, everyMs / attempts)) };
}

export interface LivenessContext {
  nodeId: string;
  pendingPublish: number;
  revision: number;
}

export class Liveness {
  private lastContactAt = 0;
  /** The last etcd failure, cleared once everything works again. */
  private error: string | undefined;
  private readonly loggedErrors = new Set<string>();
  private failingSince: number | undefined;
  /** The last pass found this node's id held by another live node. */
  private idInUse = false;
  private current: ClusterState = "starting";
  /** The publish loop's current backoff; 0 while its passes go through. */
  retryDelayMs = 0;
  /** The outstanding watch probe: the revision of this node's own write, and when etcd acknowledged it. */
  private probe: { revision: number; at: number } | undefined;
  private lastProbeAt = 0;
  /** Since when the watch has been known silent; cleared when a probe comes through again. */
  private watchSilentSince: number | undefined;
  watchStalls = 0;

  constructor(
    private readonly leaseTtlS: number,
    /** Before any contact with etcd, the replica has been stale since this node started. */
    private readonly startedAt: number,
    private readonly log: Logger,
  ) {}

  get lastError(): string | undefined {
    return this.error;
  }

  /**
   * etcd answered. `caughtUp`: nothing is pending, the lease is held and the replica synced; only then, with the
   * loop not backing off and the watch not silent, are the failure and its error forgotten.
   */
  contact(now: number, caughtUp: boolean): void {
    this.lastContactAt = now;
    if (this.retryDelayMs === 0 && caughtUp && this.watchSilentSince === undefined) {
      this.failingSince = undefined;
      this.error = undefined;
      this.loggedErrors.clear();
    }
  }

  /** An etcd call failed. Each distinct error is logged once per outage (retries every few hundred ms would flood the log). */
  failure(now: number, msg: string, err: unknown): void {
    this.failingSince ??= now;
    const error = (err as Error)?.message ?? String(err);
    const key = `${msg}: ${error}`;
    if (!this.loggedErrors.has(key) && this.loggedErrors.size < 20) this.log.warn({ error }, msg);
    else this.log.debug({ error }, msg);
    this.loggedErrors.add(key);
    this.error = error;
  }

  /** A pass of the publish loop went through. */
  passed(): void {
    this.retryDelayMs = 0;
    this.idInUse = false;
  }

  /** A pass failed; `idInUse`: etcd answered, and said another live node has this node's id. Returns the wait before the next. */
  passFailed(now: number, err: unknown, idInUse: boolean): number {
    // etcd answered, and said no: a setting to fix, not an outage (state "conflict" until the id is free).
    this.idInUse = idInUse;
    this.failure(now, idInUse ? "cannot join the cluster: this node id is in use by a live node" : "etcd call failed", err);
    this.retryDelayMs = nextRetryDelay(this.retryDelayMs);
    return this.retryDelayMs;
  }

  /**
   * ok, or stale: degraded (something has failed for longer than a leader failover takes), unreachable (no
   * successful call for half a lease TTL, or never), or conflict (another live node has this node's id).
   */
  compute(now: number): ClusterState {
    if (this.idInUse) return "conflict";
    const failingFor = this.failingSince === undefined ? 0 : now - this.failingSince;
    if (this.lastContactAt === 0) return failingFor > 0 ? "unreachable" : "starting";
    if (now - this.lastContactAt > (this.leaseTtlS * 1000) / 2 && failingFor > 0) return "unreachable";
    if (failingFor > DEGRADED_AFTER_MS || this.watchSilentSince !== undefined) return "degraded";
    return "ok";
  }

  /** Moves to the state of `now`, logging the transition once. */
  update(now: number, ctx: LivenessContext): ClusterState {
    const next = this.compute(now);
    if (next === this.current) return next;
    const prev = this.current;
    this.current = next;
    if (next === "ok") this.log.info({ from: prev, revision: ctx.revision }, "cluster replica in sync with etcd");
    else if (prev === "unreachable" && next === "degraded") this.log.info({ pendingPublish: ctx.pendingPublish }, "etcd answers again: catching up");
    else if (next === "conflict") this.log.error({ nodeId: ctx.nodeId, error: this.error }, "not joining the cluster: give every node its own --node-id");
    else if (next !== "starting") this.log.warn({ from: prev, state: next, pendingPublish: ctx.pendingPublish }, "cluster replica stale: etcd not reachable; answering from the last replica");
    return next;
  }

  /** How long the replica has been stale, ms; 0 while it is in sync. */
  staleForMs(now: number): number {
    if (this.compute(now) === "ok") return 0;
    return Math.max(1, now - (this.failingSince ?? this.watchSilentSince ?? (this.lastContactAt || this.startedAt)));
  }

  lastKeepaliveAgoMs(now: number): number | null {
    return this.lastContactAt === 0 ? null : now - this.lastContactAt;
  }

  // ---- the watch echo probe

  /** `seen`: the highest revision of this node's key the watch delivered; `lastEventAt`: its last delivery. */
  probeStep(now: number, seen: number, lastEventAt: number): ProbeStep {
    const probe = this.probe;
    if (probe !== undefined && seen >= probe.revision) return "back";
    // Nothing at all for a while since etcd acknowledged the probe (a busy watch that is merely behind still
    // delivers; one that brought a last few events and then stopped is as silent as one that brought none).
    if (probe !== undefined) return now - Math.max(probe.at, lastEventAt) > PROBE_WAIT_MS ? "silent" : "wait";
    return now - this.lastProbeAt < PROBE_EVERY_MS ? "wait" : "send";
  }

  probeSent(now: number): void {
    this.lastProbeAt = now;
  }

  /** etcd acknowledged the probe's write at `revision`. */
  probeAcked(revision: number, now: number): void {
    this.probe = { revision, at: now };
  }

  /** A new watch: it is proven by the next probe. */
  probeReset(): void {
    this.probe = undefined;
  }

  /** The echo came back; true if the watch had been silent (it delivers again). */
  probeBack(): boolean {
    this.probe = undefined;
    if (this.watchSilentSince === undefined) return false;
    this.watchSilentSince = undefined;
    return true;
  }

  /** The probe's echo never came: the watch cannot be trusted. Returns when the probe was acknowledged, and whether this is news. */
  probeLost(now: number): { probedAt: number; first: boolean } {
    const probedAt = this.probe?.at ?? now;
    this.probe = undefined;
    this.watchStalls += 1;
    const first = this.watchSilentSince === undefined;
    this.watchSilentSince ??= probedAt;
    this.error = `the etcd watch delivered nothing for ${now - probedAt} ms after a write etcd acknowledged`;
    return { probedAt, first };
  }
}
