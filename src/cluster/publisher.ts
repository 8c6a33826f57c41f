// The owner side: this node's instances still to be written to etcd, coalesced by id (latest wins), published when
// a write is planned rather than when it commits, and written in transactions that carry each id's claim. The etcd
// calls go through `PublishKv` (the client's kv in production); every decision is here.
import type { IKeyValue, IRequestOp, ITxnRequest, ITxnResponse } from "etcd3";
import type { Logger } from "pino";
import type { Registry, RegistryChange } from "../registry/index.js";
import type { ServiceEntry } from "../model/index.js";
import { parseJsonOrUndefined } from "../lib/json.js";
import type { KeyLayout } from "./keys.js";

/** The one etcd call the publisher makes. */
export interface PublishKv {
  txn(req: ITxnRequest): Promise<ITxnResponse>;
}

/** What of the registry the publisher reads (and, for an id another node holds, writes). */
export type PublisherRegistry = Pick<Registry, "ownerOf" | "get" | "localValues" | "deregister">;

/** What a flush left for the next pass: read this node's keys again (a claim changed hands), or the whole replica. */
export interface FlushOutcome {
  recheck: boolean;
  reread: boolean;
}

type Item = [string, ServiceEntry | undefined];

/** How many of the latest ids given up to another node's claim the status lists. */
export const MAX_CONFLICTS_SHOWN = 20;
/** etcd's --max-txn-ops is 128 and every instance takes two ops (its key and its id claim). */
export const IDS_PER_TXN = 64;

export class Publisher {
  /** This node's instances still to be written to etcd (undefined: to be deleted), latest wins. */
  readonly pending = new Map<string, ServiceEntry | undefined>();
  /** Writes published when planned, until they commit: their commit-time change needs no second publish. */
  private readonly early = new Map<string, ServiceEntry | undefined>();
  /** Ids whose claim key this node holds. */
  private claimed = new Set<string>();
  /** The latest ids whose copy this node dropped because another node had published them (for the status). */
  private readonly conflictIds = new Set<string>();
  readonly counters = { published: 0, publishFailures: 0 };

  constructor(
    private readonly layout: KeyLayout,
    private readonly registry: PublisherRegistry,
    private readonly log: Logger,
  ) {}

  /**
   * A write is published as soon as it is planned, while the local store syncs it: propagation costs the slower
   * of the two instead of their sum. If the local write then fails (`settled(view, false)`), what the registry
   * really holds is published again (other nodes may have seen the failed write for that long; a crash in between
   * is undone by the anti-entropy of the next start, which deletes what the local store does not have).
   */
  planned(view: ReadonlyMap<string, ServiceEntry | undefined>): void {
    for (const [id, entry] of view) {
      this.pending.set(id, entry);
      this.early.set(id, entry);
    }
  }

  /** Follows the registry's writes: `kick.soon` when something is to publish, `kick.now` when a planned write failed. */
  attach(registry: Pick<Registry, "onPlanned" | "onChange">, kick: { soon(): void; now(): void }): () => void {
    const offPlanned = registry.onPlanned((view, outcome) => {
      this.planned(view);
      kick.soon();
      outcome.then(
        () => this.settled(view, true),
        () => {
          this.settled(view, false);
          kick.now();
        },
      );
    });
    const offChange = registry.onChange((changes) => {
      if (this.follow(changes)) kick.soon();
    });
    return () => {
      offPlanned();
      offChange();
    };
  }

  /** A planned write committed (ok) or failed. */
  settled(view: ReadonlyMap<string, ServiceEntry | undefined>, ok: boolean): void {
    for (const [id, entry] of view) if (this.early.get(id) === entry) this.early.delete(id);
    if (ok) return;
    for (const id of view.keys()) this.pending.set(id, this.registry.ownerOf(id) === this.layout.nodeId ? this.registry.get(id) : undefined);
  }

  /** What changed on this node (not the replica's changes, not checks that changed nothing); true if any is to publish. */
  follow(changes: readonly RegistryChange[]): boolean {
    let any = false;
    for (const change of changes) {
      if (change.cause === "checked" || change.cause === "replica") continue;
      if (this.early.has(change.id) && this.early.get(change.id) === change.after) continue; // published when planned
      this.pending.set(change.id, change.after);
      any = true;
    }
    return any;
  }

  /**
   * Anti-entropy on a new lease: every local instance to put again, every id etcd holds under this node's name that
   * the local store lacks to delete. `published`: the ids of this node's instance keys in etcd. Returns how many go.
   */
  republishAll(published: ReadonlySet<string>): number {
    this.claimed = new Set(published);
    for (const entry of this.registry.localValues()) this.pending.set(entry.id, entry);
    let removed = 0;
    for (const id of published) {
      if (this.registry.ownerOf(id) === this.layout.nodeId) continue;
      this.pending.set(id, undefined);
      removed += 1;
    }
    return removed;
  }

  /**
   * Anti-entropy while running: whatever etcd lost or holds differently (a key deleted by hand, a restored etcd
   * backup) is published again from the local store. lastHealthCheck is left out of the comparison: checks that
   * change nothing are not published. `mine`: this node's instance keys as etcd holds them. Returns how many.
   */
  check(mine: readonly IKeyValue[], leaseId: string | undefined): number {
    // Compared as JSON in the order it was published (a plain parse; a schema parse would reorder keys).
    const comparable = (entry: unknown) => JSON.stringify({ ...(entry as object), lastHealthCheck: null });
    const inEtcd = new Map<string, { value: string; lease: string }>();
    for (const kv of mine) {
      const key = this.layout.parse(kv.key);
      if (key.kind !== "service") continue;
      const published = (parseJsonOrUndefined(kv.value.toString()) as { entry?: unknown } | undefined)?.entry;
      inEtcd.set(key.id, { value: published === undefined ? "" : comparable(published), lease: kv.lease });
    }
    let fixed = 0;
    for (const entry of this.registry.localValues()) {
      if (this.pending.has(entry.id)) continue;
      const held = inEtcd.get(entry.id);
      if (held === undefined || held.lease !== leaseId || held.value !== comparable(entry)) {
        this.pending.set(entry.id, entry);
        fixed += 1;
      }
    }
    for (const id of inEtcd.keys()) {
      if (this.registry.ownerOf(id) !== this.layout.nodeId && !this.pending.has(id)) {
        this.pending.set(id, undefined);
        this.claimed.add(id);
        fixed += 1;
      }
    }
    return fixed;
  }

  /** Writes pending instances in transactions of IDS_PER_TXN, in order, until nothing is pending (or the lease is gone). */
  async flush(kv: PublishKv, lease: () => string | undefined): Promise<FlushOutcome> {
    const outcome: FlushOutcome = { recheck: false, reread: false };
    for (let leaseId = lease(); this.pending.size > 0 && leaseId !== undefined; leaseId = lease()) {
      const batch: Item[] = [];
      for (const item of this.pending) {
        batch.push(item);
        if (batch.length === IDS_PER_TXN) break;
      }
      const ok = await this.publishBatch(kv, batch, leaseId);
      if (!ok) for (const item of batch) await this.publishOne(kv, item, leaseId, outcome);
      for (const [id, entry] of batch) if (this.pending.get(id) === entry && this.pending.has(id)) this.pending.delete(id);
    }
    return outcome;
  }

  conflicts(): string[] {
    return [...this.conflictIds].sort();
  }

  private puts(id: string, entry: ServiceEntry, lease: string): IRequestOp[] {
    return [
      { request_put: { key: this.layout.service(id), value: Buffer.from(JSON.stringify({ v: 1, entry })), lease } },
      { request_put: { key: this.layout.claim(id), value: this.layout.self, lease } },
    ];
  }

  private mineCompare(id: string) {
    return { key: this.layout.claim(id), target: "Value" as const, result: "Equal" as const, value: this.layout.self };
  }

  private freeCompare(id: string) {
    return { key: this.layout.claim(id), target: "Create" as const, result: "Equal" as const, create_revision: 0 };
  }

  /** One transaction for the whole batch; false when a claim compare failed (someone else's id, or a stale claim). */
  private async publishBatch(kv: PublishKv, batch: Item[], lease: string): Promise<boolean> {
    const compare = [];
    const success: IRequestOp[] = [];
    for (const [id, entry] of batch) {
      if (entry === undefined) {
        if (!this.claimed.has(id)) continue; // never published
        compare.push(this.mineCompare(id));
        success.push({ request_delete_range: { key: this.layout.service(id) } }, { request_delete_range: { key: this.layout.claim(id) } });
      } else {
        compare.push(this.claimed.has(id) ? this.mineCompare(id) : this.freeCompare(id));
        success.push(...this.puts(id, entry, lease));
      }
    }
    if (success.length === 0) return true;
    const res = await kv.txn({ compare, success });
    if (!res.succeeded) return false;
    for (const [id, entry] of batch) {
      if (entry === undefined) this.claimed.delete(id);
      else this.claimed.add(id);
    }
    this.counters.published += batch.length;
    return true;
  }

  /** The slow path for one id whose claim was not what this node thought: claim it if free or ours, else a conflict. */
  private async publishOne(kv: PublishKv, [id, entry]: Item, lease: string, outcome: FlushOutcome): Promise<void> {
    const service = this.layout.service(id);
    if (entry === undefined) {
      await kv.txn({
        compare: [this.mineCompare(id)],
        success: [{ request_delete_range: { key: service } }, { request_delete_range: { key: this.layout.claim(id) } }],
        failure: [{ request_delete_range: { key: service } }],
      });
      this.claimed.delete(id);
      return;
    }
    const fresh = await kv.txn({ compare: [this.freeCompare(id)], success: this.puts(id, entry, lease), failure: [{ request_range: { key: this.layout.claim(id) } }] });
    if (fresh.succeeded) {
      this.claimed.add(id);
      this.counters.published += 1;
      return;
    }
    const holder = fresh.responses[0]?.response_range.kvs[0]?.value.toString();
    if (holder === this.layout.nodeId) {
      const mine = await kv.txn({ compare: [this.mineCompare(id)], success: this.puts(id, entry, lease) });
      if (mine.succeeded) {
        this.claimed.add(id);
        this.counters.published += 1;
        return;
      }
      // Our claim changed hands between the two calls: look again, on a pass of its own.
      outcome.recheck = true;
      return;
    }
    // Another node published this id first: ours is older (registered here before this node went away, and the
    // id registered on that node since), or came at the same moment. The published one wins: ours is dropped, so
    // every node answers alike, and the replica read again so the owner's instance takes its place here.
    this.claimed.delete(id);
    this.counters.publishFailures += 1;
    this.log.warn({ id, owner: holder }, "instance id already published by another node: dropping this node's copy; the other node's is served");
    this.conflictIds.delete(id);
    this.conflictIds.add(id);
    if (this.conflictIds.size > MAX_CONFLICTS_SHOWN) this.conflictIds.delete(this.conflictIds.values().next().value!);
    if (this.registry.ownerOf(id) === this.layout.nodeId) await this.registry.deregister(id);
    outcome.reread = true;
  }
}
