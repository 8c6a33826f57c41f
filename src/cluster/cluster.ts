// Cluster mode on etcd (docs/cluster-design.md). This node publishes its own instances under its own lease and
// keeps a replica of every other node's: one range read, then a watch from the next revision. DNS and queries
// read the registry, which holds both, and never wait on etcd. The local durable store stays the source of truth
// for this node's instances: anything etcd loses is republished from it.
import type { Etcd3, IKeyValue, IPutResponse, IRequestOp, Lease, Watcher } from "etcd3";
import { EtcdLeaseInvalidError } from "etcd3";
import type { Logger } from "pino";
import { z } from "zod";
import type { Owner, Registry, RegistryChange, RemoteUpdate } from "../registry/index.js";
import { serviceEntrySchema, type ServiceEntry } from "../model/index.js";
import { parseJsonOrUndefined } from "../lib/json.js";
import { VERSION } from "../lib/version.js";
import { connectEtcd, type EtcdConnection } from "./etcd.js";
import { SelfPreservation, type SelfPreservationSettings, type SelfPreservationStatus } from "./preservation.js";

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
}

export type ClusterState = "starting" | "ok" | "degraded" | "unreachable" | "conflict";

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

const nodeRecordSchema = z.object({
  v: z.literal(1),
  nodeId: z.string(),
  apiUrl: z.string(),
  dns: z.string(),
  version: z.string(),
  startedAt: z.string(),
  state: z.enum(["up", "leaving"]),
});
type NodeRecord = z.infer<typeof nodeRecordSchema>;

const serviceRecordSchema = z.object({ v: z.literal(1), entry: serviceEntrySchema });

/** How many of the latest ids given up to another node's claim the status lists. */
const MAX_CONFLICTS_SHOWN = 20;
/** etcd's --max-txn-ops is 128 and every instance takes two ops (its key and its id claim). */
const IDS_PER_TXN = 64;
const PAGE = 1_000;
/** A failure this long (longer than a normal leader failover, <= 2.6 s measured) makes the replica stale. */
const DEGRADED_AFTER_MS = 3_000;
const CHECK_EVERY_MS = 5 * 60_000;
/**
 * The watch probe: every second a node rewrites its own node key and expects the event back through its watch.
 * A watch whose member froze (SIGSTOP, a hung disk) stays connected and silent: unary calls fail over to other
 * members, and gRPC's keepalive notices only after 5-7 s. Measured before the probe, with two endpoints and
 * the watch's member frozen: new registrations missing for 3-7 s while the status said ok.
 */
const PROBE_EVERY_MS = 1_000;
/** A probe not back while nothing at all arrives for this long after the later of etcd's acknowledgement and the
 * watch's last event means a silent watch. */
const PROBE_WAIT_MS = 1_000;

type Key =
  | { kind: "node"; nodeId: string }
  | { kind: "service"; owner: string; id: string }
  | { kind: "claim"; id: string }
  | { kind: "other" };

export class EtcdCluster {
  private readonly client: Etcd3;
  /**
   * The watch runs on one member at a time, through a client of its own: a silent watch (see PROBE_EVERY_MS)
   * moves to the next endpoint. etcd3 keeps one stream for all the watchers of a client and picks its member at
   * random, so a new watcher on the shared client would land on the same frozen stream.
   */
  private watchClient: Etcd3 | undefined;
  private watchEndpoint = 0;
  private moveWatch = false;
  private readonly log: Logger;
  private readonly registry: Registry;
  private readonly self: Buffer;
  private readonly startedAt = new Date().toISOString();
  /** Before any contact with etcd, the replica has been stale since this node started. */
  private readonly startedAtMs = Date.parse(this.startedAt);

  private lease: Lease | undefined;
  private leaseId: string | undefined;
  private watcher: Watcher | undefined;
  /** The highest revision the replica has applied. */
  private revision = 0;
  private needResync = true;
  /** Compare what etcd holds under this node's name with the local store (every 5 minutes, and on a sync). */
  private needCheck = false;
  private checkTimer: NodeJS.Timeout | undefined;
  private readonly nodes = new Map<string, NodeRecord>();
  /** Mod revision of each remote instance's key, to skip unchanged ones on a resync. */
  private readonly remoteRevs = new Map<string, number>();
  /** This node's instances still to be written to etcd (undefined: to be deleted), latest wins. */
  private readonly pending = new Map<string, ServiceEntry | undefined>();
  /** Writes published when planned, until they commit: their commit-time change needs no second publish. */
  private readonly early = new Map<string, ServiceEntry | undefined>();
  /** Ids whose claim key this node holds. */
  private claimed = new Set<string>();
  /** The latest ids whose copy this node dropped because another node had published them (for the status). */
  private readonly conflicts = new Set<string>();
  /** Told how the loop's next pass went (true: through; false: etcd failed it): what sync() waits for. */
  private passWaiters: ((ok: boolean) => void)[] = [];

  private loopRunning: Promise<void> | undefined;
  private again = false;
  private retryDelayMs = 0;
  private wake: (() => void) | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private stateTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private stopped = false;

  private lastContactAt = 0;
  /** The last etcd failure, cleared once everything works again. */
  private lastError: string | undefined;
  private readonly loggedErrors = new Set<string>();
  private failingSince: number | undefined;
  private lastSyncAt: number | undefined;
  private state: ClusterState = "starting";
  /** The last pass found this node's id held by another live node. */
  private idInUse = false;
  private readonly counters = { resyncs: 0, published: 0, publishFailures: 0, leaseLosses: 0, watchErrors: 0, watchStalls: 0 };
  /** The outstanding watch probe: the revision of this node's own write, and when etcd acknowledged it. */
  private probe: { revision: number; at: number } | undefined;
  private probing = false;
  private lastProbeAt = 0;
  /** The highest revision of this node's own node key that came through the watch. */
  private probeSeen = 0;
  /** When the watch last delivered anything. */
  private lastEventAt = 0;
  /** Since when the watch has been known silent; cleared when a probe comes through again. */
  private watchSilentSince: number | undefined;

  private readonly preservation: SelfPreservation;

  constructor(private readonly opts: ClusterOptions) {
    this.client = connectEtcd(opts);
    this.log = opts.logger;
    this.registry = opts.registry;
    this.self = Buffer.from(opts.nodeId);
    this.preservation = new SelfPreservation({ minNodes: 2, share: 0.5, windowMs: opts.leaseTtlS * 1000 + 5_000, holdMs: 15 * 60_000, ...opts.selfPreservation });
  }

  /**
   * Starts publishing and replicating. Waits up to `waitMs` for the first publish and sync; if etcd cannot be
   * reached by then, the node serves its own instances and keeps trying in the background.
   */
  async start(waitMs = 5_000): Promise<void> {
    const offPlanned = this.registry.onPlanned((view, outcome) => this.publishEarly(view, outcome));
    const offChange = this.registry.onChange((changes) => this.follow(changes));
    this.unsubscribe = () => {
      offPlanned();
      offChange();
    };
    this.stateTimer = setInterval(() => {
      this.updateState();
      void this.probeWatch();
    }, 250);
    this.stateTimer.unref();
    this.checkTimer = setInterval(() => {
      this.needCheck = true;
      this.kick();
    }, CHECK_EVERY_MS);
    this.checkTimer.unref();
    this.kick();
    const ready = await Promise.race([
      this.loopRunning!.then(() => this.leaseId !== undefined && !this.needResync),
      new Promise<false>((r) => setTimeout(() => r(false), waitMs).unref()),
    ]);
    this.updateState();
    if (ready) {
      this.log.info({ prefix: this.opts.prefix, endpoints: this.opts.endpoints, nodes: this.nodes.size, remoteInstances: this.registry.remoteOwners().size, revision: this.revision }, "cluster joined");
    } else {
      this.log.warn({ prefix: this.opts.prefix, endpoints: this.opts.endpoints, error: this.lastError }, "cluster not joined yet: serving this node's instances, retrying in the background");
    }
  }

  /**
   * A write is published as soon as it is planned, while the local store syncs it: propagation costs the slower
   * of the two instead of their sum. If the local write then fails, what the registry really holds is published
   * again (other nodes may have seen the failed write for that long; a crash in between is undone by the
   * anti-entropy of the next start, which deletes what the local store does not have).
   */
  private publishEarly(view: ReadonlyMap<string, ServiceEntry | undefined>, outcome: Promise<unknown>): void {
    for (const [id, entry] of view) {
      this.pending.set(id, entry);
      this.early.set(id, entry);
    }
    // Not in this tick: sending a txn costs ~0.7 ms of grpc work, which would delay the write's own commit
    // and answer (measured: a registration's in-memory path went from 0.05 to 0.72 ms).
    this.kickSoon();
    const forget = () => {
      for (const [id, entry] of view) if (this.early.get(id) === entry) this.early.delete(id);
    };
    outcome.then(forget, () => {
      forget();
      for (const id of view.keys()) this.pending.set(id, this.registry.ownerOf(id) === this.opts.nodeId ? this.registry.get(id) : undefined);
      this.kick();
    });
  }

  /** Publishes what changed on this node (not the replica's changes, not checks that changed nothing). */
  private follow(changes: readonly RegistryChange[]): void {
    let any = false;
    for (const change of changes) {
      if (change.cause === "checked" || change.cause === "replica") continue;
      if (this.early.has(change.id) && this.early.get(change.id) === change.after) continue; // published when planned
      this.pending.set(change.id, change.after);
      any = true;
    }
    if (any) this.kickSoon();
  }

  // ---------------------------------------------------------------- the loop: lease, resync, publish

  private kickScheduled = false;
  private kickSoon(): void {
    if (this.kickScheduled) return;
    this.kickScheduled = true;
    setImmediate(() => {
      this.kickScheduled = false;
      this.kick();
    });
  }

  private kick(): void {
    if (this.stopped) return;
    this.again = true; // a loop waiting out a backoff picks it up then (or when the keepalive wakes it)
    this.loopRunning ??= this.loop().finally(() => (this.loopRunning = undefined));
  }

  private async loop(): Promise<void> {
    while (this.again && !this.stopped) {
      this.again = false;
      const told = this.passWaiters;
      this.passWaiters = [];
      try {
        if (this.leaseId === undefined) await this.acquireLease();
        if (this.needResync) await this.resync();
        if (this.needCheck) await this.checkPublished();
        await this.flush();
        this.retryDelayMs = 0;
        this.idInUse = false;
        this.contact();
        for (const tell of told) tell(true);
      } catch (err) {
        for (const tell of told) tell(false);
        if (this.stopped) return;
        // etcd answered, and said no: a setting to fix, not an outage (state "conflict" until the id is free).
        this.idInUse = err instanceof NodeIdInUseError;
        this.failure(this.idInUse ? "cannot join the cluster: this node id is in use by a live node" : "etcd call failed", err);
        // The lease keepalive (every 500 ms while failing) cuts this short once etcd answers again.
        this.retryDelayMs = Math.min(Math.max(250, this.retryDelayMs * 2), 5_000);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.retryDelayMs);
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wake = undefined;
        this.again = true;
      }
    }
  }

  /**
   * Anti-entropy: a new lease, the node key, then every local instance put on it (with its claim) and every key
   * etcd still holds under this node's name that the local store does not have deleted. Older leases seen on
   * this node's keys (a previous run) are revoked last, so leftovers vanish in one revision.
   */
  private async acquireLease(): Promise<void> {
    await this.checkNodeIdFree();
    const lease = this.client.lease(this.opts.leaseTtlS, { autoKeepAlive: false });
    const id = await lease.grant();
    await this.putNodeKey(id, "up");
    const mine = await this.rangeAll(`${this.opts.prefix}/services/${this.opts.nodeId}/`);
    const oldLeases = new Set<string>();
    const published = new Set<string>();
    for (const kv of mine.kvs) {
      const key = this.parseKey(kv.key);
      if (key.kind !== "service") continue;
      published.add(key.id);
      if (kv.lease !== "0" && kv.lease !== id) oldLeases.add(kv.lease);
    }
    this.claimed = published;
    for (const entry of this.registry.localValues()) this.pending.set(entry.id, entry);
    for (const pubId of published) if (this.registry.ownerOf(pubId) !== this.opts.nodeId) this.pending.set(pubId, undefined);
    this.lease = lease;
    this.leaseId = id;
    await this.flush();
    for (const old of oldLeases) {
      await this.client.leaseClient.leaseRevoke({ ID: old }).catch(() => undefined); // already expired: fine
    }
    this.scheduleKeepalive(0);
    const removed = [...published].filter((p) => this.registry.ownerOf(p) !== this.opts.nodeId).length;
    this.log.info({ lease: id, ttl: this.opts.leaseTtlS, published: this.registry.localSize, removed }, "published this node's instances");
  }

  /**
   * Two nodes with one node id would overwrite each other's instances. A live node key with another API URL (and
   * not from this process) is taken as that: this node waits (the key may be a crashed run's, gone within a TTL)
   * and says why. The same URL is this node restarted: it takes over, and its old lease is revoked below.
   */
  private async checkNodeIdFree(): Promise<void> {
    const res = await this.client.kv.range({ key: Buffer.from(`${this.opts.prefix}/nodes/${this.opts.nodeId}`) });
    const kv = res.kvs[0];
    const record = kv === undefined ? undefined : this.parseNode(kv);
    if (record !== undefined && record.apiUrl !== this.opts.apiUrl && record.startedAt !== this.startedAt) {
      throw new NodeIdInUseError(
        `node id ${this.opts.nodeId} is in use by a live node at ${record.apiUrl} (started ${record.startedAt}): give every node its own --node-id; waiting for that key's lease to expire`,
      );
    }
  }

  /**
   * Anti-entropy while running: whatever etcd lost or holds differently (a key deleted by hand, a restored etcd
   * backup) is published again from the local store. lastHealthCheck is left out of the comparison: checks that
   * change nothing are not published.
   */
  private async checkPublished(): Promise<void> {
    const mine = await this.rangeAll(`${this.opts.prefix}/services/${this.opts.nodeId}/`);
    // Compared as JSON in the order it was published (a plain parse; a schema parse would reorder keys).
    const comparable = (entry: unknown) => JSON.stringify({ ...(entry as object), lastHealthCheck: null });
    const inEtcd = new Map<string, { value: string; lease: string }>();
    for (const kv of mine.kvs) {
      const key = this.parseKey(kv.key);
      if (key.kind !== "service") continue;
      const published = (parseJsonOrUndefined(kv.value.toString()) as { entry?: unknown } | undefined)?.entry;
      inEtcd.set(key.id, { value: published === undefined ? "" : comparable(published), lease: kv.lease });
    }
    let fixed = 0;
    for (const entry of this.registry.localValues()) {
      if (this.pending.has(entry.id)) continue;
      const held = inEtcd.get(entry.id);
      if (held === undefined || held.lease !== this.leaseId || held.value !== comparable(entry)) {
        this.pending.set(entry.id, entry);
        fixed += 1;
      }
    }
    for (const id of inEtcd.keys()) {
      if (this.registry.ownerOf(id) !== this.opts.nodeId && !this.pending.has(id)) {
        this.pending.set(id, undefined);
        this.claimed.add(id);
        fixed += 1;
      }
    }
    this.needCheck = false;
    if (fixed > 0) this.log.warn({ fixed }, "etcd did not hold what this node published: publishing it again");
  }

  private putNodeKey(leaseId: string, state: "up" | "leaving"): Promise<IPutResponse> {
    const record: NodeRecord = {
      v: 1,
      nodeId: this.opts.nodeId,
      apiUrl: this.opts.apiUrl,
      dns: this.opts.dns,
      version: VERSION,
      startedAt: this.startedAt,
      state,
    };
    return this.client.kv.put({ key: Buffer.from(`${this.opts.prefix}/nodes/${this.opts.nodeId}`), value: Buffer.from(JSON.stringify(record)), lease: leaseId });
  }

  /** Writes pending instances in transactions of IDS_PER_TXN, in order, until nothing is pending. */
  private async flush(): Promise<void> {
    while (this.pending.size > 0 && this.leaseId !== undefined) {
      const batch: [string, ServiceEntry | undefined][] = [];
      for (const item of this.pending) {
        batch.push(item);
        if (batch.length === IDS_PER_TXN) break;
      }
      const ok = await this.publishBatch(batch, this.leaseId);
      if (!ok) for (const item of batch) await this.publishOne(item, this.leaseId);
      for (const [id, entry] of batch) if (this.pending.get(id) === entry && this.pending.has(id)) this.pending.delete(id);
    }
  }

  private keys(id: string): { service: Buffer; claim: Buffer } {
    return { service: Buffer.from(`${this.opts.prefix}/services/${this.opts.nodeId}/${id}`), claim: Buffer.from(`${this.opts.prefix}/ids/${id}`) };
  }

  private puts(id: string, entry: ServiceEntry, lease: string): IRequestOp[] {
    const k = this.keys(id);
    return [
      { request_put: { key: k.service, value: Buffer.from(JSON.stringify({ v: 1, entry })), lease } },
      { request_put: { key: k.claim, value: this.self, lease } },
    ];
  }

  /** One transaction for the whole batch; false when a claim compare failed (someone else's id, or a stale claim). */
  private async publishBatch(batch: [string, ServiceEntry | undefined][], lease: string): Promise<boolean> {
    const compare = [];
    const success: IRequestOp[] = [];
    for (const [id, entry] of batch) {
      const k = this.keys(id);
      if (entry === undefined) {
        if (!this.claimed.has(id)) continue; // never published
        compare.push({ key: k.claim, target: "Value" as const, result: "Equal" as const, value: this.self });
        success.push({ request_delete_range: { key: k.service } }, { request_delete_range: { key: k.claim } });
      } else {
        compare.push(
          this.claimed.has(id)
            ? { key: k.claim, target: "Value" as const, result: "Equal" as const, value: this.self }
            : { key: k.claim, target: "Create" as const, result: "Equal" as const, create_revision: 0 },
        );
        success.push(...this.puts(id, entry, lease));
      }
    }
    if (success.length === 0) return true;
    const res = await this.client.kv.txn({ compare, success });
    if (!res.succeeded) return false;
    for (const [id, entry] of batch) {
      if (entry === undefined) this.claimed.delete(id);
      else this.claimed.add(id);
    }
    this.counters.published += batch.length;
    return true;
  }

  /** The slow path for one id whose claim was not what this node thought: claim it if free or ours, else a conflict. */
  private async publishOne([id, entry]: [string, ServiceEntry | undefined], lease: string): Promise<void> {
    const k = this.keys(id);
    if (entry === undefined) {
      await this.client.kv.txn({
        compare: [{ key: k.claim, target: "Value", result: "Equal", value: this.self }],
        success: [{ request_delete_range: { key: k.service } }, { request_delete_range: { key: k.claim } }],
        failure: [{ request_delete_range: { key: k.service } }],
      });
      this.claimed.delete(id);
      return;
    }
    const fresh = await this.client.kv.txn({
      compare: [{ key: k.claim, target: "Create", result: "Equal", create_revision: 0 }],
      success: this.puts(id, entry, lease),
      failure: [{ request_range: { key: k.claim } }],
    });
    if (fresh.succeeded) {
      this.claimed.add(id);
      this.counters.published += 1;
      return;
    }
    const holder = fresh.responses[0]?.response_range.kvs[0]?.value.toString();
    if (holder === this.opts.nodeId) {
      const mine = await this.client.kv.txn({ compare: [{ key: k.claim, target: "Value", result: "Equal", value: this.self }], success: this.puts(id, entry, lease) });
      if (mine.succeeded) {
        this.claimed.add(id);
        this.counters.published += 1;
        return;
      }
    }
    if (holder === this.opts.nodeId) {
      // Our claim changed hands between the two calls: look again, on a pass of its own.
      this.needCheck = true;
      this.again = true;
      return;
    }
    // Another node published this id first: ours is older (registered here before this node went away, and the
    // id registered on that node since), or came at the same moment. The published one wins: ours is dropped, so
    // every node answers alike, and the replica read again so the owner's instance takes its place here.
    this.claimed.delete(id);
    this.counters.publishFailures += 1;
    this.log.warn({ id, owner: holder }, "instance id already published by another node: dropping this node's copy; the other node's is served");
    this.conflicts.delete(id);
    this.conflicts.add(id);
    if (this.conflicts.size > MAX_CONFLICTS_SHOWN) this.conflicts.delete(this.conflicts.values().next().value!);
    if (this.registry.ownerOf(id) === this.opts.nodeId) await this.registry.deregister(id);
    this.needResync = true;
    this.again = true;
  }

  // ---------------------------------------------------------------- the replica: range, then watch

  /** Reads the whole cluster at one revision and makes the replica match it, then watches from the next revision. */
  private async resync(): Promise<void> {
    if (this.watcher !== undefined) dropWatcher(this.watcher);
    this.watcher = undefined;
    // nodes/ and services/ only: "ids/" sorts before "nodes/", so the claims (one per instance) stay out of the
    // read and of the watch, which halves what every node decodes per registration.
    const replicated = this.replicatedRange();
    const { kvs, revision } = await this.rangeAll(replicated.start.toString(), replicated.end);
    const nodes = new Map<string, NodeRecord>();
    const seen = new Map<string, { owner: string; kv: IKeyValue }>();
    for (const kv of kvs) {
      const key = this.parseKey(kv.key);
      if (key.kind === "node") {
        const record = key.nodeId === this.opts.nodeId ? undefined : this.parseNode(kv);
        if (record !== undefined) nodes.set(key.nodeId, record);
      } else if (key.kind === "service" && key.owner !== this.opts.nodeId) {
        seen.set(key.id, { owner: key.owner, kv });
      }
    }
    const updates: RemoteUpdate[] = [];
    for (const [id, { owner, kv }] of seen) {
      const rev = Number(kv.mod_revision);
      if (this.remoteRevs.get(id) === rev && this.registry.remoteOwners().get(id) === owner) continue;
      const entry = this.parseService(kv);
      if (entry === undefined) continue;
      this.remoteRevs.set(id, rev);
      updates.push({ id, owner, entry });
    }
    for (const [id, owner] of this.registry.remoteOwners()) {
      if (seen.has(id) || this.preservation.isHeld(owner)) continue;
      this.remoteRevs.delete(id);
      updates.push({ id, owner, entry: undefined });
    }
    this.nodes.clear();
    for (const [id, record] of nodes) this.nodes.set(id, record);
    this.registry.applyRemote(updates);
    this.revision = revision;
    this.needResync = false;
    this.lastSyncAt = Date.now();
    this.counters.resyncs += 1;
    this.probe = undefined; // the new watch is proven by the next probe
    if (this.moveWatch) {
      this.moveWatch = false;
      this.watchClient?.close();
      this.watchClient = undefined;
      this.watchEndpoint = (this.watchEndpoint + 1) % this.opts.endpoints.length;
    }
    this.watchClient ??= connectEtcd({ ...this.opts, endpoints: [this.opts.endpoints[this.watchEndpoint]!] });
    this.watcher = await this.watchClient.watch().inRange(replicated).startRevision(String(revision + 1)).create();
    this.watcher.on("data", (res) => {
      this.lastEventAt = Date.now();
      this.applyEvents(res.events);
    });
    this.watcher.on("error", (err) => {
      // How etcd3 reports a watch below the compacted revision (and any other cancel): read everything again.
      this.counters.watchErrors += 1;
      this.log.warn({ error: err.message }, "etcd watch cancelled: resyncing the replica");
      this.needResync = true;
      this.kick();
    });
    this.watcher.on("disconnected", (err) => this.failure("etcd watch disconnected", err));
    this.watcher.on("connected", () => this.contact());
    this.log.debug({ revision, nodes: nodes.size, remote: seen.size, applied: updates.length }, "replica synced");
  }

  private applyEvents(events: readonly { type: "Put" | "Delete"; kv: IKeyValue }[]): void {
    const updates: RemoteUpdate[] = [];
    const now = Date.now();
    const applied = this.revision;
    for (const { type, kv } of events) {
      // One revision can hold many events (a lease expiry deletes all its keys at once).
      const rev = Number(kv.mod_revision);
      if (rev <= applied) continue; // replayed after a reconnect
      this.revision = Math.max(this.revision, rev);
      const key = this.parseKey(kv.key);
      if (key.kind === "node") {
        if (key.nodeId === this.opts.nodeId) {
          this.probeSeen = Math.max(this.probeSeen, rev);
          continue;
        }
        if (type === "Put") {
          const record = this.parseNode(kv);
          if (record === undefined) continue;
          const known = this.nodes.get(key.nodeId);
          if (known === undefined) this.log.info({ nodeId: key.nodeId, apiUrl: record.apiUrl, version: record.version }, "node joined");
          else if (record.state === "leaving" && known.state !== "leaving") this.log.info({ nodeId: key.nodeId }, "node leaving");
          this.nodes.set(key.nodeId, record);
          this.release(key.nodeId);
        } else {
          const last = this.nodes.get(key.nodeId);
          this.nodes.delete(key.nodeId);
          if (last?.state === "leaving") this.log.info({ nodeId: key.nodeId }, "node left");
          else {
            this.log.warn({ nodeId: key.nodeId, leaseTtlS: this.opts.leaseTtlS }, "node gone without leaving: its lease expired");
            this.expired(key.nodeId, now);
          }
        }
      } else if (key.kind === "service" && key.owner !== this.opts.nodeId) {
        if (type === "Put") {
          const entry = this.parseService(kv);
          if (entry === undefined) continue;
          this.remoteRevs.set(key.id, rev);
          updates.push({ id: key.id, owner: key.owner, entry });
        } else {
          this.remoteRevs.delete(key.id);
          updates.push({ id: key.id, owner: key.owner, entry: undefined });
        }
      }
    }
    this.contact();
    this.registry.applyRemote(this.preserve(updates, now));
  }

  // ---------------------------------------------------------------- self-preservation (mass expiry)

  /** A node's key was deleted without it saying it was leaving: its lease expired. */
  private expired(nodeId: string, now: number): void {
    this.preservation.expired(nodeId, now, this.nodes.size);
  }

  private preserve(updates: RemoteUpdate[], now: number): RemoteUpdate[] {
    const { updates: out, started } = this.preservation.filter(updates, now, (id) => this.registry.get(id));
    if (started) {
      this.log.warn({ heldNodes: this.preservation.heldNodes(), knownNodes: this.nodes.size }, "self-preservation: many nodes expired at once; keeping their instances (stale) instead of evicting them");
    }
    if (this.preservation.overdue(now)) out.push(...this.releaseAll("hold time over"));
    return out;
  }

  /**
   * A held node came back: its republish replaces what was held. A resync a little later drops what it no
   * longer has (its keys expired, so no delete event will come for them).
   */
  private release(nodeId: string): void {
    if (!this.preservation.release(nodeId)) return;
    this.log.info({ nodeId }, "self-preservation: held node is back");
    setTimeout(() => {
      this.needResync = true;
      this.kick();
    }, 2_000).unref();
  }

  /** Ends self-preservation: removals for everything still held. */
  private releaseAll(reason: string): RemoteUpdate[] {
    const heldNodes = this.preservation.heldNodes();
    const removals = this.preservation.releaseAll((id) => this.registry.remoteOwners().get(id));
    if (heldNodes.length > 0) this.log.warn({ heldNodes, reason }, "self-preservation ended: evicting the held nodes' instances");
    return removals;
  }

  // ---------------------------------------------------------------- lease keepalive and state

  private scheduleKeepalive(delayMs: number): void {
    clearTimeout(this.keepaliveTimer);
    if (this.stopped) return;
    this.keepaliveTimer = setTimeout(() => void this.keepalive(), delayMs);
    this.keepaliveTimer.unref();
  }

  /** Our own keepalive loop: one call with a deadline every TTL/3 (etcd3's own loop can sit on a dead stream for a TTL). */
  private async keepalive(): Promise<void> {
    const lease = this.lease;
    if (lease === undefined || this.stopped) return;
    const every = (this.opts.leaseTtlS * 1000) / 3;
    try {
      await this.keepaliveOnce(lease);
      this.contact();
      this.wake?.(); // etcd answers again: retry what failed now rather than after the backoff
      this.scheduleKeepalive(every);
    } catch (err) {
      if (this.stopped || lease !== this.lease) return;
      if (err instanceof EtcdLeaseInvalidError) {
        // Expired while etcd could not be reached: etcd has dropped our keys; publish everything again.
        this.counters.leaseLosses += 1;
        this.log.warn({ lease: this.leaseId }, "etcd lease lost: republishing this node's instances on a new lease");
        lease.release();
        this.lease = undefined;
        this.leaseId = undefined;
        this.needResync = true;
        this.kick();
        return;
      }
      this.failure("etcd lease keepalive failed", err);
      this.scheduleKeepalive(Math.min(500, every));
    }
  }

  /**
   * Checks the outstanding probe, or sends the next one (see PROBE_EVERY_MS). Only while everything else works:
   * failures of etcd itself are the keepalive's and the loop's to report.
   */
  private async probeWatch(): Promise<void> {
    const leaseId = this.leaseId;
    if (this.stopped || this.probing || leaseId === undefined || this.watcher === undefined || this.needResync || this.retryDelayMs > 0) return;
    const now = Date.now();
    const probe = this.probe;
    if (probe !== undefined && this.probeSeen >= probe.revision) this.probeCameBack();
    else if (probe !== undefined) {
      // Nothing at all for a while since etcd acknowledged the probe (a busy watch that is merely behind still
      // delivers; one that brought a last few events and then stopped is as silent as one that brought none).
      if (now - Math.max(probe.at, this.lastEventAt) > PROBE_WAIT_MS) this.watchSilent(probe.at, now);
      return;
    }
    if (now - this.lastProbeAt < PROBE_EVERY_MS) return;
    this.lastProbeAt = now;
    this.probing = true;
    try {
      const res = await this.putNodeKey(leaseId, "up");
      if (leaseId === this.leaseId) this.probe = { revision: Number(res.header.revision), at: Date.now() };
    } catch {
      // etcd failing: the keepalive and the loop say so; the next probe waits until they succeed
    } finally {
      this.probing = false;
    }
  }

  private probeCameBack(): void {
    this.probe = undefined;
    if (this.watchSilentSince === undefined) return;
    this.watchSilentSince = undefined;
    this.log.info({ revision: this.revision }, "etcd watch delivers again");
    this.contact();
  }

  /** The watch cannot be trusted: the replica is stale, and the watch is rebuilt on the next endpoint. */
  private watchSilent(probedAt: number, now: number): void {
    this.probe = undefined;
    this.counters.watchStalls += 1;
    if (this.watchSilentSince === undefined) {
      this.watchSilentSince = probedAt;
      this.log.warn(
        { waitedMs: now - probedAt, revision: this.revision, endpoint: this.opts.endpoints[this.watchEndpoint] },
        "etcd watch silent (its member may be frozen): replica stale, watching through the next endpoint",
      );
    }
    this.moveWatch = true;
    this.lastError = `the etcd watch delivered nothing for ${now - probedAt} ms after a write etcd acknowledged`;
    this.updateState();
    this.needResync = true;
    this.kick();
  }

  /**
   * One keepalive, tried again at once on failure: etcd3 sends each attempt to a member picked at random and
   * never retries a keepalive itself, so with one member frozen a single attempt fails half the time or more,
   * and two failures in a row lost a 2 s lease (measured). Every attempt gets its share of a third of the TTL.
   */
  private async keepaliveOnce(lease: Lease): Promise<void> {
    const attempts = Math.min(this.opts.endpoints.length + 1, 4);
    const deadlineMs = Math.max(200, Math.min(1_000, (this.opts.leaseTtlS * 1000) / 3 / attempts));
    for (let attempt = 1; ; attempt++) {
      try {
        await lease.keepaliveOnce({ deadline: Date.now() + deadlineMs });
        return;
      } catch (err) {
        if (err instanceof EtcdLeaseInvalidError || attempt >= attempts || this.stopped) throw err;
      }
    }
  }

  private contact(): void {
    this.lastContactAt = Date.now();
    if (this.retryDelayMs === 0 && this.pending.size === 0 && this.leaseId !== undefined && !this.needResync && this.watchSilentSince === undefined) {
      this.failingSince = undefined;
      this.lastError = undefined;
      this.loggedErrors.clear();
    }
    this.updateState();
  }

  private failure(msg: string, err: unknown): void {
    this.failingSince ??= Date.now();
    const error = (err as Error)?.message ?? String(err);
    // Each distinct error is logged once per outage (retries every few hundred ms would flood the log).
    const key = `${msg}: ${error}`;
    if (!this.loggedErrors.has(key) && this.loggedErrors.size < 20) this.log.warn({ error }, msg);
    else this.log.debug({ error }, msg);
    this.loggedErrors.add(key);
    this.lastError = error;
    this.updateState();
  }

  /**
   * ok, or stale: degraded (something has failed for longer than a leader failover takes), unreachable (no
   * successful call for half a lease TTL, or never), or conflict (another live node has this node's id).
   */
  private computeState(now: number): ClusterState {
    if (this.idInUse) return "conflict";
    const failingFor = this.failingSince === undefined ? 0 : now - this.failingSince;
    if (this.lastContactAt === 0) return failingFor > 0 ? "unreachable" : "starting";
    if (now - this.lastContactAt > (this.opts.leaseTtlS * 1000) / 2 && failingFor > 0) return "unreachable";
    if (failingFor > DEGRADED_AFTER_MS || this.watchSilentSince !== undefined) return "degraded";
    return "ok";
  }

  private updateState(): void {
    const now = Date.now();
    if (this.preservation.overdue(now)) this.registry.applyRemote(this.releaseAll("hold time over"));
    const next = this.computeState(now);
    if (next === this.state) return;
    const prev = this.state;
    this.state = next;
    if (next === "ok") this.log.info({ from: prev, revision: this.revision }, "cluster replica in sync with etcd");
    else if (prev === "unreachable" && next === "degraded") this.log.info({ pendingPublish: this.pending.size }, "etcd answers again: catching up");
    else if (next === "conflict") this.log.error({ nodeId: this.opts.nodeId, error: this.lastError }, "not joining the cluster: give every node its own --node-id");
    else if (next !== "starting") this.log.warn({ from: prev, state: next, pendingPublish: this.pending.size }, "cluster replica stale: etcd not reachable; answering from the last replica");
  }

  // ---------------------------------------------------------------- what the API sees

  /** The API URL of the node that owns an instance, when that is another node; undefined when it is this one (or nobody). */
  ownerOf(id: string): Owner | undefined {
    const owner = this.registry.remoteOwners().get(id);
    if (owner === undefined) return undefined;
    return { nodeId: owner, apiUrl: this.nodes.get(owner)?.apiUrl };
  }

  /** How long the replica has been stale, ms; 0 while it is in sync. Cheap enough for every query. */
  staleForMs(now = Date.now()): number {
    if (this.computeState(now) === "ok") return 0;
    return Math.max(1, now - (this.failingSince ?? this.watchSilentSince ?? (this.lastContactAt || this.startedAtMs)));
  }

  status(): ClusterStatus {
    const now = Date.now();
    const state = this.computeState(now);
    return {
      state,
      nodeId: this.opts.nodeId,
      prefix: this.opts.prefix,
      nodes: [{ nodeId: this.opts.nodeId, apiUrl: this.opts.apiUrl, dns: this.opts.dns, version: VERSION, state: "up" as const }, ...[...this.nodes.values()].filter((n) => n.nodeId !== this.opts.nodeId)]
        .map(({ nodeId, apiUrl, dns, version, state: st }) => ({ nodeId, apiUrl, dns, version, state: st }))
        .sort((a, b) => a.nodeId.localeCompare(b.nodeId)),
      replica: {
        stale: state !== "ok",
        revision: this.revision,
        remoteInstances: this.registry.remoteOwners().size,
        staleForMs: this.staleForMs(now),
        lastSyncAt: this.lastSyncAt === undefined ? null : new Date(this.lastSyncAt).toISOString(),
      },
      lease: { id: this.leaseId ?? null, ttl: this.opts.leaseTtlS, lastKeepaliveAgoMs: this.lastContactAt === 0 ? null : now - this.lastContactAt },
      pendingPublish: this.pending.size,
      lastError: this.lastError ?? null,
      conflicts: [...this.conflicts].sort(),
      selfPreservation: this.preservation.status(),
      counters: { ...this.counters },
    };
  }

  /**
   * Reads the whole cluster again, checks what etcd holds for this node, and waits for this node's pending
   * writes. `force` also ends self-preservation,
   * evicting the held nodes' instances.
   */
  async sync(force = false): Promise<ClusterStatus> {
    if (force) this.registry.applyRemote(this.releaseAll("forced sync"));
    this.needResync = true;
    this.needCheck = true;
    // A pass of the loop that starts after this, now (a loop waiting out its backoff is woken). While etcd fails
    // the loop retries for as long as it takes; the caller gets the error of the first failed pass instead. A
    // pass may leave work for the next (an id given up to another node: the replica is read again).
    for (let passes = 0; passes < 3; passes++) {
      const pass = new Promise<boolean>((resolve) => this.passWaiters.push(resolve));
      this.kick();
      this.wake?.();
      if (!(await pass)) break;
      if (!this.needResync && !this.needCheck && this.pending.size === 0) return this.status();
    }
    throw new Error(`etcd not reachable: the replica stays as it was (state ${this.computeState(Date.now())}, ${this.pending.size} writes pending)`);
  }

  /** Graceful leave: say so in the node key, then revoke the lease so every node drops this one's instances at once. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unsubscribe?.();
    clearTimeout(this.keepaliveTimer);
    clearInterval(this.stateTimer);
    clearInterval(this.checkTimer);
    for (const tell of this.passWaiters.splice(0)) tell(false);
    this.wake?.();
    // Bounded: with etcd away, a call can take its retries (~3 s), and SIGTERM must end within 5 s.
    const leave = async () => {
      await this.loopRunning?.catch(() => undefined);
      const leaseId = this.leaseId;
      if (leaseId === undefined) return;
      await this.putNodeKey(leaseId, "leaving");
      await this.client.leaseClient.leaseRevoke({ ID: leaseId });
    };
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([leave(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("etcd did not answer within 2 s")), 2_000)))]);
    } catch (err) {
      this.log.warn({ error: (err as Error).message }, "could not leave the cluster cleanly: this node's instances go when its lease expires");
    } finally {
      clearTimeout(timer);
    }
    this.lease?.release();
    if (this.watcher) dropWatcher(this.watcher);
    this.watchClient?.close();
    this.client.close();
  }

  // ---------------------------------------------------------------- helpers

  /** Every key under a prefix, in pages, all at the revision of the first page. */
  private async rangeAll(prefix: string, end?: Buffer): Promise<{ kvs: IKeyValue[]; revision: number }> {
    const key = Buffer.from(prefix);
    const rangeEnd = end ?? prefixEnd(key);
    const kvs: IKeyValue[] = [];
    let revision = 0;
    let from = key;
    for (;;) {
      const res = await this.client.kv.range({ key: from, range_end: rangeEnd, limit: PAGE, ...(revision ? { revision } : {}) });
      if (revision === 0) revision = Number(res.header.revision);
      kvs.push(...res.kvs);
      const last = res.kvs[res.kvs.length - 1];
      if (!res.more || last === undefined) break;
      from = Buffer.concat([last.key, Buffer.from([0])]);
    }
    this.contact();
    return { kvs, revision };
  }

  /** [<p>/nodes/, end of <p>/services/): node keys and instance keys, not the id claims. */
  private replicatedRange(): { start: Buffer; end: Buffer } {
    return { start: Buffer.from(`${this.opts.prefix}/nodes/`), end: prefixEnd(Buffer.from(`${this.opts.prefix}/services/`)) };
  }

  private parseKey(raw: Buffer): Key {
    const key = raw.toString();
    const rest = key.startsWith(`${this.opts.prefix}/`) ? key.slice(this.opts.prefix.length + 1) : "";
    const parts = rest.split("/");
    if (parts[0] === "nodes" && parts.length === 2) return { kind: "node", nodeId: parts[1]! };
    if (parts[0] === "services" && parts.length === 3) return { kind: "service", owner: parts[1]!, id: parts[2]! };
    if (parts[0] === "ids" && parts.length === 2) return { kind: "claim", id: parts[1]! };
    return { kind: "other" };
  }

  private parseNode(kv: IKeyValue): NodeRecord | undefined {
    const parsed = nodeRecordSchema.safeParse(parseJsonOrUndefined(kv.value.toString()));
    if (!parsed.success) this.log.warn({ key: kv.key.toString() }, "ignoring a node key that is not a node record");
    return parsed.success ? parsed.data : undefined;
  }

  private parseService(kv: IKeyValue): ServiceEntry | undefined {
    const parsed = serviceRecordSchema.safeParse(parseJsonOrUndefined(kv.value.toString()));
    if (!parsed.success) this.log.warn({ key: kv.key.toString(), error: parsed.error.issues[0]?.message }, "ignoring an instance key that does not hold a valid instance");
    return parsed.success ? (parsed.data.entry as ServiceEntry) : undefined;
  }
}

/** Another live node already has this node's id: joining would publish over its instances. */
class NodeIdInUseError extends Error {}

/**
 * Stops listening to a watcher and cancels it without waiting: a cancel waits for the member's answer, and on a
 * dead member it never comes (that hung the resync that followed a compaction).
 */
function dropWatcher(watcher: Watcher): void {
  watcher.removeAllListeners();
  watcher.on("error", () => undefined);
  watcher.cancel().catch(() => undefined);
}

/** The end of a prefix range: the prefix with its last byte incremented (etcd's clientv3.GetPrefixRangeEnd). */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
