// The etcd3 client as measured in docs/cluster-design.md: a deadline on every unary call (etcd3 sets none, and a
// put sent to a dead leader then stalls 7 s), a breaker that opens only when a member itself is gone (never on
// deadlines: during an election every member times out), a fast watch backoff, and gRPC keepalive at etcd's 5 s
// minimum (faster pings get the connection closed with too_many_pings).
import { ConsecutiveBreaker, ExponentialBackoff, circuitBreaker, handleWhen, noop, retry } from "cockatiel";
import { Etcd3, GRPCDeadlineExceededError, isRecoverableError, type IKeyValue, type IOptions } from "etcd3";
import { prefixEnd } from "./keys.js";

export interface EtcdConnection {
  endpoints: string[];
  /** Deadline of one unary call, ms. */
  callTimeoutMs: number;
  auth?: { username: string; password: string };
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
}

/** The member itself is gone (refused, reset, keepalive timeout): not a deadline, not etcd answering ("no leader"). */
const memberDown = (err: Error) =>
  isRecoverableError(err) && !(err instanceof GRPCDeadlineExceededError) && !err.message.includes("etcdserver:");

export function etcdOptions(conn: EtcdConnection): IOptions {
  const { tls } = conn;
  return {
    hosts: conn.endpoints,
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: deadlineIn(conn.callTimeoutMs) }),
    faultHandling: {
      // A breaker steers calls away from a dead member; with a single endpoint there is nowhere else to go, and an
      // open breaker only kept this node off etcd for 5 s after it came back (measured: 8 s to republish).
      host: () =>
        conn.endpoints.length > 1 ? circuitBreaker(handleWhen(memberDown), { halfOpenAfter: 5_000, breaker: new ConsecutiveBreaker(3) }) : noop,
      global: retry(handleWhen(isRecoverableError), { maxAttempts: 5, backoff: new ExponentialBackoff({ initialDelay: 20, maxDelay: 200 }) }),
      // etcd3 wants a backoff state (it calls .duration and .next() on it), not the factory.
      watchBackoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 1_000 }).next(),
    },
    grpcOptions: { "grpc.keepalive_time_ms": 5_000, "grpc.keepalive_timeout_ms": 2_000 },
    ...(conn.auth ? { auth: conn.auth } : {}),
    // Without a CA file grpc uses the system's roots (null), as it does for https:// endpoints anyway.
    ...(tls && (tls.ca || tls.cert)
      ? { credentials: { rootCertificate: (tls.ca ?? null) as Buffer, ...(tls.key ? { privateKey: tls.key } : {}), ...(tls.cert ? { certChain: tls.cert } : {}) } }
      : {}),
  };
}

/** A gRPC deadline `ms` from now: gRPC reads the wall clock, so this is the one place in cluster/ that does too. */
export function deadlineIn(ms: number): number {
  return Date.now() + ms;
}

export function connectEtcd(conn: EtcdConnection): Etcd3 {
  return new Etcd3(etcdOptions(conn));
}

const PAGE = 1_000;

/** Every key under a prefix (or up to `end`), in pages, all at the revision of the first page. */
export async function rangeAll(client: Etcd3, prefix: string, end?: Buffer): Promise<{ kvs: IKeyValue[]; revision: number }> {
  const key = Buffer.from(prefix);
  const rangeEnd = end ?? prefixEnd(key);
  const kvs: IKeyValue[] = [];
  let revision = 0;
  let from = key;
  for (;;) {
    const res = await client.kv.range({ key: from, range_end: rangeEnd, limit: PAGE, ...(revision ? { revision } : {}) });
    if (revision === 0) revision = Number(res.header.revision);
    kvs.push(...res.kvs);
    const last = res.kvs[res.kvs.length - 1];
    if (!res.more || last === undefined) break;
    from = Buffer.concat([last.key, Buffer.from([0])]);
  }
  return { kvs, revision };
}
