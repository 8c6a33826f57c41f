// Cluster mode (issue 7): propagation and registration throughput, against etcd itself in the same run.
// - Propagation: register on node A (PUT, durable store), time until node B's DNS answers the new name. B is
//   asked over UDP again 1 ms after each negative answer, so the figures carry up to ~1.1 ms of polling error
//   (a tight loop took a core from the servers); the servers themselves only push (etcd watch), never poll. A talks to etcd member 1, B to
//   member 2 of a 3-member cluster, so at least one of them goes through a follower.
// - Peer: etcd's own put-to-watch latency on the same cluster (put through member 1, watch on member 2, etcd3),
//   once before our nodes start and once interleaved with ours (one of each, alternating), so both meet the same
//   machine: on this 2-vCPU VM etcd's own p99 moves between ~7 and ~17 ms from one minute to the next.
// - Throughput: registrations per second through the API, 16 concurrent PUT loops, cluster node vs a node with
//   the embedded store (both durable, same machine), alternating rounds; then how long B needs to have them all.
// - How the driver sees B answer (--observe): "poll" asks B's DNS every 1 ms; "watch" holds a blocking query on
//   B's API and asks its DNS once that returns; "both" (the default) alternates them, N registrations each.
// Usage: node dist/bench/cluster.js [--registrations 1000] [--duration 5] [--rounds 2] [--gap 0] [--observe both]
//   [--in-memory] [--etcd-on-shm] [--relay]
//   --relay: also times the same registrations through bench/relay.ts (A and B as bare Node processes with the
//   same hops and none of our code: the floor on this machine), alternating with ours.
//   --gap <ms>: idle time before each timed registration and each etcd probe (0: back to back, each one starting
//   while the machine still finishes the previous one's work: the followers' fsyncs, the other node's apply).
//   BENCH_PROFILE_NODE=node-a BENCH_PROFILE_DIR=/tmp/prof: that node runs under node --cpu-prof.
import { spawn, type ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Etcd3 } from "etcd3";
import { Pool } from "undici";
import { startEtcd } from "../test/cluster/etcd.js";
import { children } from "./children.js";
import { processCpuMs } from "./procstat.js";
import { fmt, median, percentile } from "./stats.js";

const { values: opts } = parseArgs({
  options: {
    registrations: { type: "string", default: "1000" },
    duration: { type: "string", default: "5" },
    rounds: { type: "string", default: "2" },
    "in-memory": { type: "boolean", default: false },
    "etcd-on-shm": { type: "boolean", default: false },
    gap: { type: "string", default: "0" },
    observe: { type: "string", default: "both" },
    relay: { type: "boolean", default: false },
  },
});
const N = Number(opts.registrations);
const DURATION = Number(opts.duration);
const ROUNDS = Number(opts.rounds);
/** Idle time before each timed registration and each etcd probe, ms: 0 measures them back to back. */
const GAP = Number(opts.gap);
const settle = () => (GAP > 0 ? new Promise((r) => setTimeout(r, GAP)) : undefined);
/** Diagnosis only: nodes without their durable store, to see what the local fsync costs. */
const IN_MEMORY = opts["in-memory"];
/** How the driver sees B answer (see Observe); "both" alternates them, N registrations each; --relay adds the floor. */
const OBSERVE: Observe[] = opts.observe === "both" ? ["poll", "watch"] : [opts.observe as Observe];
if (!OBSERVE.every((m) => m === "poll" || m === "watch")) throw new Error("--observe is poll, watch or both");
const MODES: Mode[] = opts.relay ? [...OBSERVE, "relay"] : OBSERVE;
const CLUSTER = "bench";
const MAIN = fileURLToPath(new URL("../src/main.js", import.meta.url));
const RELAY = fileURLToPath(new URL("./relay.js", import.meta.url));
const RELAY_PREFIX = "/bench-relay";

interface Node {
  name: string;
  url: string;
  dnsPort: number;
  child: ChildProcess;
  pool: Pool;
  stop(): Promise<void>;
}

const tmp = mkdtempSync(join(tmpdir(), "hd-bench-cluster-"));

async function startNode(name: string, args: string[]): Promise<Node> {
  const profile = process.env.BENCH_PROFILE_NODE === name ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR ?? "/tmp"}`] : [];
  // Diagnosis: BENCH_NODE_ARGS="--max-semi-space-size=64" gives every node these V8/Node flags.
  const nodeArgs = process.env.BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
  const argv = [...nodeArgs, ...profile, MAIN, "--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--node-id", name, "--data-dir", join(tmp, name), "--log-level", "info", ...(IN_MEMORY ? ["--in-memory"] : []), ...args];
  const ready = args.includes("etcd") ? "cluster joined" : "HTTP API listening";
  return startChild(name, argv, ready);
}

/** A relay process (bench/relay.ts), the floor: role a takes the PUTs, role b answers the DNS queries. */
function startRelay(role: "a" | "b", endpoint: string): Promise<Node> {
  return startChild(`relay-${role}`, [RELAY, role, endpoint, RELAY_PREFIX, join(tmp, `relay-${role}.journal`)], "relay listening");
}

/** Spawns a server that logs JSON lines and resolves once it logged `ready` (its HTTP URL and DNS port as they come). */
async function startChild(name: string, argv: string[], ready: string): Promise<Node> {
  const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  let url = "";
  let dnsPort = 0;
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code}`)));
    lines.on("line", (line) => {
      const msg = JSON.parse(line) as { msg: string; url?: string; address?: string; dnsPort?: number };
      if (msg.msg === "DNS listening") dnsPort = Number(msg.address!.split(":").pop());
      if (msg.dnsPort !== undefined) dnsPort = msg.dnsPort;
      if (msg.msg === "HTTP API listening" || msg.msg === "relay listening") url = msg.url ?? url;
      if (msg.msg === ready) resolve();
    });
  });
  child.stdout!.resume();
  // Relay b has no HTTP API: its pool (to a port nothing listens on) is never used, and connects only when used.
  const pool = new Pool(url || "http://127.0.0.1:1", { connections: 32 });
  return {
    name,
    url,
    dnsPort,
    child,
    pool,
    stop: async () => {
      await pool.close();
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

async function put(node: Node, id: string, name: string, i: number): Promise<number> {
  const body = JSON.stringify({ id, name, version: "1.0.0", address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 8080 });
  const res = await node.pool.request({ method: "PUT", path: `/v1/services/${id}`, headers: { "content-type": "application/json" }, body });
  await res.body.text();
  return res.statusCode;
}

/** A minimal A query for <name>.service.home.arpa with id 0x4242. */
function query(name: string): Buffer {
  const labels = [name, "service", "home", "arpa"];
  const parts = [Buffer.from([0x42, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])];
  for (const l of labels) parts.push(Buffer.from([l.length]), Buffer.from(l));
  parts.push(Buffer.from([0, 0, 1, 0, 1]));
  return Buffer.concat(parts);
}

/**
 * Asks B until it answers with at least one record; resolves with the time it did. One socket for the whole run,
 * made before any clock starts, so the figures hold no socket setup of the driver's.
 */
function poller(port: number): { until(name: string): Promise<number>; close(): void } {
  const socket = createSocket("udp4");
  let waiting: { packet: Buffer; resolve: (t: number) => void } | undefined;
  const send = () => waiting !== undefined && socket.send(waiting.packet, port, "127.0.0.1");
  socket.on("message", (msg) => {
    // Only the answer to the current question counts (a late answer to the previous name is dropped).
    if (waiting === undefined || !msg.subarray(12, waiting.packet.length).equals(waiting.packet.subarray(12))) return;
    if (msg.readUInt16BE(6) > 0) {
      const done = waiting.resolve;
      waiting = undefined;
      done(performance.now());
    } else setTimeout(send, 1); // a tight loop would take a whole core of this 2-core machine from A, B and etcd
  });
  return {
    until: (name) =>
      new Promise((resolve) => {
        waiting = { packet: query(name), resolve };
        send();
      }),
    close: () => socket.close(),
  };
}

/**
 * How the driver learns that B has the name. "poll": asks B's DNS again 1 ms after each negative answer (up to
 * ~1.1 ms of error, and a query every millisecond for B to answer meanwhile). "watch": a blocking query on B's
 * API (sent before the clock starts, with the index of B's answer just before) returns when B's replica has the
 * name, and then one DNS query to B (again 1 ms later while negative) is the time taken: no error from polling,
 * one HTTP answer more on B's side.
 */
type Observe = "poll" | "watch";
/** A way of observing ours, or "relay": the same registration through bench/relay.ts (the floor), B's DNS polled. */
type Mode = Observe | "relay";
interface Pair {
  a: Node;
  b: Node;
}

/** Ours, one registration at a time, each followed by one of etcd's own put -> watch: both see the same moments. */
async function propagation(ours: Pair, relay: Pair | undefined, probe: Awaited<ReturnType<typeof etcdProbe>>, modes: Mode[]) {
  const results = new Map(modes.map((m) => [m, { fromSend: [] as number[], fromAck: [] as number[], published: [] as number[] }]));
  const peer: number[] = [];
  const polls = { ours: poller(ours.b.dnsPort), relay: relay && poller(relay.b.dnsPort) };
  for (let i = 0; i < N * modes.length; i++) {
    const mode = modes[i % modes.length]!;
    const { a, b } = mode === "relay" ? relay! : ours;
    const poll = (mode === "relay" ? polls.relay : polls.ours)!;
    const name = `prop-${i}`;
    const watched = mode === "watch" ? await blockingQuery(b, name) : undefined;
    await settle();
    const t0 = performance.now();
    // B answers NODATA/NXDOMAIN until the name arrives
    const seen = watched === undefined ? poll.until(name) : watched.answered.then(() => poll.until(name));
    const published = probe.published(mode === "relay" ? `${RELAY_PREFIX}/services/relay-a/${name}-1` : `${SERVICES}${name}-1`);
    const status = await put(a, `${name}-1`, name, i);
    const tAck = performance.now();
    if (status !== 201) throw new Error(`PUT answered ${status}`);
    const t = await seen;
    const r = results.get(mode)!;
    r.fromSend.push(t - t0);
    r.fromAck.push(Math.max(0, t - tAck));
    r.published.push((await published) - t0);
    await settle();
    peer.push(await probe.once(`during-${i}`));
  }
  polls.ours.close();
  polls.relay?.close();
  return { results, peer };
}

/** Sends a blocking query for name to B (from B's current index) and returns when B answers it with the name. */
async function blockingQuery(b: Node, name: string): Promise<{ answered: Promise<void> }> {
  const now = await b.pool.request({ method: "GET", path: `/v1/services?name=${name}` });
  await now.body.text();
  const index = now.headers["x-index"];
  const wait = async (): Promise<void> => {
    const res = await b.pool.request({ method: "GET", path: `/v1/services?name=${name}&index=${index}&wait=30s` });
    const { count } = (await res.body.json()) as { count: number };
    if (count === 0) throw new Error(`B's blocking query for ${name} answered without it`);
  };
  return { answered: wait() }; // wrapped: an awaited promise of a promise would wait for both
}

/** A's instances under the default --etcd-prefix. */
const SERVICES = `/homelab-discovery/${CLUSTER}/services/node-a/`;

/** etcd's own put -> watch: a put through member 1 (etcd3, 300-byte value) until a watch on member 2 sees it. */
async function etcdProbe(endpoints: string[]): Promise<{ once(key: string): Promise<number>; published(key: string): Promise<number>; close(): Promise<void> }> {
  const writer = new Etcd3({ hosts: [endpoints[0]!] });
  const reader = new Etcd3({ hosts: [endpoints[1]!] });
  const watcher = await reader.watch().prefix("/bench/").create();
  const waiters = new Map<string, (t: number) => void>();
  watcher.on("put", (kv) => waiters.get(kv.key.toString())?.(performance.now()));
  // The breakdown: when A's publish (ours or the relay's) reaches a watch on member 2 (B's member), seen by the
  // driver itself.
  const publishes = await reader.watch().prefix(SERVICES).create();
  const relayed = await reader.watch().prefix(`${RELAY_PREFIX}/services/`).create();
  for (const w of [publishes, relayed]) w.on("put", (kv) => waiters.get(kv.key.toString())?.(performance.now()));
  return {
    once: async (key) => {
      const arrived = new Promise<number>((r) => waiters.set(`/bench/${key}`, r));
      const t0 = performance.now();
      await writer.put(`/bench/${key}`).value(JSON.stringify({ key, pad: "x".repeat(300) }));
      const t = await arrived;
      waiters.delete(`/bench/${key}`);
      return t - t0;
    },
    published: (key) =>
      new Promise<number>((resolve) =>
        waiters.set(key, (t) => {
          waiters.delete(key);
          resolve(t);
        }),
      ),
    close: async () => {
      await relayed.cancel();
      await publishes.cancel();
      await watcher.cancel();
      writer.close();
      reader.close();
    },
  };
}

async function throughput(node: Node, prefix: string): Promise<number> {
  let done = 0;
  let next = 0;
  const end = performance.now() + DURATION * 1000;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (performance.now() < end) {
        const i = next++;
        if ((await put(node, `${prefix}-${i}`, "tp", i)) >= 300) throw new Error("PUT failed");
        done++;
      }
    }),
  );
  return done / DURATION;
}

async function count(node: Node, name: string): Promise<number> {
  const res = await node.pool.request({ method: "GET", path: `/v1/services?name=${name}` });
  return ((await res.body.json()) as { count: number }).count;
}

const line = (label: string, v: number[]) => `${label}: p50 ${fmt(percentile(v, 50), 2)} ms, p99 ${fmt(percentile(v, 99), 2)} ms, max ${fmt(Math.max(...v), 2)} ms`;

// Diagnosis only: etcd's data dirs on tmpfs, so its fsyncs stop competing with our journal's for the one disk.
const ETCD_ON_SHM = opts["etcd-on-shm"];
const etcd = await startEtcd({ members: 3, heartbeatMs: 100, electionMs: 1000, ...(ETCD_ON_SHM ? { tmpRoot: "/dev/shm" } : {}) });
const nodes: Node[] = [];
try {
  console.log(`etcd: 3 members (etcd's default timing), ${N} registrations${GAP > 0 ? `, ${GAP} ms idle before each` : ", back to back"}, ${IN_MEMORY ? "nodes IN MEMORY (diagnosis)" : "durable nodes"}${ETCD_ON_SHM ? ", etcd on tmpfs (diagnosis)" : ""}; Node ${process.version}`);
  const probe = await etcdProbe(etcd.endpoints);
  const alone: number[] = [];
  for (let i = 0; i < N; i++) {
    await settle();
    alone.push(await probe.once(`alone-${i}`));
  }
  console.log(line("etcd put -> watch (member 1 -> member 2), before our nodes start", alone));

  const clusterArgs = (i: number) => ["--store", "etcd", "--etcd-endpoints", etcd.endpoints[i]!, "--cluster-name", CLUSTER];
  const a = await startNode("node-a", clusterArgs(0));
  const b = await startNode("node-b", clusterArgs(1));
  nodes.push(a, b);
  const relay = opts.relay ? { a: await startRelay("a", etcd.endpoints[0]!), b: await startRelay("b", etcd.endpoints[1]!) } : undefined;
  if (relay) nodes.push(relay.a, relay.b);
  const { results, peer } = await propagation({ a, b }, relay, probe, MODES);
  await probe.close();
  console.log(line("etcd put -> watch, interleaved with ours (one each, alternating)", peer));
  for (const [mode, { fromSend, fromAck, published }] of results) {
    const how = { poll: "ours, B's DNS asked every 1 ms", watch: "ours, B watched by a blocking query, then its DNS asked", relay: "the relay (bench/relay.ts: the same hops, none of our code), B's DNS asked every 1 ms" }[mode];
    console.log(`${how}:`);
    console.log(line("  PUT on A sent -> B's DNS answers", fromSend));
    console.log(line("  PUT on A acknowledged -> B's DNS answers", fromAck));
    console.log(line("  PUT on A sent -> the publish reaches a watch on member 2 (the driver's own, beside B's)", published));
    console.log(line("  that watch saw it -> B's DNS answers (B's part, and the driver's)", fromSend.map((t, i) => t - published[i]!)));
    console.log(line("  PUT on A sent -> acknowledged (durable write on A while etcd takes the publish)", fromSend.map((t, i) => t - fromAck[i]!)));
    console.log(`  ratio p99 (from send) / etcd put->watch interleaved: ${fmt(percentile(fromSend, 99) / percentile(peer, 99), 2)}x`);
  }

  const solo = await startNode("solo", []);
  nodes.push(solo);
  const ackLatency = async (node: Node) => {
    const acks: number[] = [];
    for (let i = 0; i < Math.min(N, 300); i++) {
      const t0 = performance.now();
      await put(node, `ack-${node.name}-${i}`, "ack", i);
      acks.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 2));
    }
    return acks;
  };
  const how = IN_MEMORY ? "in memory" : "durable";
  console.log(line(`embedded node: one PUT at a time, send -> acknowledged (${how})`, await ackLatency(solo)));
  console.log(line(`cluster node A: one PUT at a time, send -> acknowledged (${how}), nobody polling B`, await ackLatency(a)));
  const rates: { cluster: number[]; embedded: number[] } = { cluster: [], embedded: [] };
  let drain: number[] = [];
  const etcdPids = etcd.members.map((m) => m.pid);
  const cpu = { solo: 0, a: 0, b: 0, etcd: 0, embeddedRegs: 0, clusterRegs: 0 };
  const etcdCpu = () => etcdPids.reduce((sum, pid) => sum + processCpuMs(pid), 0);
  for (let r = 0; r < ROUNDS; r++) {
    const c0 = processCpuMs(solo.child.pid);
    const embeddedRate = await throughput(solo, `e${r}`);
    cpu.solo += processCpuMs(solo.child.pid) - c0;
    cpu.embeddedRegs += Math.round(embeddedRate * DURATION);
    rates.embedded.push(embeddedRate);
    const before = await count(b, "tp");
    const [a0, b0, e0] = [processCpuMs(a.child.pid), processCpuMs(b.child.pid), etcdCpu()];
    const registered = Math.round((await throughput(a, `c${r}`)) * DURATION);
    const t0 = performance.now();
    while ((await count(b, "tp")) < before + registered) await new Promise((res) => setTimeout(res, 5));
    drain.push(performance.now() - t0);
    cpu.a += processCpuMs(a.child.pid) - a0;
    cpu.b += processCpuMs(b.child.pid) - b0;
    cpu.etcd += etcdCpu() - e0;
    cpu.clusterRegs += registered;
    rates.cluster.push(registered / DURATION);
  }
  const us = (ms: number, n: number) => fmt((ms * 1000) / n, 0);
  console.log(
    `CPU per registration (µs, /proc, 10 ms ticks): embedded node ${us(cpu.solo, cpu.embeddedRegs)}; cluster: A ${us(cpu.a, cpu.clusterRegs)}, B ${us(cpu.b, cpu.clusterRegs)}, etcd (3 members) ${us(cpu.etcd, cpu.clusterRegs)}`,
  );
  const c = median(rates.cluster);
  const e = median(rates.embedded);
  console.log(`registrations/s, 16 concurrent PUTs, durable store: cluster ${fmt(c, 0)}, embedded ${fmt(e, 0)} (median of ${ROUNDS}): ratio ${fmt(c / e, 2)}x`);
  drain = drain.map((d) => Math.round(d));
  console.log(`after each cluster round, B had every registration ${drain.join(", ")} ms after the last acknowledgement`);
} finally {
  await Promise.allSettled(nodes.map((n) => n.stop()));
  await etcd.stop();
  rmSync(tmp, { recursive: true, force: true });
}
