// Diagnosis (not a benchmark of ours): what one etcd txn costs the calling Node process in CPU, the txn a node
// publishes with (claim compare + 2 puts on a lease, 350-byte value), sequentially against a single etcd member,
// through a bare etcd3 client and through src/cluster/etcd.ts's client, alternating (the first pass of each warms up).
// Usage: node dist/bench/etcd-client-cpu.js [count=2000]
import { Etcd3 } from "etcd3";
import { connectEtcd } from "../src/cluster/etcd.js";
import { startEtcd } from "../test/cluster/etcd.js";
import { fmt, percentile } from "./stats.js";

const N = Number(process.argv[2] ?? 2000);
const etcd = await startEtcd({ members: 1 });
try {
  const bare = new Etcd3({ hosts: [etcd.endpoints[0]!] });
  const ours = connectEtcd({ endpoints: [etcd.endpoints[0]!], callTimeoutMs: 500 });
  const value = Buffer.from(JSON.stringify({ v: 1, pad: "x".repeat(350) }));
  for (const [name, client] of [["bare", bare], ["ours", ours], ["bare", bare], ["ours", ours]] as const) {
    const lease = await client.lease(30, { autoKeepAlive: false }).grant();
    const wall: number[] = [];
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < N; i++) {
      const t0 = performance.now();
      await client.kv.txn({
        compare: [{ key: Buffer.from(`/c/${name}-${i}-${Math.random()}`), target: "Create", result: "Equal", create_revision: 0 }],
        success: [
          { request_put: { key: Buffer.from(`/s/txn/${i}`), value, lease } },
          { request_put: { key: Buffer.from(`/c/${i}`), value: Buffer.from("a"), lease } },
        ],
      });
      wall.push(performance.now() - t0);
    }
    const cpu = process.cpuUsage(cpu0);
    console.log(`${name}: client CPU ${fmt((cpu.user + cpu.system) / N, 0)} µs per txn; round trip p50 ${fmt(percentile(wall, 50), 2)} ms, p99 ${fmt(percentile(wall, 99), 2)} ms`);
  }
  bare.close();
  ours.close();
} finally {
  await etcd.stop();
}
