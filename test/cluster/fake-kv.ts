// An etcd-shaped key space in memory for the cluster's pure machines: revisions, leases, and the txn subset the
// publisher uses (compare a key's value or its create revision; put, delete and range one key), with etcd's
// semantics for those. The real etcd is in the e2e suite (cluster.test.ts, faults.test.ts); this is what lets the
// publisher's and the replica's decisions be tested in milliseconds.
import type { ICompare, IKeyValue, IRequestOp, IResponseOp, ITxnRequest, ITxnResponse } from "etcd3";
import type { KeyEvent } from "../../src/cluster/keys.js";
import type { PublishKv } from "../../src/cluster/publisher.js";

interface Stored {
  value: Buffer;
  lease: string;
  create: number;
  mod: number;
  version: number;
}

export class FakeKv implements PublishKv {
  revision = 1;
  private readonly store = new Map<string, Stored>();
  /** Every txn sent, in order. */
  readonly txns: ITxnRequest[] = [];
  /** Events since the last `drain`, as a watch from the start would deliver them. */
  private events: KeyEvent[] = [];
  /** Set to fail every call with this error (etcd gone). */
  down: Error | undefined;

  async txn(req: ITxnRequest): Promise<ITxnResponse> {
    if (this.down) throw this.down;
    this.txns.push(req);
    const succeeded = (req.compare ?? []).every((c) => this.holds(c));
    const ops = (succeeded ? req.success : req.failure) ?? [];
    const wrote = ops.some((op) => op.request_put || op.request_delete_range);
    if (wrote) this.revision += 1;
    const responses = ops.map((op) => this.run(op));
    return { header: this.header(), succeeded, responses };
  }

  /** A write from outside the publisher (another node, or an operator). */
  put(key: string, value: string, lease = "0"): void {
    this.revision += 1;
    this.write(key, Buffer.from(value), lease);
  }

  delete(key: string): void {
    this.revision += 1;
    this.remove(key);
  }

  /** A lease expires: all its keys go in one revision. */
  expire(lease: string): void {
    this.revision += 1;
    for (const [key, s] of [...this.store]) if (s.lease === lease) this.remove(key);
  }

  value(key: string): string | undefined {
    return this.store.get(key)?.value.toString();
  }

  leaseOf(key: string): string | undefined {
    return this.store.get(key)?.lease;
  }

  /** Every key under a prefix, sorted, as a range returns them. */
  range(prefix: string): IKeyValue[] {
    return [...this.store.keys()].filter((k) => k.startsWith(prefix)).sort().map((k) => this.kv(k));
  }

  keys(prefix = ""): string[] {
    return this.range(prefix).map((kv) => kv.key.toString());
  }

  /** The events since the last drain, like one watch response. */
  drain(): KeyEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }

  private holds(c: ICompare): boolean {
    const s = this.store.get(c.key!.toString());
    if (c.target === "Create" && c.result === "Equal") return (s?.create ?? 0) === Number(c.create_revision);
    if (c.target === "Value" && c.result === "Equal") return s !== undefined && s.value.equals(c.value!);
    throw new Error(`compare not modelled: ${JSON.stringify(c)}`);
  }

  private run(op: IRequestOp): IResponseOp {
    const out = {} as IResponseOp;
    if (op.request_put) this.write(op.request_put.key!.toString(), op.request_put.value!, String(op.request_put.lease ?? "0"));
    else if (op.request_delete_range) {
      if (op.request_delete_range.range_end) throw new Error("range deletes not modelled");
      this.remove(op.request_delete_range.key!.toString());
    } else if (op.request_range) {
      const key = op.request_range.key!.toString();
      out.response_range = { header: this.header(), kvs: this.store.has(key) ? [this.kv(key)] : [], more: false, count: this.store.has(key) ? "1" : "0" };
    } else throw new Error("op not modelled");
    return out;
  }

  private write(key: string, value: Buffer, lease: string): void {
    const before = this.store.get(key);
    this.store.set(key, { value, lease, create: before?.create ?? this.revision, mod: this.revision, version: (before?.version ?? 0) + 1 });
    this.events.push({ type: "Put", kv: this.kv(key) });
  }

  private remove(key: string): void {
    if (!this.store.delete(key)) return;
    this.events.push({ type: "Delete", kv: { key: Buffer.from(key), value: Buffer.alloc(0), lease: "0", create_revision: "0", mod_revision: String(this.revision), version: "0" } });
  }

  private kv(key: string): IKeyValue {
    const s = this.store.get(key)!;
    return { key: Buffer.from(key), value: s.value, lease: s.lease, create_revision: String(s.create), mod_revision: String(s.mod), version: String(s.version) };
  }

  private header() {
    return { cluster_id: "1", member_id: "1", revision: String(this.revision), raft_term: "1" };
  }
}
