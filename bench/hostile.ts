// Hostile traffic against the built server (issue 16): a UDP packet fuzzer, TCP clients that pipeline big answers
// and never read them, clients that send a byte a second, more TCP connections than the cap, TCP frames of random
// bytes, and slow or never-reading HTTP clients, all at once, for --seconds. The server runs as a child process
// (dist/src/main.js, as a user runs it); its RSS is sampled from /proc. Reports packets, crashes (the child
// exiting), RSS at start, peak and end, and whether it still answers DNS and the API with its registry intact.
// Then a second server whose loopback is untrusted (--dns-trusted-networks elsewhere): the amplification a spoofed
// source gets (bytes out per byte in) and what one source flooding it receives (--dns-rate-limit).
// --echo: instead, the floor: the same UDP fuzz against a bare node:dgram echo (bench/dns-echo.ts).
//   npm run build && bench/run.sh hostile [--seconds 30] [--only udp-fuzz,tcp-never-read,...] [--echo] [--node-args="--max-semi-space-size=2"]
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { parseArgs } from "node:util";
import dns2 from "dns2";
import { frame, query as dnsQuery } from "../test/dns/helpers.js";
import { closedPort } from "../test/helpers.js";
import { children, sleep, stopChild } from "./children.js";

const ALL = ["udp-fuzz", "tcp-never-read", "tcp-slow", "tcp-flood", "tcp-fuzz", "http-slow", "http-never-read"];
const { values } = parseArgs({ options: { seconds: { type: "string", default: "30" }, only: { type: "string", default: ALL.join(",") }, echo: { type: "boolean", default: false }, "node-args": { type: "string", default: "" } } });
/** Flags for the server's node, to compare V8 settings: --node-args="--max-semi-space-size=2". */
const nodeArgs = values["node-args"].split(" ").filter((a) => a !== "");
const seconds = Number(values.seconds);
/** The kinds of client to run (all by default): --only udp-fuzz,tcp-never-read,... */
const only = new Set(values.only.split(","));
const on = (kind: string) => only.has(kind);
const { Packet } = dns2;

function rssMb(pid: number): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
    return Number(line!.split(/\s+/)[1]) / 1024;
  } catch {
    return NaN;
  }
}

interface Server {
  child: ChildProcess;
  http: string;
  dns: number;
  exited: () => boolean;
}

async function startServer(extra: string[]): Promise<Server> {
  const [httpPort, dnsPort] = [await closedPort(), await closedPort()];
  const child = spawn(process.execPath, [...nodeArgs, "dist/src/main.js", "--in-memory", "--http-listen", `127.0.0.1:${httpPort}`, "--dns-listen", `127.0.0.1:${dnsPort}`, "--node-id", "bench", "--log-level", "warn", "--zones-dir", "zones", ...extra], { stdio: ["ignore", "ignore", "inherit"] });
  children.push(child);
  let exited = false;
  child.once("exit", (code, signal) => {
    exited = true;
    console.error(`server exited: code ${code} signal ${signal}`);
  });
  const http = `http://127.0.0.1:${httpPort}`;
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${http}/v1/health`)).ok) break;
    } catch {
      await sleep(100);
    }
  }
  const register: Record<string, unknown>[] = Array.from({ length: 200 }, (_, i) => ({ id: `big-${i}`, name: "big", address: `10.3.${i >> 8}.${i & 255}`, port: 1000 + i, metadata: { team: "platform", path: `/srv/${i}` } }));
  register.push(...Array.from({ length: 20 }, (_, i) => ({ id: `web-${i}`, name: "web", address: `10.4.0.${i + 1}`, port: 80, tags: ["prod"] })));
  const r = await fetch(`${http}/v1/services/bulk`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ register }) });
  if (!r.ok) throw new Error(`bulk registration: ${r.status}`);
  return { child, http, dns: dnsPort, exited: () => exited };
}

/** A recursive query with a random id, with EDNS (4096 bytes) when asked. */
const query = (name: string, type: number, edns = false): Buffer => dnsQuery(name, type, { id: randomInt(0x10000), ...(edns ? { edns: { udpSize: 4096 } } : {}) });

const SEEDS = [
  query("big.service.home.arpa", Packet.TYPE.A, true),
  query("_big._tcp.service.home.arpa", Packet.TYPE.SRV, true),
  query("prod.web.service.home.arpa", Packet.TYPE.A),
  query("_web._tcp.home.arpa", Packet.TYPE.PTR),
  query("big-1._big._tcp.home.arpa", Packet.TYPE.TXT),
  query("bench.node.home.arpa", Packet.TYPE.ANY, true),
  query("1.0.4.10.in-addr.arpa", Packet.TYPE.PTR),
  query("home.arpa", Packet.TYPE.SOA),
  query("example.com", Packet.TYPE.A),
];

/** A fuzzed packet: a seed with bytes flipped, cut, extended or its counts changed, or plain random bytes. */
function fuzzed(): Buffer {
  const kind = randomInt(6);
  if (kind === 0) return randomBytes(randomInt(1, 600));
  const p = Buffer.from(SEEDS[randomInt(SEEDS.length)]!);
  if (kind === 1) for (let i = randomInt(1, 8); i > 0; i--) p[randomInt(p.length)] = randomInt(256);
  if (kind === 2) return p.subarray(0, randomInt(p.length));
  if (kind === 3) return Buffer.concat([p, randomBytes(randomInt(1, 300))]);
  if (kind === 4) p.writeUInt16BE(randomInt(0x10000), 4 + 2 * randomInt(4)); // QD/AN/NS/AR counts
  if (kind === 5) {
    // A compression pointer somewhere in the question, pointing anywhere (loops included).
    const at = 12 + randomInt(Math.max(1, p.length - 14));
    p[at] = 0xc0 | randomInt(64);
    p[at + 1] = randomInt(256);
  }
  return p;
}

/** Keeps `n` connections of one kind open until `until`, replacing those the server closes. */
function keep(n: number, port: number, until: number, start: (s: Socket) => void, counters: { opened: number; closedByServer: number }): Promise<void> {
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      if (Date.now() >= until) return resolve();
      const socket = connect(port, "127.0.0.1");
      counters.opened += 1;
      socket.on("connect", () => start(socket));
      socket.on("error", () => undefined);
      const timer = setTimeout(() => socket.destroy(), Math.max(0, until - Date.now()));
      socket.on("close", () => {
        clearTimeout(timer);
        if (Date.now() < until) {
          counters.closedByServer += 1;
          setTimeout(() => void one().then(resolve), 20);
        } else resolve();
      });
    });
  return Promise.all(Array.from({ length: n }, one)).then(() => undefined);
}

async function hostilePhase(): Promise<Record<string, unknown>> {
  const server = await startServer([]);
  const pid = server.child.pid!;
  // Warm-up with honest traffic (valid queries, API reads) for 5 s, so "start" is a serving server's RSS, its heap
  // grown to its working size, and growth afterwards is what the hostile clients cost.
  const warm = createSocket("udp4");
  warm.on("message", () => undefined);
  for (const warmUntil = Date.now() + 5_000; Date.now() < warmUntil; ) {
    for (let i = 0; i < 100; i++) warm.send(SEEDS[i % SEEDS.length]!, server.dns, "127.0.0.1");
    await (await fetch(`${server.http}/v1/services`)).arrayBuffer();
  }
  warm.close();
  await sleep(1_000);
  const rssStart = rssMb(pid);
  const heapStart = await heapOf(server);
  let rssPeak = rssStart;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMb(pid) || 0)), 100);
  const until = Date.now() + seconds * 1000;
  const counts = { udpPackets: 0, udpReplies: 0, tcpFuzzFrames: 0 };
  const neverRead = { opened: 0, closedByServer: 0 };
  const slow = { opened: 0, closedByServer: 0 };
  const flood = { opened: 0, closedByServer: 0 };
  const tcpFuzz = { opened: 0, closedByServer: 0 };
  const httpSlow = { opened: 0, closedByServer: 0 };
  const httpNoRead = { opened: 0, closedByServer: 0 };
  const httpPort = Number(new URL(server.http).port);

  const udpFuzz = async () => {
    const sockets = Array.from({ length: 4 }, () => createSocket("udp4"));
    for (const s of sockets) s.on("message", () => (counts.udpReplies += 1));
    while (Date.now() < until && !server.exited()) {
      for (let i = 0; i < 200; i++) {
        sockets[i & 3]!.send(fuzzed(), server.dns, "127.0.0.1");
        counts.udpPackets += 1;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    await sleep(200);
    for (const s of sockets) s.close();
  };
  const bigSrv = frame(query("_big._tcp.service.home.arpa", Packet.TYPE.SRV, true));
  const pipeline = Buffer.concat(Array.from({ length: 500 }, () => bigSrv));
  await Promise.all([
    on("udp-fuzz") ? udpFuzz() : undefined,
    // Pipelines ~2 MB of queries for ~5 KB answers each, again whenever the socket drains; never reads.
    on("tcp-never-read") && keep(8, server.dns, until, (s) => {
      s.pause();
      const push = () => {
        while (!s.destroyed && s.write(pipeline));
      };
      s.on("drain", push);
      push();
    }, neverRead),
    on("tcp-slow") && keep(50, server.dns, until, (s) => {
      const drip = setInterval(() => (s.destroyed ? clearInterval(drip) : s.write(randomBytes(1))), 1_000);
      s.on("close", () => clearInterval(drip));
    }, slow),
    on("tcp-flood") && keep(300, server.dns, until, () => undefined, flood),
    on("tcp-fuzz") && keep(4, server.dns, until, (s) => {
      s.on("data", () => undefined);
      const send = () => {
        if (s.destroyed || Date.now() >= until) return;
        for (let i = 0; i < 50; i++) {
          s.write(Math.random() < 0.5 ? frame(fuzzed()) : randomBytes(randomInt(1, 200)));
          counts.tcpFuzzFrames += 1;
        }
        setTimeout(send, 5);
      };
      send();
    }, tcpFuzz),
    // HTTP: headers a byte at a time, and clients asking for the whole list again and again without reading.
    on("http-slow") && keep(50, httpPort, until, (s) => {
      const text = "GET /v1/services HTTP/1.1\r\nHost: x\r\n";
      let i = 0;
      const drip = setInterval(() => (s.destroyed || i >= text.length ? clearInterval(drip) : s.write(text[i++]!)), 1_000);
      s.on("close", () => clearInterval(drip));
    }, httpSlow),
    on("http-never-read") && keep(10, httpPort, until, (s) => {
      s.pause();
      const push = () => {
        while (!s.destroyed && s.write("GET /v1/services HTTP/1.1\r\nHost: x\r\n\r\n".repeat(100)));
      };
      s.on("drain", push);
      push();
    }, httpNoRead),
  ]);
  clearInterval(sampler);
  await sleep(5_000);
  const amplification = await amplificationOf(server);
  const rssEnd = rssMb(pid);
  const heapEnd = server.exited() ? {} : await heapOf(server);
  // Still serving, with its registry as registered?
  const alive = !server.exited();
  let answers = -1;
  let registered = -1;
  if (alive) {
    const reply = await new Promise<Buffer | undefined>((resolve) => {
      const s = createSocket("udp4");
      const t = setTimeout(() => (s.close(), resolve(undefined)), 2_000);
      s.on("message", (m) => (clearTimeout(t), s.close(), resolve(m)));
      s.send(query("prod.web.service.home.arpa", Packet.TYPE.A), server.dns, "127.0.0.1");
    });
    answers = reply ? Packet.parse(reply).answers.length : -1;
    const list = (await (await fetch(`${server.http}/v1/services`)).json()) as { services?: unknown[] } | unknown[];
    registered = Array.isArray(list) ? list.length : (list.services?.length ?? -1);
  }
  const stats = alive ? ((await (await fetch(`${server.http}/v1/stats`)).json()) as { dns: Record<string, unknown> }).dns : {};
  await stopChild(server.child);
  return {
    seconds,
    clients: [...only],
    udpPackets: counts.udpPackets,
    udpReplies: counts.udpReplies,
    tcpFuzzFrames: counts.tcpFuzzFrames,
    connections: { neverRead, slow, flood, tcpFuzz, httpSlow, httpNoRead },
    crashes: alive ? 0 : 1,
    amplificationToTrusted: amplification,
    heapMb: { start: heapStart, end: heapEnd },
    rssMb: { start: round(rssStart), peak: round(rssPeak), end: round(rssEnd), growth: round(rssEnd - rssStart), peakGrowth: round(rssPeak - rssStart) },
    afterwards: { answersForWeb: answers, registered },
    dns: { cachedAnswers: stats.cachedAnswers, cachedBytes: stats.cachedBytes, queries: stats.queries, dropped: stats.dropped, tcp: stats.tcp, tcpRefused: stats.tcpRefused, errors: stats.errors, byRcode: stats.byRcode },
  };
}

/** Bytes out per byte in for the biggest answers we give, one query each (a fresh bucket: the answer itself). */
async function amplificationOf(server: Server): Promise<Record<string, unknown>> {
  const measure = async (q: Buffer) => {
    const s = createSocket("udp4");
    const reply = await new Promise<Buffer | undefined>((resolve) => {
      const t = setTimeout(() => resolve(undefined), 2_000);
      s.on("message", (m) => (clearTimeout(t), resolve(m)));
      s.send(q, server.dns, "127.0.0.1");
    });
    s.close();
    await sleep(50);
    return reply === undefined ? { query: q.length, reply: 0 } : { query: q.length, reply: reply.length, tc: (reply[2]! & 0x02) !== 0, ratio: round(reply.length / q.length) };
  };
  return {
    "big A (200)": await measure(query("big.service.home.arpa", Packet.TYPE.A, true)),
    "big ANY (200)": await measure(query("big.service.home.arpa", Packet.TYPE.ANY, true)),
    "_big._tcp SRV (200)": await measure(query("_big._tcp.service.home.arpa", Packet.TYPE.SRV, true)),
    "web A (20)": await measure(query("web.service.home.arpa", Packet.TYPE.A, true)),
    "_web._tcp SRV (20)": await measure(query("_web._tcp.service.home.arpa", Packet.TYPE.SRV, true)),
    "node ANY (220)": await measure(query("bench.node.home.arpa", Packet.TYPE.ANY, true)),
    "big-1 TXT": await measure(query("big-1._big._tcp.home.arpa", Packet.TYPE.TXT, true)),
  };
}

async function untrustedPhase(): Promise<Record<string, unknown>> {
  // Loopback untrusted: as a spoofed source on the Internet would be seen.
  const server = await startServer(["--dns-trusted-networks", "192.0.2.250/32"]);
  const amplification = await amplificationOf(server);
  // One source, as fast as it can, for 5 s.
  await sleep(1_100);
  const s = createSocket("udp4");
  let replies = 0;
  let replyBytes = 0;
  let truncatedReplies = 0;
  s.on("message", (m) => {
    replies += 1;
    replyBytes += m.length;
    if ((m[2]! & 0x02) !== 0) truncatedReplies += 1;
  });
  const q = query("big.service.home.arpa", Packet.TYPE.ANY, true);
  let sent = 0;
  const end = Date.now() + 5_000;
  while (Date.now() < end) {
    for (let i = 0; i < 100; i++) s.send(q, server.dns, "127.0.0.1");
    sent += 100;
    await new Promise((resolve) => setImmediate(resolve));
  }
  await sleep(500);
  s.close();
  await stopChild(server.child);
  return { amplification, flood: { seconds: 5, sent, sentBytes: sent * q.length, replies, truncatedReplies, replyBytes, repliesPerSecond: round(replies / 5), bytesOutPerByteIn: round(replyBytes / (sent * q.length)) } };
}

/** The child's V8 heap (used, total) and external memory, MB, from its /metrics (prom-client's default metrics). */
async function heapOf(server: Server): Promise<Record<string, number>> {
  const text = await (await fetch(`${server.http}/metrics`)).text();
  const read = (name: string) => round(Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text)?.[1] ?? NaN) / 2 ** 20);
  return { heapUsed: read("nodejs_heap_size_used_bytes"), heapTotal: read("nodejs_heap_size_total_bytes"), external: read("nodejs_external_memory_bytes") };
}

const round = (n: number) => Math.round(n * 100) / 100;

/**
 * The floor: the same warm-up and UDP fuzz against bench/dns-echo.ts, a bare node:dgram socket answering every
 * datagram with one fixed packet (no parsing, no registry). What its RSS grows is what Node itself grows at
 * that packet rate, whatever the server does.
 */
async function echoFloor(): Promise<Record<string, unknown>> {
  const packet = Buffer.from(SEEDS[2]!);
  packet[2] = packet[2]! | 0x80;
  const child = spawn(process.execPath, ["dist/bench/dns-echo.js", "--packet", packet.toString("hex"), "--sync-lookup"], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  const echoPort = await new Promise<number>((resolve) => child.stdout!.once("data", (d: Buffer) => resolve((JSON.parse(d.toString()) as { port: number }).port)));
  const pid = child.pid!;
  const warm = createSocket("udp4");
  warm.on("message", () => undefined);
  for (const warmUntil = Date.now() + 5_000; Date.now() < warmUntil; ) {
    for (let i = 0; i < 100; i++) warm.send(SEEDS[i % SEEDS.length]!, echoPort, "127.0.0.1");
    await new Promise((resolve) => setImmediate(resolve));
  }
  warm.close();
  await sleep(1_000);
  const start = rssMb(pid);
  let peak = start;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMb(pid) || 0)), 100);
  const sockets = Array.from({ length: 4 }, () => createSocket("udp4"));
  let packets = 0;
  for (const sock of sockets) sock.on("message", () => undefined);
  for (const until = Date.now() + seconds * 1000; Date.now() < until; ) {
    for (let i = 0; i < 200; i++) sockets[i & 3]!.send(fuzzed(), echoPort, "127.0.0.1");
    packets += 200;
    await new Promise((resolve) => setImmediate(resolve));
  }
  clearInterval(sampler);
  await sleep(5_000);
  const end = rssMb(pid);
  for (const sock of sockets) sock.close();
  await stopChild(child);
  return { seconds, packets, rssMb: { start: round(start), peak: round(peak), end: round(end), growth: round(end - start), peakGrowth: round(peak - start) } };
}

if (values.echo) {
  console.log(JSON.stringify({ echoFloor: await echoFloor() }, null, 2));
  process.exit(0);
}
const hostile = await hostilePhase();
console.log(JSON.stringify({ hostile }, null, 2));
const untrusted = await untrustedPhase();
console.log(JSON.stringify({ untrusted }, null, 2));
