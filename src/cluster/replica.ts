// The read side: the other nodes' records and instances as etcd holds them, made to match one range read (a resync,
// never clearing first) and then kept up by the watch's events, one registry batch per watch response, through
// self-preservation. Pure: the caller passes what etcd returned and the time; the registry is written here.
import type { IKeyValue } from "etcd3";
import type { Logger } from "pino";
import type { Registry, RemoteUpdate } from "../registry/index.js";
import { parseNode, parseRouting, parseService, type KeyEvent, type KeyLayout, type NodeRecord } from "./keys.js";
import type { SelfPreservation } from "./preservation.js";

/** What of the registry the replica reads and writes. */
export type ReplicaRegistry = Pick<Registry, "applyRemote" | "remoteOwners" | "get">;

/** The routing policies as the cluster holds them (registry/routing.ts's RoutingTable). */
export interface RoutingSink {
  /** A policy as etcd now holds it (undefined: none); a no-op when the table already holds it. */
  applyRemote(name: string, policy: { split: { version: string; weight: number }[]; updatedAt: string } | undefined): void;
  /** The names that have a policy here. */
  names(): string[];
}

export class Replica {
  /** The other nodes' records (this node's own is not kept). */
  readonly nodes = new Map<string, NodeRecord>();
  /** Mod revision of each remote instance's key, to skip unchanged ones on a resync. */
  private readonly remoteRevs = new Map<string, number>();
  /** The highest revision the replica has applied. */
  revision = 0;
  /** The highest revision of this node's own node key that came through the watch (the watch probe's echo). */
  probeSeen = 0;
  /** When the watch last delivered anything. */
  lastEventAt = 0;
  lastSyncAt: number | undefined;
  resyncs = 0;
  /**
   * The newest revision of each routing key known here, from the watch and from this node's own puts: an event
   * older than a write this node made itself (two nodes setting one name at once) does not undo it.
   */
  private readonly routingRevs = new Map<string, number>();

  constructor(
    private readonly layout: KeyLayout,
    private readonly registry: ReplicaRegistry,
    private readonly preservation: SelfPreservation,
    private readonly log: Logger,
    private readonly leaseTtlS: number,
    private readonly routing?: RoutingSink,
  ) {}

  /** This node wrote a routing key (or deleted it) at `revision`. */
  wroteRouting(name: string, revision: number): void {
    this.routingRevs.set(name, Math.max(this.routingRevs.get(name) ?? 0, revision));
  }

  private applyRouting(name: string, kv: IKeyValue | undefined, rev: number): void {
    if (this.routing === undefined || rev <= (this.routingRevs.get(name) ?? 0)) return;
    this.routingRevs.set(name, rev);
    const record = kv === undefined ? undefined : parseRouting(kv, this.log);
    if (kv !== undefined && record === undefined) return;
    this.routing.applyRemote(name, record && { split: record.split, updatedAt: record.updatedAt });
  }

  /** Makes the replica match one range read of the replicated keys at `revision`, without clearing it first. */
  resync(kvs: readonly IKeyValue[], revision: number, now: number): void {
    const nodes = new Map<string, NodeRecord>();
    const seen = new Map<string, { owner: string; kv: IKeyValue }>();
    const policies = new Set<string>();
    for (const kv of kvs) {
      const key = this.layout.parse(kv.key);
      if (key.kind === "routing") {
        policies.add(key.name);
        this.applyRouting(key.name, kv, Number(kv.mod_revision));
      } else if (key.kind === "node") {
        const record = key.nodeId === this.layout.nodeId ? undefined : parseNode(kv, this.log);
        if (record !== undefined) nodes.set(key.nodeId, record);
      } else if (key.kind === "service" && key.owner !== this.layout.nodeId) {
        seen.set(key.id, { owner: key.owner, kv });
      }
    }
    const updates: RemoteUpdate[] = [];
    for (const [id, { owner, kv }] of seen) {
      const rev = Number(kv.mod_revision);
      if (this.remoteRevs.get(id) === rev && this.registry.remoteOwners().get(id) === owner) continue;
      const entry = parseService(kv, this.log);
      if (entry === undefined) continue;
      this.remoteRevs.set(id, rev);
      updates.push({ id, owner, entry });
    }
    for (const [id, owner] of this.registry.remoteOwners()) {
      if (seen.has(id) || this.preservation.isHeld(owner)) continue;
      this.remoteRevs.delete(id);
      updates.push({ id, owner, entry: undefined });
    }
    // In cluster mode the policies are the cluster's: one etcd no longer holds (deleted while this node was away,
    // or set here before it joined) goes.
    for (const name of this.routing?.names() ?? []) {
      if (policies.has(name) || (this.routingRevs.get(name) ?? 0) > revision) continue; // or written here since the read
      this.log.info({ service: name }, "routing policy not in the cluster: removed here");
      this.routingRevs.set(name, revision);
      this.routing!.applyRemote(name, undefined);
    }
    this.nodes.clear();
    for (const [id, record] of nodes) this.nodes.set(id, record);
    this.registry.applyRemote(updates);
    this.revision = revision;
    this.lastSyncAt = now;
    this.resyncs += 1;
    this.log.debug({ revision, nodes: nodes.size, remote: seen.size, applied: updates.length }, "replica synced");
  }

  /** One watch response. Returns the held nodes that came back: a resync a little later drops what they no longer have. */
  applyEvents(events: readonly KeyEvent[], now: number): { released: string[] } {
    this.lastEventAt = now;
    const updates: RemoteUpdate[] = [];
    const released: string[] = [];
    const applied = this.revision;
    for (const { type, kv } of events) {
      // One revision can hold many events (a lease expiry deletes all its keys at once).
      const rev = Number(kv.mod_revision);
      if (rev <= applied) continue; // replayed after a reconnect
      this.revision = Math.max(this.revision, rev);
      const key = this.layout.parse(kv.key);
      if (key.kind === "routing") {
        this.applyRouting(key.name, type === "Put" ? kv : undefined, rev);
      } else if (key.kind === "node") {
        if (key.nodeId === this.layout.nodeId) {
          this.probeSeen = Math.max(this.probeSeen, rev);
          continue;
        }
        if (type === "Put") {
          const record = parseNode(kv, this.log);
          if (record === undefined) continue;
          const known = this.nodes.get(key.nodeId);
          if (known === undefined) this.log.info({ nodeId: key.nodeId, apiUrl: record.apiUrl, version: record.version }, "node joined");
          else if (record.state === "leaving" && known.state !== "leaving") this.log.info({ nodeId: key.nodeId }, "node leaving");
          this.nodes.set(key.nodeId, record);
          if (this.preservation.release(key.nodeId)) {
            this.log.info({ nodeId: key.nodeId }, "self-preservation: held node is back");
            released.push(key.nodeId);
          }
        } else {
          const last = this.nodes.get(key.nodeId);
          this.nodes.delete(key.nodeId);
          if (last?.state === "leaving") this.log.info({ nodeId: key.nodeId }, "node left");
          else {
            // Deleted without saying it was leaving: its lease expired.
            this.log.warn({ nodeId: key.nodeId, leaseTtlS: this.leaseTtlS }, "node gone without leaving: its lease expired");
            this.preservation.expired(key.nodeId, now, this.nodes.size);
          }
        }
      } else if (key.kind === "service" && key.owner !== this.layout.nodeId) {
        if (type === "Put") {
          const entry = parseService(kv, this.log);
          if (entry === undefined) continue;
          this.remoteRevs.set(key.id, rev);
          updates.push({ id: key.id, owner: key.owner, entry });
        } else {
          this.remoteRevs.delete(key.id);
          updates.push({ id: key.id, owner: key.owner, entry: undefined });
        }
      }
    }
    this.registry.applyRemote(this.preserve(updates, now));
    return { released };
  }

  /** Ends self-preservation once its hold time is over. */
  holdOverdue(now: number): void {
    if (this.preservation.overdue(now)) this.registry.applyRemote(this.releaseAll("hold time over"));
  }

  /** Ends self-preservation (a forced sync, or its hold time over): the held nodes' instances go. */
  endPreservation(reason: string): void {
    this.registry.applyRemote(this.releaseAll(reason));
  }

  private preserve(updates: RemoteUpdate[], now: number): RemoteUpdate[] {
    const { updates: out, started } = this.preservation.filter(updates, now, (id) => this.registry.get(id));
    if (started) {
      this.log.warn({ heldNodes: this.preservation.heldNodes(), knownNodes: this.nodes.size }, "self-preservation: many nodes expired at once; keeping their instances (stale) instead of evicting them");
    }
    if (this.preservation.overdue(now)) out.push(...this.releaseAll("hold time over"));
    return out;
  }

  /** Removals for everything still held. */
  private releaseAll(reason: string): RemoteUpdate[] {
    const heldNodes = this.preservation.heldNodes();
    const removals = this.preservation.releaseAll((id) => this.registry.remoteOwners().get(id));
    if (heldNodes.length > 0) this.log.warn({ heldNodes, reason }, "self-preservation ended: evicting the held nodes' instances");
    return removals;
  }
}
