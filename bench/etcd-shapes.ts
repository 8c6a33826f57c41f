// Diagnosis (not a benchmark of ours): etcd put -> watch latency, member 1 -> member 2 of a 3-member cluster, for
// a plain put and for the txn a node publishes with (claim compare + 2 puts on a lease), each through a bare
// etcd3 client and through the client as src/cluster/etcd.ts configures it (deadline, retry policy). Alternating.
// Usage: node dist/bench/etcd-shapes.js [count=400] [own-watch]   (own-watch: member 1 also watches the range,
// as a node watches its own writes)
import { Etcd3 } from "etcd3";
import { connectEtcd } from "../src/cluster/etcd.js";
import { startEtcd } from "../test/cluster/etcd.js";
import { fmt, percentile } from "./stats.js";

const N = Number(process.argv[2] ?? 400);
const etcd = await startEtcd({ members: 3, heartbeatMs: 100, electionMs: 1000 });
try {
  const reader = new Etcd3({ hosts: [etcd.endpoints[1]!] });
  const watcher = await reader.watch().prefix("/s/").create();
  const waiters = new Map<string, (t: number) => void>();
  watcher.on("put", (kv) => waiters.get(kv.key.toString())?.(performance.now()));
  const bare = new Etcd3({ hosts: [etcd.endpoints[0]!] });
  const ours = connectEtcd({ endpoints: [etcd.endpoints[0]!], callTimeoutMs: 500 });
  const lease = await ours.lease(10, { autoKeepAlive: false }).grant();
  const value = Buffer.from(JSON.stringify({ v: 1, pad: "x".repeat(350) }));
  type Shape = (c: Etcd3, i: number) => Promise<unknown>;
  const shapes: Record<string, Shape> = {
    "put": (c, i) => c.put(`/s/put/${i}`).value(value).exec(),
    "txn claim+2 puts, lease": (c, i) =>
      c.kv.txn({
        compare: [{ key: Buffer.from(`/c/${i}-${Math.random()}`), target: "Create", result: "Equal", create_revision: 0 }],
        success: [
          { request_put: { key: Buffer.from(`/s/txn/${i}`), value, lease } },
          { request_put: { key: Buffer.from(`/c/${i}`), value: Buffer.from("a"), lease } },
        ],
      }),
  };
  const lat: Record<string, number[]> = {};
  // The writer's own member also watching the range, as a node does (it sees its own writes).
  const own = process.argv[3] === "own-watch" ? await ours.watch().prefix("/s/").create() : undefined;
  own?.on("put", () => undefined);
  for (let i = 0; i < N; i++) {
    for (const [name, shape] of Object.entries(shapes)) {
      for (const [cname, client] of [["bare", bare], ["ours", ours]] as const) {
        const key = name === "put" ? `/s/put/${cname}-${i}` : `/s/txn/${cname}-${i}`;
        const seen = new Promise<number>((r) => waiters.set(key, r));
        const t0 = performance.now();
        await shape(client, name === "put" ? (`${cname}-${i}` as never) : (`${cname}-${i}` as never));
        const t = await seen;
        (lat[`${cname} ${name}`] ??= []).push(t - t0);
      }
    }
  }
  for (const [k, v] of Object.entries(lat)) console.log(`${k}: p50 ${fmt(percentile(v, 50), 2)} p90 ${fmt(percentile(v, 90), 2)} p99 ${fmt(percentile(v, 99), 2)} ms`);
  await own?.cancel();
  await watcher.cancel();
  bare.close();
  ours.close();
  reader.close();
} finally {
  await etcd.stop();
}
