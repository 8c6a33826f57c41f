// Cluster mode on etcd (docs/cluster-design.md). This node publishes its own instances under its own lease and
// keeps a replica of every other node's: one range read, then a watch from the next revision. DNS and queries
// read the registry, which holds both, and never wait on etcd. The local durable store stays the source of truth
// for this node's instances: anything etcd loses is republished from it.
// This file is the adapter: it runs the loop, makes the etcd calls and keeps the timers (on the injected Clock);
// what to do is decided by the publisher, the replica and liveness.
import type { Etcd3, IKeyValue, IPutResponse } from "etcd3";
import type { Logger } from "pino";
import type { Owner, Registry } from "../registry/index.js";
import { systemClock, type Clock, type Timer } from "../lib/clock.js";
import { UnavailableError } from "../lib/errors.js";
import { VERSION } from "../lib/version.js";
import { connectEtcd, rangeAll, type EtcdConnection } from "./etcd.js";
import { KeyLayout, parseNode, type NodeRecord } from "./keys.js";
import { EtcdLease } from "./lease.js";
import { Liveness, type ClusterState } from "./liveness.js";
import { PassLoop, Timers } from "./loop.js";
import { SelfPreservation, type SelfPreservationSettings, type SelfPreservationStatus } from "./preservation.js";
import { Publisher } from "./publisher.js";
import { Replica, type RoutingSink } from "./replica.js";
import { EtcdWatch } from "./watch.js";

export type { ClusterState } from "./liveness.js";

export interface ClusterOptions extends EtcdConnection {
  registry: Registry;
  nodeId: string;
  /** Key prefix of this cluster, e.g. /homelab-discovery/homelab (no trailing slash). */
  prefix: string;
  leaseTtlS: number;
  /** This node's API, where other nodes forward writes for its instances. */
  apiUrl: string;
  /** This node's DNS address (host:port), for operators reading the node list. */
  dns: string;
  logger: Logger;
  selfPreservation?: Partial<SelfPreservationSettings>;
  clock?: Clock;
  /** The routing policies, shared through etcd (`<prefix>/routing/<name>`). */
  routing?: RoutingSink;
}

export interface ClusterStatus {
  state: ClusterState;
  nodeId: string;
  prefix: string;
  nodes: { nodeId: string; apiUrl: string; dns: string; version: string; state: "up" | "leaving" }[];
  replica: { stale: boolean; revision: number; remoteInstances: number; staleForMs: number; lastSyncAt: string | null };
  lease: { id: string | null; ttl: number; lastKeepaliveAgoMs: number | null };
  pendingPublish: number;
  /** The last etcd failure while the state is not ok. */
  lastError: string | null;
  conflicts: string[];
  selfPreservation: SelfPreservationStatus;
  counters: { resyncs: number; published: number; publishFailures: number; leaseLosses: number; watchErrors: number; watchStalls: number };
}

const CHECK_EVERY_MS = 5 * 60_000;
/** How often the state is brought up to date and the watch probe stepped. */
const TICK_MS = 250;

export class EtcdCluster {
  private readonly client: Etcd3;
  private readonly log: Logger;
  private readonly registry: Registry;
  private readonly clock: Clock;
  private readonly layout: KeyLayout;
  private readonly startedAt: string;
  private readonly publisher: Publisher;
  private readonly replica: Replica;
  private readonly live: Liveness;
  private readonly watch: EtcdWatch;
  private readonly preservation: SelfPreservation;

  private readonly lease: EtcdLease;
  private needResync = true;
  /** Compare what etcd holds under this node's name with the local store (every 5 minutes, and on a sync). */
  private needCheck = false;
  private readonly loop: PassLoop;
  private readonly timers: Timers;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  private probing = false;

  constructor(private readonly opts: ClusterOptions) {
    this.client = connectEtcd(opts);
    this.log = opts.logger;
    this.registry = opts.registry;
    this.clock = opts.clock ?? systemClock;
    this.timers = new Timers(this.clock);
    this.layout = new KeyLayout(opts.prefix, opts.nodeId);
    const startedAtMs = this.clock.now();
    this.startedAt = new Date(startedAtMs).toISOString();
    this.preservation = new SelfPreservation({ minNodes: 2, share: 0.5, windowMs: opts.leaseTtlS * 1000 + 5_000, holdMs: 15 * 60_000, ...opts.selfPreservation });
    this.publisher = new Publisher(this.layout, this.registry, this.log);
    this.replica = new Replica(this.layout, this.registry, this.preservation, this.log, opts.leaseTtlS, opts.routing);
    this.live = new Liveness(opts.leaseTtlS, startedAtMs, this.log);
    this.loop = new PassLoop(this.clock, () => this.pass(), (err) => {
      const delayMs = this.live.passFailed(this.clock.now(), err, err instanceof NodeIdInUseError);
      this.updateState();
      return delayMs; // the lease keepalive (every 500 ms while failing) cuts this short once etcd answers again
    });
    this.lease = new EtcdLease(this.client, opts.leaseTtlS, opts.endpoints.length, this.clock, this.log, {
      alive: () => {
        this.contact();
        this.loop.wake(); // etcd answers again: retry what failed now rather than after the backoff
      },
      failed: (err) => this.failure("etcd lease keepalive failed", err),
      lost: () => this.resyncSoon(),
    });
    this.watch = new EtcdWatch(opts, this.log, {
      data: (events) => {
        this.contact();
        const { released } = this.replica.applyEvents(events, this.clock.now());
        // A held node came back: its republish replaces what was held. A resync a little later drops what it no
        // longer has (its keys expired, so no delete event will come for them).
        for (const _ of released) this.timers.after(2_000, () => this.resyncSoon());
      },
      // How etcd3 reports a watch below the compacted revision (and any other cancel): read everything again.
      error: () => this.resyncSoon(),
      disconnected: (err) => this.failure("etcd watch disconnected", err),
      connected: () => this.contact(),
    });
  }

  /**
   * Starts publishing and replicating. Waits up to `waitMs` for the first publish and sync; if etcd cannot be
   * reached by then, the node serves its own instances and keeps trying in the background.
   */
  async start(waitMs = 5_000): Promise<void> {
    this.unsubscribe = this.publisher.attach(this.registry, {
      // Not in this tick: sending a txn costs ~0.7 ms of grpc work, which would delay the write's own commit
      // and answer (measured: a registration's in-memory path went from 0.05 to 0.72 ms).
      soon: () => this.loop.kickSoon(),
      now: () => this.loop.kick(),
    });
    this.timers.every(TICK_MS, () => {
      this.updateState();
      void this.probeWatch();
    });
    this.timers.every(CHECK_EVERY_MS, () => {
      this.needCheck = true;
      this.loop.kick();
    });
    this.loop.kick();
    const ready = await Promise.race([this.loop.current!.then(() => this.lease.id !== undefined && !this.needResync), new Promise<false>((r) => this.timers.after(waitMs, () => r(false)))]);
    this.updateState();
    const where = { prefix: this.opts.prefix, endpoints: this.opts.endpoints };
    if (ready) this.log.info({ ...where, nodes: this.replica.nodes.size, remoteInstances: this.registry.remoteOwners().size, revision: this.replica.revision }, "cluster joined");
    else this.log.warn({ ...where, error: this.live.lastError }, "cluster not joined yet: serving this node's instances, retrying in the background");
  }

  // ---- the loop: lease, resync, publish

  private resyncSoon(): void {
    this.needResync = true;
    this.loop.kick();
  }

  private async pass(): Promise<void> {
    if (this.lease.id === undefined) await this.acquireLease();
    if (this.needResync) await this.resync();
    if (this.needCheck) await this.checkPublished();
    await this.flush();
    this.live.passed();
    this.contact();
  }

  private async flush(): Promise<void> {
    const { recheck, reread } = await this.publisher.flush(this.client.kv, () => this.lease.id);
    if (recheck) this.needCheck = true;
    if (reread) this.needResync = true;
    if (recheck || reread) this.loop.kick();
  }

  /**
   * Anti-entropy: a new lease, the node key, then every local instance put on it (with its claim) and every key
   * etcd still holds under this node's name that the local store does not have deleted. Older leases seen on
   * this node's keys (a previous run) are revoked last, so leftovers vanish in one revision.
   */
  private async acquireLease(): Promise<void> {
    await this.checkNodeIdFree();
    const granted = await this.lease.grant();
    const { id } = granted;
    await this.putNodeKey(id, "up");
    const mine = await this.rangeAll(this.layout.mine());
    const oldLeases = new Set<string>();
    const published = new Set<string>();
    for (const kv of mine.kvs) {
      const key = this.layout.parse(kv.key);
      if (key.kind !== "service") continue;
      published.add(key.id);
      if (kv.lease !== "0" && kv.lease !== id) oldLeases.add(kv.lease);
    }
    const removed = this.publisher.republishAll(published);
    this.lease.hold(granted);
    await this.flush();
    for (const old of oldLeases) {
      await this.client.leaseClient.leaseRevoke({ ID: old }).catch(() => undefined); // already expired: fine
    }
    this.lease.startKeepalive();
    this.log.info({ lease: id, ttl: this.opts.leaseTtlS, published: this.registry.localSize, removed }, "published this node's instances");
  }

  /**
   * Two nodes with one node id would overwrite each other's instances. A live node key with another API URL (and
   * not from this process) is taken as that: this node waits (the key may be a crashed run's, gone within a TTL)
   * and says why. The same URL is this node restarted: it takes over, and its old lease is revoked below.
   */
  private async checkNodeIdFree(): Promise<void> {
    const res = await this.client.kv.range({ key: this.layout.node() });
    const kv = res.kvs[0];
    const record = kv === undefined ? undefined : parseNode(kv, this.log);
    if (record !== undefined && record.apiUrl !== this.opts.apiUrl && record.startedAt !== this.startedAt) {
      throw new NodeIdInUseError(
        `node id ${this.opts.nodeId} is in use by a live node at ${record.apiUrl} (started ${record.startedAt}): give every node its own --node-id; waiting for that key's lease to expire`,
      );
    }
  }

  private async checkPublished(): Promise<void> {
    const mine = await this.rangeAll(this.layout.mine());
    const fixed = this.publisher.check(mine.kvs, this.lease.id);
    this.needCheck = false;
    if (fixed > 0) this.log.warn({ fixed }, "etcd did not hold what this node published: publishing it again");
  }

  private putNodeKey(leaseId: string, state: "up" | "leaving"): Promise<IPutResponse> {
    const { nodeId, apiUrl, dns } = this.opts;
    const record: NodeRecord = { v: 1, nodeId, apiUrl, dns, version: VERSION, startedAt: this.startedAt, state };
    return this.client.kv.put({ key: this.layout.node(), value: Buffer.from(JSON.stringify(record)), lease: leaseId });
  }

  /** Reads the whole cluster at one revision and makes the replica match it, then watches from the next revision. */
  private async resync(): Promise<void> {
    this.watch.drop();
    const replicated = this.layout.replicated();
    const { kvs, revision } = await this.rangeAll(replicated.start.toString(), replicated.end);
    this.replica.resync(kvs, revision, this.clock.now());
    this.needResync = false;
    this.live.probeReset(); // the new watch is proven by the next probe
    await this.watch.start(replicated, revision + 1);
  }

  private async rangeAll(prefix: string, end?: Buffer): Promise<{ kvs: IKeyValue[]; revision: number }> {
    const res = await rangeAll(this.client, prefix, end);
    this.contact();
    return res;
  }

  // ---- lease keepalive, the watch probe, and state

  /** Checks the outstanding probe, or sends the next one. Only while everything else works: failures of etcd itself are the keepalive's and the loop's to report. */
  private async probeWatch(): Promise<void> {
    const leaseId = this.lease.id;
    if (this.stopped || this.probing || leaseId === undefined || !this.watch.running || this.needResync || this.live.retryDelayMs > 0) return;
    const now = this.clock.now();
    const step = this.live.probeStep(now, this.replica.probeSeen, this.replica.lastEventAt);
    if (step === "back" && this.live.probeBack()) {
      this.log.info({ revision: this.replica.revision }, "etcd watch delivers again");
      this.contact();
    } else if (step === "silent") {
      // The watch cannot be trusted: the replica is stale, and the watch is rebuilt on the next endpoint.
      const { probedAt, first } = this.live.probeLost(now);
      if (first) this.log.warn({ waitedMs: now - probedAt, revision: this.replica.revision, endpoint: this.watch.endpoint }, "etcd watch silent (its member may be frozen): replica stale, watching through the next endpoint");
      this.watch.moveOnNextStart();
      this.updateState();
      this.resyncSoon();
    } else if (step === "send") {
      this.live.probeSent(now);
      this.probing = true;
      try {
        const res = await this.putNodeKey(leaseId, "up");
        if (leaseId === this.lease.id) this.live.probeAcked(Number(res.header.revision), this.clock.now());
      } catch {
        // etcd failing: the keepalive and the loop say so; the next probe waits until they succeed
      } finally {
        this.probing = false;
      }
    }
  }

  private contact(): void {
    this.live.contact(this.clock.now(), this.publisher.pending.size === 0 && this.lease.id !== undefined && !this.needResync);
    this.updateState();
  }

  private failure(msg: string, err: unknown): void {
    this.live.failure(this.clock.now(), msg, err);
    this.updateState();
  }

  private updateState(): void {
    const now = this.clock.now();
    this.replica.holdOverdue(now);
    this.live.update(now, { nodeId: this.opts.nodeId, pendingPublish: this.publisher.pending.size, revision: this.replica.revision });
  }

  // ---- what the API sees

  /** The API URL of the node that owns an instance, when that is another node; undefined when it is this one (or nobody). */
  ownerOf(id: string): Owner | undefined {
    const owner = this.registry.remoteOwners().get(id);
    if (owner === undefined) return undefined;
    return { nodeId: owner, apiUrl: this.replica.nodes.get(owner)?.apiUrl };
  }

  /**
   * Writes routing policies for the whole cluster in one transaction (undefined deletes one): every node's watch
   * applies them. Throws when etcd does not take them, so a policy is set nowhere rather than on this node only.
   */
  async publishRouting(changes: readonly (readonly [string, { split: readonly { version: string; weight: number }[]; updatedAt: string } | undefined])[]): Promise<void> {
    const ops = changes.map(([name, policy]) => {
      const key = this.layout.routing(name);
      return policy === undefined
        ? { request_delete_range: { key } }
        : { request_put: { key, value: Buffer.from(JSON.stringify({ v: 1, split: policy.split, updatedAt: policy.updatedAt, nodeId: this.opts.nodeId })) } };
    });
    try {
      // etcd's --max-txn-ops (128) bounds one transaction: a restore of more policies goes in several.
      for (let i = 0; i < ops.length; i += 128) {
        const res = await this.client.kv.txn({ compare: [], success: ops.slice(i, i + 128) });
        for (const [name] of changes.slice(i, i + 128)) this.replica.wroteRouting(name, Number(res.header.revision));
      }
      this.contact();
    } catch (err) {
      const names = changes.map(([name]) => name);
      throw new UnavailableError(`the cluster's etcd did not take the routing policy of ${names.length === 1 ? names[0] : `${names.length} services`}, so no node has it: ${(err as Error).message}`);
    }
  }

  /** How long the replica has been stale, ms; 0 while it is in sync. Cheap enough for every query. */
  staleForMs(now = this.clock.now()): number {
    return this.live.staleForMs(now);
  }

  status(): ClusterStatus {
    const now = this.clock.now();
    const state = this.live.compute(now);
    const self = { nodeId: this.opts.nodeId, apiUrl: this.opts.apiUrl, dns: this.opts.dns, version: VERSION, state: "up" as const };
    const { lastSyncAt } = this.replica;
    return {
      state,
      nodeId: this.opts.nodeId,
      prefix: this.opts.prefix,
      nodes: [self, ...[...this.replica.nodes.values()].filter((n) => n.nodeId !== this.opts.nodeId)]
        .map(({ nodeId, apiUrl, dns, version, state: st }) => ({ nodeId, apiUrl, dns, version, state: st }))
        .sort((a, b) => a.nodeId.localeCompare(b.nodeId)),
      replica: {
        stale: state !== "ok",
        revision: this.replica.revision,
        remoteInstances: this.registry.remoteOwners().size,
        staleForMs: this.live.staleForMs(now),
        lastSyncAt: lastSyncAt === undefined ? null : new Date(lastSyncAt).toISOString(),
      },
      lease: { id: this.lease.id ?? null, ttl: this.opts.leaseTtlS, lastKeepaliveAgoMs: this.live.lastKeepaliveAgoMs(now) },
      pendingPublish: this.publisher.pending.size,
      lastError: this.live.lastError ?? null,
      conflicts: this.publisher.conflicts(),
      selfPreservation: this.preservation.status(),
      counters: { resyncs: this.replica.resyncs, ...this.publisher.counters, leaseLosses: this.lease.losses, watchErrors: this.watch.errors, watchStalls: this.live.watchStalls },
    };
  }

  /**
   * Reads the whole cluster again, checks what etcd holds for this node, and waits for this node's pending
   * writes. `force` also ends self-preservation, evicting the held nodes' instances.
   */
  async sync(force = false): Promise<ClusterStatus> {
    if (force) this.replica.endPreservation("forced sync");
    this.needResync = true;
    this.needCheck = true;
    // A pass of the loop that starts after this, now (a loop waiting out its backoff is woken). While etcd fails
    // the loop retries for as long as it takes; the caller gets the error of the first failed pass instead. A
    // pass may leave work for the next (an id given up to another node: the replica is read again).
    for (let passes = 0; passes < 3; passes++) {
      if (!(await this.loop.nextPass())) break;
      if (!this.needResync && !this.needCheck && this.publisher.pending.size === 0) return this.status();
    }
    throw new Error(`etcd not reachable: the replica stays as it was (state ${this.live.compute(this.clock.now())}, ${this.publisher.pending.size} writes pending)`);
  }

  /** Graceful leave: say so in the node key, then revoke the lease so every node drops this one's instances at once. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe?.();
    this.lease.stop();
    this.timers.stop();
    this.loop.stop();
    // Bounded: with etcd away, a call can take its retries (~3 s), and SIGTERM must end within 5 s. The deadline
    // holds the process: the HTTP and DNS servers are closed by now, and the store is closed after this.
    const leave = async () => {
      await this.loop.current?.catch(() => undefined);
      const leaseId = this.lease.id;
      if (leaseId === undefined) return;
      await this.putNodeKey(leaseId, "leaving");
      await this.client.leaseClient.leaseRevoke({ ID: leaseId });
    };
    let timer: Timer | undefined;
    try {
      await Promise.race([leave(), new Promise((_, reject) => (timer = this.timers.after(2_000, () => reject(new Error("etcd did not answer within 2 s")), { holdsProcess: true })))]);
    } catch (err) {
      this.log.warn({ error: (err as Error).message }, "could not leave the cluster cleanly: this node's instances go when its lease expires");
    } finally {
      this.timers.cancel(timer);
    }
    this.lease.release();
    this.watch.close();
    this.client.close();
  }
}

/** Another live node already has this node's id: joining would publish over its instances. */
class NodeIdInUseError extends Error {}
