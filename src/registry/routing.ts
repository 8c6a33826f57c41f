// The routing policies (issue 21): one per service name at most, set through the API, read by every answer that
// routes (model/routing.ts says how). Durable beside the store's journal when the registry is on disk
// (routing.json, replaced atomically: written to a temporary file, synced, renamed, the directory synced), in
// memory otherwise. A change is acknowledged once durable, and told to listeners (the DNS drops the answers of
// that name) before set() resolves: after the call returns, no answer routes by the old policy.
import { open, readFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { UnavailableError } from "../lib/errors.js";
import { parseOrThrow, routingPolicySchema, type RolloutRecord, type RoutingPolicy } from "../model/index.js";

export const ROUTING_FILE = "routing.json";
const FORMAT = 1;

export interface StoredPolicy extends RoutingPolicy {
  /** When it was set, ISO 8601. */
  readonly updatedAt: string;
  /** The rollout that set it, or the last one (completed, rolled back, cancelled): registry/rollout.ts. */
  readonly rollout?: RolloutRecord;
}

export class RoutingTable {
  private readonly policies = new Map<string, StoredPolicy>();
  /** The policies as the writes made so far leave them, durable or not yet: what the next file holds. */
  private intended = new Map<string, StoredPolicy>();
  private readonly listeners = new Set<(name: string) => void>();
  /** Writes one at a time, in order: each file holds every policy as of its write. */
  private writing: Promise<void> = Promise.resolve();
  /** Cluster mode: where a change made here goes first, for every node (etcd); it throws when it cannot. */
  private publish: ((changes: readonly (readonly [string, StoredPolicy | undefined])[]) => Promise<void>) | undefined;

  /** `dir`: where routing.json lives (the store's data directory); undefined keeps policies in memory only. */
  constructor(private readonly dir: string | undefined) {}

  get file(): string | undefined {
    return this.dir === undefined ? undefined : join(this.dir, ROUTING_FILE);
  }

  /** Reads routing.json, if there is one: a file that cannot be read stops the start, as the store's would. */
  async load(): Promise<number> {
    if (this.file === undefined) return 0;
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
      throw err;
    }
    let doc: { format?: unknown; policies?: Record<string, StoredPolicy> };
    try {
      doc = JSON.parse(text) as typeof doc;
    } catch (err) {
      throw new Error(`${this.file}: not JSON (${(err as Error).message})`, { cause: err });
    }
    if (doc.format !== FORMAT || typeof doc.policies !== "object" || doc.policies === null) throw new Error(`${this.file}: not a routing file of format ${FORMAT}`);
    for (const [name, stored] of Object.entries(doc.policies)) {
      const policy = parseOrThrow(routingPolicySchema, { split: stored.split }, `routing policy of ${name} in ${this.file}`);
      const kept: StoredPolicy = { ...policy, updatedAt: String(stored.updatedAt), ...(stored.rollout !== undefined ? { rollout: stored.rollout } : {}) };
      this.policies.set(name, kept);
      this.intended.set(name, kept);
    }
    return this.policies.size;
  }

  get(name: string): StoredPolicy | undefined {
    return this.policies.get(name.toLowerCase());
  }

  all(): Record<string, StoredPolicy> {
    return Object.fromEntries([...this.policies].sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  get size(): number {
    return this.policies.size;
  }

  /**
   * Sets (or, with undefined, removes) a name's policy by hand; resolves once durable and told to listeners. A
   * rollout running for the name ends there (cancelled: the hand wins), and stays on record.
   */
  async set(name: string, input: unknown, now: Date = new Date()): Promise<StoredPolicy | undefined> {
    const key = name.toLowerCase();
    if (input === undefined) {
      if (!this.policies.has(key)) return undefined;
      await this.write(key, undefined);
      return undefined;
    }
    const policy = parseOrThrow(routingPolicySchema, input, "routing policy");
    const before = this.policies.get(key)?.rollout;
    const rollout: RolloutRecord | undefined = before?.state === "running" ? endedByHand(before, now) : before;
    return this.write(key, { split: policy.split.map((s) => ({ version: s.version, weight: s.weight })), updatedAt: now.toISOString(), ...(rollout !== undefined ? { rollout } : {}) });
  }

  /** Sets a name's policy and the rollout that put it there (a validated policy: the rollout's own). */
  setByRollout(name: string, policy: RoutingPolicy, rollout: RolloutRecord, now: Date): Promise<StoredPolicy | undefined> {
    return this.write(name.toLowerCase(), { split: policy.split.map((s) => ({ version: s.version, weight: s.weight })), updatedAt: now.toISOString(), rollout });
  }

  private async write(key: string, stored: StoredPolicy | undefined): Promise<StoredPolicy | undefined> {
    // Each file holds every write made before it, even those not yet durable: two writes at once both stay.
    const before = this.intended.get(key);
    if (stored === undefined) this.intended.delete(key);
    else this.intended.set(key, stored);
    try {
      await this.publish?.([[key, stored]]);
      await this.persist(new Map(this.intended));
    } catch (err) {
      if (this.intended.get(key) === stored) {
        if (before === undefined) this.intended.delete(key);
        else this.intended.set(key, before);
      }
      throw err;
    }
    if (stored === undefined) this.policies.delete(key);
    else this.policies.set(key, stored);
    for (const listener of this.listeners) listener(key);
    return stored;
  }

  /**
   * Replaces every policy at once (a snapshot restore): one durable write, then each name whose policy changed
   * told to listeners. Policies are checked first; a bad one changes nothing. The splits only: rollouts, running
   * or ended, are not restored (a running one here ends with its policy; start it again).
   */
  async replaceAll(input: Readonly<Record<string, { split: unknown; updatedAt?: unknown }>>): Promise<number> {
    const next = new Map<string, StoredPolicy>();
    for (const [name, stored] of Object.entries(input)) {
      const policy = parseOrThrow(routingPolicySchema, { split: stored.split }, `routing policy of ${name}`);
      next.set(name.toLowerCase(), { split: policy.split.map((s) => ({ version: s.version, weight: s.weight })), updatedAt: String(stored.updatedAt ?? new Date().toISOString()) });
    }
    const before = this.intended;
    this.intended = new Map(next);
    try {
      if (this.publish !== undefined) {
        // One transaction for the cluster: all the restored policies or none.
        const changes: (readonly [string, StoredPolicy | undefined])[] = [];
        for (const name of new Set([...before.keys(), ...next.keys()])) {
          const was = before.get(name);
          const now = next.get(name);
          if (was !== undefined && now !== undefined && sameSplit(was.split, now.split) && was.updatedAt === now.updatedAt) continue;
          changes.push([name, now]);
        }
        if (changes.length > 0) await this.publish(changes);
      }
      await this.persist(next);
    } catch (err) {
      if (this.intended.size === next.size && [...next].every(([k, v]) => this.intended.get(k) === v)) this.intended = before;
      throw err;
    }
    const changed = new Set([...this.policies.keys(), ...next.keys()]);
    this.policies.clear();
    for (const [name, policy] of next) this.policies.set(name, policy);
    for (const name of changed) for (const listener of this.listeners) listener(name);
    return next.size;
  }

  /** Cluster mode: changes made here are published through `publish` before they are kept or answered. */
  setPublisher(publish: (changes: readonly (readonly [string, StoredPolicy | undefined])[]) => Promise<void>): void {
    this.publish = publish;
  }

  /** The names with a policy (or one being written). */
  names(): string[] {
    return [...this.intended.keys()];
  }

  /**
   * A policy as the cluster holds it, set on another node (or this one's, echoed back): kept and told to
   * listeners, not published again. A rollout running here for the name ends (the other node's write wins).
   */
  applyRemote(name: string, policy: { split: { version: string; weight: number }[]; updatedAt: string } | undefined): void {
    const key = name.toLowerCase();
    const mine = this.intended.get(key);
    if (policy === undefined ? mine === undefined : mine !== undefined && mine.updatedAt === policy.updatedAt && sameSplit(mine.split, policy.split)) return;
    let stored: StoredPolicy | undefined;
    if (policy !== undefined) {
      const parsed = routingPolicySchema.safeParse({ split: policy.split });
      if (!parsed.success) return;
      const r = mine?.rollout;
      const rollout = r?.state === "running" ? { ...endedByHand(r, new Date(policy.updatedAt)), reason: "the policy was set on another node" } : r;
      stored = { split: parsed.data.split.map((s) => ({ version: s.version, weight: s.weight })), updatedAt: policy.updatedAt, ...(rollout !== undefined ? { rollout } : {}) };
      this.intended.set(key, stored);
      this.policies.set(key, stored);
    } else {
      this.intended.delete(key);
      this.policies.delete(key);
    }
    // This node's copy on disk follows (a restart reads the cluster's again anyway): a failure is not the cluster's.
    void this.persist(new Map(this.intended)).catch(() => undefined);
    for (const listener of this.listeners) listener(key);
  }

  onChange(listener: (name: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private persist(policies: ReadonlyMap<string, StoredPolicy>): Promise<void> {
    const file = this.file;
    if (file === undefined || this.dir === undefined) return Promise.resolve();
    const dir = this.dir;
    const text = `${JSON.stringify({ format: FORMAT, policies: Object.fromEntries(policies) }, null, 2)}\n`;
    const write = this.writing.then(async () => {
      const tmp = `${file}.tmp`;
      const handle = await open(tmp, "w", 0o600);
      try {
        await handle.writeFile(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, file);
      const d = await open(dir, "r");
      try {
        await d.sync();
      } finally {
        await d.close();
      }
    });
    this.writing = write.catch(() => undefined);
    return write.catch((err: unknown) => {
      throw new UnavailableError(`routing policy not saved: ${(err as Error).message}`);
    });
  }
}

function endedByHand(r: RolloutRecord, now: Date): RolloutRecord {
  const { nextAt: _nextAt, ...rest } = r;
  return { ...rest, state: "cancelled", endedAt: now.toISOString(), reason: "the policy was set by hand" };
}

function sameSplit(a: readonly { version: string; weight: number }[], b: readonly { version: string; weight: number }[]): boolean {
  return a.length === b.length && a.every((s, i) => s.version === b[i]!.version && s.weight === b[i]!.weight);
}
