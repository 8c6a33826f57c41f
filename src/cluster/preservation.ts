// Self-preservation for the cluster replica (Eureka's idea): when many nodes' leases expire at once, the likely
// fault is on the etcd side (a partition), not in the nodes, so their instances are held instead of evicted.
// Pure: the caller passes the time, the number of nodes it knows and what the registry holds.
import type { RemoteUpdate } from "../registry/index.js";
import type { ServiceEntry } from "../model/index.js";

export interface SelfPreservationSettings {
  /** Expiries of other nodes within one window that trigger it: at least this many... */
  minNodes: number;
  /** ...and more than this share of the other nodes known when the window began. */
  share: number;
  /** The window, ms (cluster mode: lease TTL + 5 s). */
  windowMs: number;
  /** How long held nodes are kept at most, ms. */
  holdMs: number;
}

export interface SelfPreservationStatus {
  active: boolean;
  since: string | null;
  heldNodes: string[];
}

export class SelfPreservation {
  /** Nodes that expired in the current window, with the instances they had when their removals came. */
  private expiries: { nodeId: string; instances: RemoteUpdate[] }[] = [];
  private windowStart = -Infinity;
  private windowNodes = 0;
  private readonly held = new Map<string, RemoteUpdate[]>();
  private heldSince: number | undefined;

  constructor(private readonly settings: SelfPreservationSettings) {}

  /** A node's key was deleted without it saying it was leaving: its lease expired. `othersLeft`: other nodes still known. */
  expired(nodeId: string, now: number, othersLeft: number): void {
    if (now - this.windowStart > this.settings.windowMs) {
      this.windowStart = now;
      this.windowNodes = othersLeft + 1; // the others known when the window began, this one included
      this.expiries = [];
    }
    this.expiries.push({ nodeId, instances: [] });
  }

  /**
   * The replica updates to apply. Removals of expired nodes' instances pass unless the window now holds at least
   * minNodes expiries and more than `share` of the nodes known: then those nodes are held, their removals dropped,
   * and the instances evicted earlier in the window come back. `current` reads what the registry holds for an id.
   * `started` is set when this call began holding.
   */
  filter(updates: readonly RemoteUpdate[], now: number, current: (id: string) => ServiceEntry | undefined): { updates: RemoteUpdate[]; started: boolean } {
    if (this.expiries.length === 0 && this.held.size === 0) return { updates: [...updates], started: false };
    const out: RemoteUpdate[] = [];
    for (const u of updates) {
      const record = this.expiries.find((e) => e.nodeId === u.owner);
      const held = this.held.get(u.owner);
      if (u.entry !== undefined || (record === undefined && held === undefined)) {
        out.push(u);
        continue;
      }
      const before = current(u.id);
      if (before !== undefined) record?.instances.push({ id: u.id, owner: u.owner, entry: before });
      if (held !== undefined) held.push({ id: u.id, owner: u.owner, entry: before });
      else out.push(u);
    }
    let started = false;
    const { minNodes, share } = this.settings;
    if (this.expiries.length >= minNodes && this.expiries.length > share * this.windowNodes) {
      for (const e of this.expiries) {
        if (this.held.has(e.nodeId)) continue;
        this.held.set(e.nodeId, e.instances);
        for (const inst of e.instances) {
          const i = out.findIndex((u) => u.id === inst.id && u.entry === undefined);
          if (i >= 0) out.splice(i, 1); // removed in this very batch: keep it
          else if (inst.entry !== undefined) out.push(inst); // evicted earlier in the window: bring it back
        }
      }
      if (this.heldSince === undefined) {
        this.heldSince = now;
        started = true;
      }
    }
    return { updates: out, started };
  }

  /** A held node came back (its republish replaces what was held); false if it was not held. */
  release(nodeId: string): boolean {
    if (!this.held.delete(nodeId)) return false;
    if (this.held.size === 0) this.heldSince = undefined;
    this.expiries = this.expiries.filter((e) => e.nodeId !== nodeId);
    return true;
  }

  /** Whether holdMs has passed since holding began. */
  overdue(now: number): boolean {
    return this.heldSince !== undefined && now - this.heldSince > this.settings.holdMs;
  }

  /** Ends it: removals for every held instance its node still owns (`ownerOf` reads the registry). */
  releaseAll(ownerOf: (id: string) => string | undefined): RemoteUpdate[] {
    const removals: RemoteUpdate[] = [];
    for (const [owner, instances] of this.held) {
      for (const inst of instances) if (ownerOf(inst.id) === owner) removals.push({ id: inst.id, owner, entry: undefined });
    }
    this.held.clear();
    this.heldSince = undefined;
    this.expiries = [];
    return removals;
  }

  isHeld(owner: string): boolean {
    return this.held.has(owner);
  }

  heldNodes(): string[] {
    return [...this.held.keys()].sort();
  }

  status(): SelfPreservationStatus {
    return { active: this.held.size > 0, since: this.heldSince === undefined ? null : new Date(this.heldSince).toISOString(), heldNodes: this.heldNodes() };
  }
}
