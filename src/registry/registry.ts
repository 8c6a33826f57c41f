// THE CORE: instances by id, indexes by name, tag, node, health and metadata pair so a query costs what it returns, a
// generation counter and a change feed. Writes are serialised and reach the store before memory changes. In cluster
// mode it also holds the other nodes' instances (the replica): indexed and answered like local ones, never stored
// here, never checked here, and never written here (they are written on their owner).
import type { Logger } from "pino";
import type { Clock } from "../lib/clock.js";
import { ConflictError, InvalidError, NotFoundError } from "../lib/errors.js";
import type { Store, StoreMutation } from "../store/index.js";
import { compareEntries, matches, type CompiledQuery } from "./query.js";
import { carryHealth, freezeEntry, hasCheck, HEALTH_STATUSES, newEntry, sameCheck, uncheckedEntry, type EntrySource, type HealthStatus, type ParsedServiceInput, type ServiceEntry } from "../model/index.js";

/**
 * "checked": a check ran and its status did not change (only lastHealthCheck moved).
 * "replica": another node's instance arrived, changed or left (cluster mode).
 */
export type ChangeCause = "register" | "deregister" | "health" | "checked" | "maintenance" | "load" | "replica";

export interface RegistryChange {
  readonly id: string;
  readonly cause: ChangeCause;
  /** The entry before the change; undefined when it was added. */
  readonly before: ServiceEntry | undefined;
  /** The entry after the change; undefined when it was removed. */
  readonly after: ServiceEntry | undefined;
  /** A health change: the check output that turned it, when the checker gave one. */
  readonly reason?: string;
}

export type ChangeListener = (changes: readonly RegistryChange[], generation: number) => void;

/**
 * Sees a write when it is planned, before the store has it: what its ids will become (undefined: removed) and
 * a promise that settles when the write commits (or fails, and nothing changes). Cluster mode publishes here,
 * so the etcd round trip overlaps the local sync.
 */
export type PlannedListener = (view: ReadonlyMap<string, ServiceEntry | undefined>, outcome: Promise<unknown>) => void;

export type WriteOp =
  | { readonly op: "register"; readonly input: ParsedServiceInput; readonly source?: EntrySource }
  | { readonly op: "deregister"; readonly id: string }
  /** reason undefined turns maintenance off. */
  | { readonly op: "maintenance"; readonly id: string; readonly reason: string | undefined }
  /** An entry put back exactly as a snapshot holds it (registeredAt, maintenance kept): PUT /v1/snapshot. */
  | { readonly op: "restore"; readonly entry: ServiceEntry };

/** One change to another node's instance, from the cluster replica; entry undefined removes it. */
export interface RemoteUpdate {
  readonly id: string;
  readonly owner: string;
  readonly entry: ServiceEntry | undefined;
}

export interface WriteItemError {
  readonly index: number;
  readonly id: string;
  readonly code: string;
  readonly message: string;
}

/** A batch that was refused as a whole; `items` says which entries were wrong and why. */
export class BatchError extends InvalidError {
  constructor(readonly items: WriteItemError[], total: number) {
    super(`bulk request rejected: ${items.length} of ${total} items failed; nothing was applied`, undefined, { items });
    this.name = "BatchError";
  }
}

/** Bounds on what the registry holds, so memory, disk and DNS answers stay bounded; a write past one is refused. */
export interface RegistryLimits {
  /** Instances known in all (this node's and, in cluster mode, the replica's). */
  maxInstances: number;
  /** Instances of one service name. */
  maxInstancesPerName: number;
  /** UTF-8 bytes of one instance's metadata keys and values together. */
  maxMetadataBytes: number;
}

export const DEFAULT_REGISTRY_LIMITS: RegistryLimits = { maxInstances: 100_000, maxInstancesPerName: 5_000, maxMetadataBytes: 16_384 };

export interface RegistryOptions {
  store: Store;
  clock: Clock;
  /** The node id given to instances registered without one. */
  nodeId: string;
  logger?: Logger;
  limits?: Partial<RegistryLimits>;
}

/**
 * ids by key. A key holds the bare id while it has one, then an array that ids are pushed onto, and becomes a Set
 * the first time it is read or an id leaves it (kept from then on). Loading 100k instances at restart was mostly
 * growing Sets one id at a time: pushing is ~3x cheaper, and a Set built from an array ~2x (measured).
 */
class SetIndex {
  private readonly sets = new Map<string, string | string[] | Set<string>>();
  add(key: string, id: string): void {
    const cur = this.sets.get(key);
    if (cur === undefined) this.sets.set(key, id);
    else if (typeof cur === "string") {
      if (cur !== id) this.sets.set(key, [cur, id]);
    } else if (Array.isArray(cur)) cur.push(id);
    else cur.add(id);
  }
  remove(key: string, id: string): void {
    const cur = this.sets.get(key);
    if (cur === undefined) return;
    if (typeof cur === "string") {
      if (cur === id) this.sets.delete(key);
      return;
    }
    const set = this.asSet(key, cur);
    set.delete(id);
    if (set.size === 0) this.sets.delete(key);
  }
  get(key: string): ReadonlySet<string> | undefined {
    const cur = this.sets.get(key);
    return cur === undefined ? undefined : this.asSet(key, cur);
  }
  keys(): IterableIterator<string> {
    return this.sets.keys();
  }
  size(key: string): number {
    const cur = this.sets.get(key);
    return cur === undefined ? 0 : typeof cur === "string" ? 1 : this.asSet(key, cur).size;
  }
  /** The ids as a Set, made (and kept) from the bare id or the array on first need. */
  private asSet(key: string, cur: string | string[] | Set<string>): Set<string> {
    if (cur instanceof Set) return cur;
    const set = typeof cur === "string" ? new Set([cur]) : new Set(cur);
    this.sets.set(key, set);
    return set;
  }
}

/** ids by metadata key, then value: no joined key string to build (and hash) per pair. */
class MetaIndex {
  private readonly byKey = new Map<string, SetIndex>();
  add(key: string, value: string, id: string): void {
    let values = this.byKey.get(key);
    if (values === undefined) this.byKey.set(key, (values = new SetIndex()));
    values.add(value, id);
  }
  remove(key: string, value: string, id: string): void {
    this.byKey.get(key)?.remove(value, id);
  }
  get(key: string, value: string): ReadonlySet<string> | undefined {
    return this.byKey.get(key)?.get(value);
  }
}

const EMPTY: ReadonlySet<string> = new Set();

interface Plan {
  readonly view: Map<string, ServiceEntry | undefined>;
  readonly mutations: StoreMutation[];
  readonly causes: Map<string, ChangeCause>;
}

export class Registry {
  private readonly byId = new Map<string, ServiceEntry>();
  private readonly byName = new SetIndex();
  private readonly byTag = new SetIndex();
  private readonly byNode = new SetIndex();
  private readonly byHealth = new SetIndex();
  private readonly byAddress = new SetIndex();
  private readonly byMeta = new MetaIndex();
  private readonly listeners = new Set<ChangeListener>();
  private readonly plannedListeners = new Set<PlannedListener>();
  /** The owner node of every instance another node registered (the replica); local instances are not in it. */
  private readonly owners = new Map<string, string>();
  /** Memory follows the store in the order writes were made: each commit waits for the one before. */
  private commitTail: Promise<unknown> = Promise.resolve();
  /** What writes in flight (sent to the store, not yet acknowledged) will make of their ids. */
  private readonly pending = new Map<string, { entry: ServiceEntry | undefined; plan: Plan }>();
  private gen = 0;

  private readonly limits: RegistryLimits;

  constructor(private readonly opts: RegistryOptions) {
    this.limits = { ...DEFAULT_REGISTRY_LIMITS, ...opts.limits };
  }

  get generation(): number {
    return this.gen;
  }
  get size(): number {
    return this.byId.size;
  }
  get nodeId(): string {
    return this.opts.nodeId;
  }
  get storeKind(): string {
    return this.opts.store.kind;
  }

  get(id: string): ServiceEntry | undefined {
    return this.byId.get(id);
  }

  /** The node that owns an instance: this node for local ones, undefined when it is not registered. */
  ownerOf(id: string): string | undefined {
    return this.owners.get(id) ?? (this.byId.has(id) ? this.opts.nodeId : undefined);
  }

  /** Instances registered on this node (not the replica's). */
  get localSize(): number {
    return this.byId.size - this.owners.size;
  }

  *localValues(): IterableIterator<ServiceEntry> {
    for (const entry of this.byId.values()) if (!this.owners.has(entry.id)) yield entry;
  }

  /** The replica's instances: id -> owner node. */
  remoteOwners(): ReadonlyMap<string, string> {
    return this.owners;
  }

  /**
   * Applies changes to other nodes' instances (cluster replica) in memory only, as one change event. A local
   * instance (or one being written here) always wins over a remote one with the same id; a removal only applies
   * to the owner that published it (an id that moved to another owner stays).
   */
  applyRemote(updates: readonly RemoteUpdate[]): RegistryChange[] {
    const changes: RegistryChange[] = [];
    for (const { id, owner, entry } of updates) {
      if (owner === this.opts.nodeId || this.pending.has(id)) continue;
      const before = this.byId.get(id);
      const currentOwner = this.owners.get(id);
      if (before !== undefined && currentOwner === undefined) continue; // ours
      if (entry === undefined) {
        if (before === undefined || currentOwner !== owner) continue;
        this.remove(before);
        this.owners.delete(id);
        changes.push({ id, cause: "replica", before, after: undefined });
      } else {
        const after = freezeEntry({ ...entry, metadata: { ...entry.metadata }, tags: [...entry.tags] });
        this.put(after, before);
        this.owners.set(id, owner);
        changes.push({ id, cause: "replica", before, after });
      }
    }
    this.emit(changes);
    return changes;
  }

  values(): IterableIterator<ServiceEntry> {
    return this.byId.values();
  }

  /** Whether any instance (local or replica) has this name. */
  hasName(name: string): boolean {
    return this.byName.size(name) > 0;
  }

  /** Instances of a service, in any health, unordered. */
  instancesOf(name: string): ServiceEntry[] {
    return this.resolve(this.byName.get(name));
  }
  /** Instances registered on a node, in any health, unordered. */
  instancesOnNode(nodeId: string): ServiceEntry[] {
    return this.resolve(this.byNode.get(nodeId));
  }
  /** Instances at an address (as normalised by the schema), in any health, unordered. */
  instancesAt(address: string): ServiceEntry[] {
    return this.resolve(this.byAddress.get(address));
  }

  private resolve(ids: ReadonlySet<string> | undefined): ServiceEntry[] {
    const out: ServiceEntry[] = [];
    if (ids !== undefined) for (const id of ids) out.push(this.byId.get(id)!);
    return out;
  }

  /** Names of every registered service, sorted. */
  serviceNames(): string[] {
    return [...this.byName.keys()].sort();
  }

  countsByHealth(): Record<HealthStatus, number> {
    const counts = {} as Record<HealthStatus, number>;
    for (const status of HEALTH_STATUSES) counts[status] = this.byHealth.size(status);
    return counts;
  }

  /** Loads what the store holds. Restored instances with checks start `unknown` until they are checked again. */
  async load(): Promise<number> {
    const stored = await this.opts.store.load();
    const changes: RegistryChange[] = [];
    for (const raw of stored) {
      const entry = freezeEntry(hasCheck(raw) ? uncheckedEntry(raw) : raw);
      const before = this.byId.get(entry.id);
      this.put(entry, before);
      changes.push({ id: entry.id, cause: "load", before, after: entry });
    }
    if (changes.length > 0) this.emit(changes);
    return changes.length;
  }

  /** The entries a compiled query matches, in stable order. Starts from the smallest index the query names. */
  query(q: CompiledQuery): ServiceEntry[] {
    let candidates: ReadonlySet<string> | undefined;
    const consider = (set: ReadonlySet<string> | undefined) => {
      const s = set ?? EMPTY;
      if (candidates === undefined || s.size < candidates.size) candidates = s;
    };
    if (q.name !== undefined) consider(this.byName.get(q.name));
    for (const tag of q.tags) consider(this.byTag.get(tag));
    if (q.nodeId !== undefined) consider(this.byNode.get(q.nodeId));
    if (q.healthStatus !== undefined) consider(this.byHealth.get(q.healthStatus));
    for (const [k, v] of q.metadata) consider(this.byMeta.get(k, v));

    const out: ServiceEntry[] = [];
    if (candidates === undefined) {
      for (const entry of this.byId.values()) if (matches(entry, q)) out.push(entry);
    } else {
      for (const id of candidates) {
        const entry = this.byId.get(id);
        if (entry !== undefined && matches(entry, q)) out.push(entry);
      }
    }
    return out.sort(compareEntries);
  }

  /** Registers or replaces one instance; past a limit, a ConflictError (or an InvalidError for its metadata). */
  async register(input: ParsedServiceInput): Promise<ServiceEntry> {
    try {
      const [result] = await this.write([{ op: "register", input }]);
      return result!.after!;
    } catch (err) {
      const item = err instanceof BatchError && err.items.length === 1 ? err.items[0]! : undefined;
      if (item?.code === "limit") throw new ConflictError(item.message, { code: item.code });
      if (item?.code === "invalid") throw new InvalidError(`invalid service: ${item.message}`);
      throw err;
    }
  }

  /** Removes an instance; NotFoundError if it is not registered. */
  async deregister(id: string): Promise<ServiceEntry> {
    return (await this.writeOne({ op: "deregister", id })).before!;
  }

  /** A single-op write on an existing instance: its one way to fail the batch is not being registered. */
  private async writeOne(op: WriteOp & { id: string }): Promise<RegistryChange> {
    try {
      const [change] = await this.write([op]);
      return change!;
    } catch (err) {
      if (err instanceof BatchError) {
        const item = err.items[0];
        if (item?.code === "owned_elsewhere") throw new ConflictError(item.message, { code: item.code });
        throw new NotFoundError(`service ${op.id} is not registered`);
      }
      throw err;
    }
  }

  /**
   * Applies a batch all-or-nothing: every op is checked against the state the previous ops leave, the store
   * takes the whole batch, then memory changes and one change event goes out for the batch.
   */
  write(ops: readonly WriteOp[]): Promise<RegistryChange[]> {
    let plan: Plan;
    try {
      plan = this.plan(ops);
    } catch (err) {
      return Promise.reject(err);
    }
    for (const [id, entry] of plan.view) this.pending.set(id, { entry, plan });
    // Sent to the store at once, so concurrent writes can share one sync (group commit); memory changes
    // when the store has it, in the order of the writes.
    const durable = this.opts.store.apply(plan.mutations);
    const done = this.commitTail.then(() => durable).then(
      () => this.commit(plan),
      (err: unknown) => {
        this.settle(plan);
        throw err;
      },
    );
    this.commitTail = done.catch(() => undefined);
    for (const listener of this.plannedListeners) {
      try {
        listener(plan.view, done);
      } catch (err) {
        this.opts.logger?.error({ err }, "planned-write listener failed");
      }
    }
    return done;
  }

  /** Checks every op against the state the writes before it (in flight or done) leave, and builds the mutations. */
  private plan(ops: readonly WriteOp[]): Plan {
    const now = new Date(this.opts.clock.now()).toISOString();
    const view = new Map<string, ServiceEntry | undefined>();
    const current = (id: string) => {
      if (view.has(id)) return view.get(id);
      const inFlight = this.pending.get(id);
      return inFlight !== undefined ? inFlight.entry : this.byId.get(id);
    };
    /** Another node's instance, not being taken over by a write in flight: only its owner may change it. */
    const foreign = (index: number, id: string): boolean => {
      const owner = view.has(id) || this.pending.has(id) ? undefined : this.owners.get(id);
      if (owner !== undefined) errors.push({ index, id, code: "owned_elsewhere", message: `service ${id} is registered on node ${owner}: write it there` });
      return owner !== undefined;
    };
    const errors: WriteItemError[] = [];
    const mutations: StoreMutation[] = [];
    const causes = new Map<string, ChangeCause>();
    const limit = this.limitCheck(current);
    ops.forEach((op, index) => {
      if (op.op === "restore") {
        if (foreign(index, op.entry.id)) return;
        const refused = limit({ ...op.entry, metadata: { ...op.entry.metadata } } as ParsedServiceInput);
        if (refused !== undefined) {
          errors.push({ index, id: op.entry.id, ...refused });
          return;
        }
        // Health is the checker's to re-establish, as after a restart (load): kept only where the check is the same.
        const before = current(op.entry.id);
        const fresh = freezeEntry(hasCheck(op.entry) ? uncheckedEntry(op.entry) : { ...op.entry });
        const entry = before !== undefined && sameCheck(before, fresh) ? carryHealth(fresh, before) : fresh;
        view.set(entry.id, entry);
        causes.set(entry.id, "register");
        mutations.push({ op: "put", entry });
      } else if (op.op === "register") {
        const refused = limit(op.input);
        if (refused !== undefined) {
          errors.push({ index, id: op.input.id, ...refused });
          return;
        }
        const entry = newEntry(op.input, { nodeId: this.opts.nodeId, now, before: current(op.input.id), source: op.source });
        view.set(entry.id, entry);
        causes.set(entry.id, "register");
        mutations.push({ op: "put", entry });
      } else if (foreign(index, op.id)) {
        return;
      } else if (op.op === "maintenance") {
        const before = current(op.id);
        if (before === undefined) {
          errors.push({ index, id: op.id, code: "not_found", message: `service ${op.id} is not registered` });
          return;
        }
        const { maintenance: _, ...rest } = before;
        const entry = freezeEntry(op.reason === undefined ? rest : { ...rest, maintenance: { reason: op.reason, since: now } });
        view.set(entry.id, entry);
        causes.set(entry.id, causes.get(entry.id) ?? "maintenance");
        mutations.push({ op: "put", entry });
      } else if (current(op.id) === undefined) {
        errors.push({ index, id: op.id, code: "not_found", message: `service ${op.id} is not registered` });
      } else {
        limit.removed(current(op.id)!);
        view.set(op.id, undefined);
        mutations.push({ op: "delete", id: op.id });
      }
    });
    if (errors.length > 0) throw new BatchError(errors, ops.length);
    return { view, mutations, causes };
  }

  /**
   * The limits, for the registrations of one batch in order: each one that would add an instance past a limit is
   * refused. Counts include writes in flight, so concurrent batches cannot pass a limit together.
   */
  private limitCheck(current: (id: string) => ServiceEntry | undefined): ((input: ParsedServiceInput) => { code: string; message: string } | undefined) & { removed(entry: ServiceEntry): void } {
    const { maxInstances, maxInstancesPerName, maxMetadataBytes } = this.limits;
    let total = this.byId.size;
    const perName = new Map<string, number>();
    const named = (name: string) => perName.get(name) ?? this.byName.size(name);
    // Writes in flight change the counts only when there are any; the common case reads two numbers.
    for (const { entry } of this.pending.values()) {
      if (entry === undefined) continue;
      const now = this.byId.get(entry.id);
      if (now === undefined) total += 1;
      if (now?.name !== entry.name) perName.set(entry.name, named(entry.name) + 1);
    }
    const check = (input: ParsedServiceInput) => {
      let bytes = 0;
      for (const key in input.metadata) bytes += Buffer.byteLength(key) + Buffer.byteLength(input.metadata[key]!);
      if (bytes > maxMetadataBytes) return { code: "invalid", message: `metadata: ${bytes} bytes of keys and values, more than the ${maxMetadataBytes} --max-metadata-bytes allows` };
      const before = current(input.id);
      if (before === undefined && total >= maxInstances) {
        return { code: "limit", message: `the registry holds ${total} instances, the most --max-instances allows: deregister some, or raise the limit` };
      }
      if (before?.name !== input.name && named(input.name) >= maxInstancesPerName) {
        return { code: "limit", message: `service ${input.name} has ${named(input.name)} instances, the most --max-instances-per-name allows` };
      }
      if (before === undefined) total += 1;
      if (before?.name !== input.name) perName.set(input.name, named(input.name) + 1);
      return undefined;
    };
    // An instance the same batch removes frees its place for the registrations after it (a restore removes first).
    const removed = (entry: ServiceEntry) => {
      total -= 1;
      perName.set(entry.name, named(entry.name) - 1);
    };
    return Object.assign(check, { removed });
  }

  private commit(plan: Plan): RegistryChange[] {
    this.settle(plan);
    const changes: RegistryChange[] = [];
    for (const [id, planned] of plan.view) {
      const before = this.byId.get(id);
      this.owners.delete(id); // a registration here takes over an instance the replica held
      if (planned === undefined) {
        if (before === undefined) continue; // registered then removed in the same batch
        this.remove(before);
        changes.push({ id, cause: "deregister", before, after: undefined });
      } else {
        // Health changes that landed while the store was writing are kept when the check did not change.
        const after = before !== undefined && sameCheck(before, planned) ? carryHealth(planned, before) : planned;
        this.put(after, before);
        changes.push({ id, cause: plan.causes.get(id) ?? "register", before, after });
      }
    }
    this.emit(changes);
    return changes;
  }

  /** Forgets a plan's pending state (unless a later write in flight has replaced it). */
  private settle(plan: Plan): void {
    for (const id of plan.view.keys()) if (this.pending.get(id)?.plan === plan) this.pending.delete(id);
  }

  /**
   * Records a health result, and with `checks` each check's (an entry with a list of checks). Not written to the
   * store: health is re-established by checks after a restart. Returns the new entry, or undefined if the instance is gone.
   */
  setHealth(id: string, status: HealthStatus, at: number = this.opts.clock.now(), checks?: ServiceEntry["checks"], reason?: string): ServiceEntry | undefined {
    const before = this.byId.get(id);
    if (before === undefined) return undefined;
    const after = freezeEntry({ ...before, healthStatus: status, lastHealthCheck: new Date(at).toISOString(), ...(checks && before.checks ? { checks } : {}) });
    // Only the health index can change: leave the others alone (checks run about a thousand times a second at 10k).
    this.byId.set(id, after);
    if (before.healthStatus !== status) {
      this.byHealth.remove(before.healthStatus, id);
      this.byHealth.add(status, id);
    }
    const cause = before.healthStatus === status ? "checked" : "health";
    this.emit([reason === undefined ? { id, cause, before, after } : { id, cause, before, after, reason }]);
    return after;
  }

  /** Puts an instance in maintenance (with a reason) or takes it out (undefined). Written to the store. */
  async setMaintenance(id: string, reason: string | undefined): Promise<ServiceEntry> {
    return (await this.writeOne({ op: "maintenance", id, reason })).after!;
  }

  /** Subscribes to planned writes (see PlannedListener); returns the unsubscribe function. */
  onPlanned(listener: PlannedListener): () => void {
    this.plannedListeners.add(listener);
    return () => this.plannedListeners.delete(listener);
  }

  /** Subscribes to the change feed; returns the unsubscribe function. Listeners run synchronously after each change. */
  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private put(entry: ServiceEntry, before: ServiceEntry | undefined): void {
    if (before !== undefined) this.unindex(before);
    this.byId.set(entry.id, entry);
    this.byName.add(entry.name, entry.id);
    for (const tag of entry.tags) this.byTag.add(tag, entry.id);
    this.byNode.add(entry.nodeId, entry.id);
    this.byHealth.add(entry.healthStatus, entry.id);
    this.byAddress.add(entry.address, entry.id);
    for (const k in entry.metadata) this.byMeta.add(k, entry.metadata[k]!, entry.id);
  }

  private remove(entry: ServiceEntry): void {
    this.unindex(entry);
    this.byId.delete(entry.id);
  }

  private unindex(entry: ServiceEntry): void {
    this.byName.remove(entry.name, entry.id);
    for (const tag of entry.tags) this.byTag.remove(tag, entry.id);
    this.byNode.remove(entry.nodeId, entry.id);
    this.byHealth.remove(entry.healthStatus, entry.id);
    this.byAddress.remove(entry.address, entry.id);
    for (const k in entry.metadata) this.byMeta.remove(k, entry.metadata[k]!, entry.id);
  }

  /**
   * A new generation for a change outside the entries (a routing policy): answers and indexes handed out before
   * it are older than it, though no entry changed, so the change listeners hear nothing. Returns the generation.
   */
  advance(): number {
    this.gen += 1;
    return this.gen;
  }

  private emit(changes: readonly RegistryChange[]): void {
    if (changes.length === 0) return;
    this.gen += 1;
    for (const listener of this.listeners) {
      try {
        listener(changes, this.gen);
      } catch (err) {
        // A broken subscriber must not undo or block a write that is already durable.
        this.opts.logger?.error({ err }, "change listener failed");
      }
    }
  }
}
