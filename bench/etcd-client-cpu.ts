// Diagnosis (not a benchmark of ours): what one etcd txn costs the calling Node process in CPU, the txn a node
// publishes with (claim compare + 2 puts on a lease, 350-byte value), sequentially against a single etcd member,
// through a bare etcd3 client, through src/cluster/etcd.ts's client, and through a bare gRPC call (Node's http2
// and protobufjs on etcd3's own .proto files: what a lean client for this one call would cost), alternating
// (the first pass of each warms up). Usage: node dist/bench/etcd-client-cpu.js [count=2000]
import { connect } from "node:http2";
import { createRequire } from "node:module";
import { Etcd3 } from "etcd3";
import protobuf from "protobufjs";
import { connectEtcd } from "../src/cluster/etcd.js";
import { startEtcd } from "../test/cluster/etcd.js";
import { fmt, percentile } from "./stats.js";

const N = Number(process.argv[2] ?? 2000);

/** One unary gRPC call per http2 stream: 5-byte length prefix, grpc-status in the trailers. */
function bareGrpc(endpoint: string) {
  const proto = protobuf.loadSync(createRequire(import.meta.url).resolve("etcd3/proto/rpc.proto"));
  const request = proto.lookupType("etcdserverpb.TxnRequest");
  const response = proto.lookupType("etcdserverpb.TxnResponse");
  const session = connect(endpoint);
  const call = (bytes: Uint8Array) =>
    new Promise<Buffer>((resolve, reject) => {
      const stream = session.request({ ":method": "POST", ":path": "/etcdserverpb.KV/Txn", "content-type": "application/grpc", te: "trailers", "grpc-timeout": "500m" });
      const chunks: Buffer[] = [];
      let status: string | undefined;
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("trailers", (trailers) => (status = String(trailers["grpc-status"])));
      stream.on("error", reject);
      stream.on("end", () => (status === "0" ? resolve(Buffer.concat(chunks).subarray(5)) : reject(new Error(`grpc-status ${status}`))));
      const frame = Buffer.allocUnsafe(5 + bytes.length);
      frame[0] = 0;
      frame.writeUInt32BE(bytes.length, 1);
      frame.set(bytes, 5);
      stream.end(frame);
    });
  return {
    async txn(req: object): Promise<{ succeeded: boolean }> {
      const res = response.decode(await call(request.encode(request.fromObject(req)).finish())) as unknown as { succeeded: boolean };
      if (!res.succeeded) throw new Error("txn did not succeed");
      return res;
    },
    close: () => session.close(),
  };
}

const etcd = await startEtcd({ members: 1 });
try {
  const bare = new Etcd3({ hosts: [etcd.endpoints[0]!] });
  const ours = connectEtcd({ endpoints: [etcd.endpoints[0]!], callTimeoutMs: 500 });
  const grpc = bareGrpc(etcd.endpoints[0]!);
  const value = Buffer.from(JSON.stringify({ v: 1, pad: "x".repeat(350) }));
  const lease = await bare.lease(30, { autoKeepAlive: false }).grant();
  const viaEtcd3 = (client: Etcd3) => (i: number) =>
    client.kv.txn({
      compare: [{ key: Buffer.from(`/c/${i}-${Math.random()}`), target: "Create", result: "Equal", create_revision: 0 }],
      success: [
        { request_put: { key: Buffer.from(`/s/txn/${i}`), value, lease } },
        { request_put: { key: Buffer.from(`/c/${i}`), value: Buffer.from("a"), lease } },
      ],
    });
  const viaGrpc = (i: number) =>
    grpc.txn({
      compare: [{ key: Buffer.from(`/c/${i}-${Math.random()}`), target: "Create", result: "EQUAL", createRevision: 0 }],
      success: [
        { requestPut: { key: Buffer.from(`/s/txn/${i}`), value, lease } },
        { requestPut: { key: Buffer.from(`/c/${i}`), value: Buffer.from("a"), lease } },
      ],
    });
  const runs = [["bare etcd3", viaEtcd3(bare)], ["our client", viaEtcd3(ours)], ["bare gRPC (http2 + protobufjs)", viaGrpc]] as const;
  for (const [name, txn] of [...runs, ...runs]) {
    const wall: number[] = [];
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < N; i++) {
      const t0 = performance.now();
      await txn(i);
      wall.push(performance.now() - t0);
    }
    const cpu = process.cpuUsage(cpu0);
    console.log(`${name}: client CPU ${fmt((cpu.user + cpu.system) / N, 0)} µs per txn; round trip p50 ${fmt(percentile(wall, 50), 2)} ms, p99 ${fmt(percentile(wall, 99), 2)} ms`);
  }
  bare.close();
  ours.close();
  grpc.close();
} finally {
  await etcd.stop();
}
