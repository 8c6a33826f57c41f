// The key layout of one cluster in etcd (docs/cluster-design.md, "Key layout") and the records under it: node keys,
// instance keys and id claims, each parsed from a key or built for one. Pure.
import type { IKeyValue } from "etcd3";
import type { Logger } from "pino";
import { z } from "zod";
import { serviceEntrySchema, type ServiceEntry } from "../model/index.js";
import { parseJsonOrUndefined } from "../lib/json.js";

export const nodeRecordSchema = z.object({
  v: z.literal(1),
  nodeId: z.string(),
  apiUrl: z.string(),
  dns: z.string(),
  version: z.string(),
  startedAt: z.string(),
  state: z.enum(["up", "leaving"]),
});
export type NodeRecord = z.infer<typeof nodeRecordSchema>;

const serviceRecordSchema = z.object({ v: z.literal(1), entry: serviceEntrySchema });

/** A service's routing policy, the cluster's (no lease: it outlives the node that set it). */
export const routingRecordSchema = z.object({
  v: z.literal(1),
  split: z.array(z.object({ version: z.string(), weight: z.number().int() })),
  updatedAt: z.string(),
  /** The node that set it. */
  nodeId: z.string(),
});
export type RoutingRecord = z.infer<typeof routingRecordSchema>;

export type Key =
  | { kind: "node"; nodeId: string }
  | { kind: "service"; owner: string; id: string }
  | { kind: "claim"; id: string }
  | { kind: "routing"; name: string }
  | { kind: "other" };

/** One etcd event as the watch delivers it. */
export interface KeyEvent {
  type: "Put" | "Delete";
  kv: IKeyValue;
}

export class KeyLayout {
  /** This node's id as a claim's value. */
  readonly self: Buffer;

  constructor(
    readonly prefix: string,
    readonly nodeId: string,
  ) {
    this.self = Buffer.from(nodeId);
  }

  node(nodeId = this.nodeId): Buffer {
    return Buffer.from(`${this.prefix}/nodes/${nodeId}`);
  }

  /** The key of one of this node's instances. */
  service(id: string): Buffer {
    return Buffer.from(`${this.prefix}/services/${this.nodeId}/${id}`);
  }

  claim(id: string): Buffer {
    return Buffer.from(`${this.prefix}/ids/${id}`);
  }

  /** A service's routing policy: inside the replicated range ("routing/" sorts between "nodes/" and "services/"). */
  routing(name: string): Buffer {
    return Buffer.from(`${this.prefix}/routing/${name}`);
  }

  /** The prefix of this node's instance keys. */
  mine(): string {
    return `${this.prefix}/services/${this.nodeId}/`;
  }

  /**
   * [<p>/nodes/, end of <p>/services/): node keys and instance keys, not the id claims. "ids/" sorts before
   * "nodes/", so the claims (one per instance) stay out of the read and of the watch, which halves what every node
   * decodes per registration.
   */
  replicated(): { start: Buffer; end: Buffer } {
    return { start: Buffer.from(`${this.prefix}/nodes/`), end: prefixEnd(Buffer.from(`${this.prefix}/services/`)) };
  }

  parse(raw: Buffer): Key {
    const key = raw.toString();
    const rest = key.startsWith(`${this.prefix}/`) ? key.slice(this.prefix.length + 1) : "";
    const parts = rest.split("/");
    if (parts[0] === "nodes" && parts.length === 2) return { kind: "node", nodeId: parts[1]! };
    if (parts[0] === "services" && parts.length === 3) return { kind: "service", owner: parts[1]!, id: parts[2]! };
    if (parts[0] === "ids" && parts.length === 2) return { kind: "claim", id: parts[1]! };
    if (parts[0] === "routing" && parts.length === 2) return { kind: "routing", name: parts[1]! };
    return { kind: "other" };
  }
}

export function parseNode(kv: IKeyValue, log: Logger): NodeRecord | undefined {
  const parsed = nodeRecordSchema.safeParse(parseJsonOrUndefined(kv.value.toString()));
  if (!parsed.success) log.warn({ key: kv.key.toString() }, "ignoring a node key that is not a node record");
  return parsed.success ? parsed.data : undefined;
}

export function parseService(kv: IKeyValue, log: Logger): ServiceEntry | undefined {
  const parsed = serviceRecordSchema.safeParse(parseJsonOrUndefined(kv.value.toString()));
  if (!parsed.success) log.warn({ key: kv.key.toString(), error: parsed.error.issues[0]?.message }, "ignoring an instance key that does not hold a valid instance");
  return parsed.success ? (parsed.data.entry as ServiceEntry) : undefined;
}

export function parseRouting(kv: IKeyValue, log: Logger): RoutingRecord | undefined {
  const parsed = routingRecordSchema.safeParse(parseJsonOrUndefined(kv.value.toString()));
  if (!parsed.success) log.warn({ key: kv.key.toString(), error: parsed.error.issues[0]?.message }, "ignoring a routing key that does not hold a routing policy");
  return parsed.success ? parsed.data : undefined;
}

/** The end of a prefix range: the prefix with its last byte incremented (etcd's clientv3.GetPrefixRangeEnd). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
