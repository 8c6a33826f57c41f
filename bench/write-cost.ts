// What one registration costs the server, against peers in the same run (issue 18: the unrelated writes' share of
// the DNS core). Three servers, one at a time on CPU 1, each taking the same `PUT /v1/services/churn-<k>` writes
// (100 services, a changed port and metadata each time, the body bench/dns-churn.ts sends) from this process on
// CPU 0 over keep-alive connections:
//   node  bench/write-peer.ts --kind node: a bare node:http handler keeping the parsed body in a Map;
//   hono  bench/write-peer.ts --kind hono: the same on one Hono route over our listener;
//   ours  bench/ours-server.ts --services 1000 (3,000 instances, as dns-churn), the registry behind the real API.
// Two loads each: `paced`, --rate writes a second (the churn of dns-churn: each write finds the server idle), and
// `back to back`, --inflight writes always in flight (the cost per write once the caches stay warm). The figure is
// the server process's CPU time (/proc, user + system) per acknowledged write, its idle CPU over as long a window
// subtracted; rounds alternate the servers' order.
// Usage: bench/run.sh write-cost [--rate 100] [--duration 8] [--rounds 3] [--inflight 8] [--only node,hono,ours] [--no-pin]
import { spawn, spawnSync } from "node:child_process";
import { cpus, loadavg, tmpdir } from "node:os";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Agent, request } from "undici";
import { canPin, children, runMain, sleep, stopChild } from "./children.js";
import { pace } from "./pace.js";
import { processCpuMs } from "./procstat.js";
import { fmt, median, readyLine } from "./stats.js";

const { values: opts } = parseArgs({
  options: {
    rate: { type: "string", default: "100" },
    duration: { type: "string", default: "8" },
    rounds: { type: "string", default: "3" },
    inflight: { type: "string", default: "8" },
    only: { type: "string", default: "node,hono,ours" },
    "no-pin": { type: "boolean", default: false },
  },
});
const rate = Number(opts.rate);
const duration = Number(opts.duration);
const rounds = Number(opts.rounds);
const inflight = Number(opts.inflight);
const pin = canPin(opts["no-pin"]);
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const work = mkdtempSync(join(tmpdir(), "hd-write-cost-"));
const SERVICES = 100;

type Kind = "node" | "hono" | "ours";
const KINDS = opts.only.split(",") as Kind[];
for (const k of KINDS) if (!["node", "hono", "ours"].includes(k)) throw new Error(`--only: unknown server ${k}`);

let seq = 0;
function write(base: string, agent: Agent): Promise<boolean> {
  seq += 1;
  const k = seq % SERVICES;
  const body = { name: `churn-${k}`, address: `10.200.${k >> 8}.${k & 255}`, port: 20_000 + (seq % 1000), metadata: { rev: String(seq) } };
  return request(`${base}/v1/services/churn-${k}`, { method: "PUT", dispatcher: agent, headers: { "content-type": "application/json" }, body: JSON.stringify(body) }).then(
    async (res) => {
      await res.body.dump();
      return res.statusCode < 300;
    },
    () => false,
  );
}

/** `rate` writes a second (bench/pace.ts) for `seconds`: the acknowledged ones. */
async function paced(base: string, agent: Agent, seconds: number): Promise<number> {
  const load = pace(rate, () => write(base, agent));
  await sleep(seconds * 1000);
  return (await load.stop()).acked;
}

/** `inflight` writes always in flight for `seconds`: the acknowledged ones. */
async function backToBack(base: string, agent: Agent, seconds: number): Promise<number> {
  let acked = 0;
  const until = performance.now() + seconds * 1000;
  const lane = async () => {
    while (performance.now() < until) if (await write(base, agent)) acked += 1;
  };
  await Promise.all(Array.from({ length: inflight }, lane));
  return acked;
}

async function measure(kind: Kind): Promise<{ paced: number; backToBack: number; idle: number; rate: number }> {
  const argv = kind === "ours" ? [here("./ours-server.js"), "--services", "1000"] : [here("./write-peer.js"), "--kind", kind];
  const child = spawn(pin ? "taskset" : process.execPath, [...(pin ? ["-c", "1", process.execPath] : []), ...argv], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  const { port } = await readyLine<{ port: number }>(child);
  const base = `http://127.0.0.1:${port}`;
  const agent = new Agent({ connections: 32 });
  // Every service once, then a warm-up of both loads: the figures are for updates, on warm code (V8 optimises a
  // write path only after thousands of writes: bench/dns-churn.ts' warm-up says why).
  for (let k = 0; k < SERVICES; k++) await write(base, agent);
  await backToBack(base, agent, 3);
  await paced(base, agent, 2);
  await sleep(300);
  let cpu = processCpuMs(child.pid);
  await sleep(duration * 1000);
  const idle = processCpuMs(child.pid) - cpu;
  cpu = processCpuMs(child.pid);
  const t0 = performance.now();
  const pacedAcked = await paced(base, agent, duration);
  const pacedSeconds = (performance.now() - t0) / 1000;
  const pacedMs = processCpuMs(child.pid) - cpu - (idle * pacedSeconds) / duration;
  cpu = processCpuMs(child.pid);
  const b2bAcked = await backToBack(base, agent, duration);
  const b2bMs = processCpuMs(child.pid) - cpu;
  await agent.close();
  await stopChild(child);
  return { paced: pacedMs / Math.max(1, pacedAcked), backToBack: b2bMs / Math.max(1, b2bAcked), idle: idle / duration, rate: pacedAcked / pacedSeconds };
}

async function main(): Promise<void> {
  if (pin) spawnSync("taskset", ["-p", "-c", "0", String(process.pid)], { stdio: "ignore" });
  console.log(`cpus: ${cpus().length} x ${cpus()[0]?.model ?? "?"}; node ${process.version}; load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  console.log(`PUT /v1/services/churn-<k> (${SERVICES} services); paced ${rate}/s and ${inflight} in flight, ${duration} s each, ${rounds} rounds${pin ? "; servers on CPU 1, this process on CPU 0" : ""}\n`);
  const results: Record<Kind, { paced: number[]; backToBack: number[]; idle: number[] }> = { node: { paced: [], backToBack: [], idle: [] }, hono: { paced: [], backToBack: [], idle: [] }, ours: { paced: [], backToBack: [], idle: [] } };
  for (let round = 1; round <= rounds; round++) {
    for (const kind of round % 2 === 1 ? KINDS : [...KINDS].reverse()) {
      const r = await measure(kind);
      results[kind].paced.push(r.paced);
      results[kind].backToBack.push(r.backToBack);
      results[kind].idle.push(r.idle);
      console.log(`round ${round} ${kind.padEnd(4)} paced ${fmt(r.rate, 0)}/s: ${fmt(r.paced, 3)} ms a write; back to back: ${fmt(r.backToBack, 3)} ms a write; idle ${fmt(r.idle, 1)} ms/s`);
    }
  }
  const ref = KINDS.includes("node") ? "node" : KINDS[0]!;
  console.log(`\n| server | paced ${rate}/s: ms of CPU a write (median) | x ${ref} | back to back: ms a write (median) | x ${ref} | idle ms/s |`);
  console.log("|---|---|---|---|---|---|");
  for (const k of KINDS) {
    const r = results[k];
    const p = median(r.paced);
    const b = median(r.backToBack);
    console.log(`| ${k} | ${fmt(p, 3)} | ${fmt(p / median(results[ref].paced), 2)}x | ${fmt(b, 3)} | ${fmt(b / median(results[ref].backToBack), 2)}x | ${fmt(median(r.idle), 1)} |`);
  }
}

await runMain(main, work, "nothing");
