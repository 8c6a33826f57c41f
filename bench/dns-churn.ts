// DNS throughput while the registry changes (issue 18): ours with bench/dns-fixtures.ts' data set (1,000 services
// x 3 instances), dnsperf asking the usual query file, under these phases:
//   quiet      no writes;
//   bare       the unrelated phase's writes sent instead to a bare node:http handler in the server's process
//              (bench/bare-writes.ts, `--bare-writes`): what any HTTP write costs this event loop, the floor the
//              unrelated phase is compared with;
//   unrelated  --rate re-registrations a second of services the query file never asks (churn-<k>, registered
//              at start), each with a changed port and metadata, through the HTTP API;
//   asked      --rate re-registrations a second spread over the very services asked (svc-<s>-<k>, s walking
//              all 1,000 services), each with a changed port (their SRV answers really change) and metadata;
//   checked    --checked instances (300) with HTTP checks every --check-interval ms (1 s), registered at the
//              phase's start and deregistered at its end, against bench/health-peer.ts in its own process on CPU 0
//              (127.0.0.1-10, 4 ports): the checks' own cost on the DNS event loop (issue 18: >= 0.8x quiet).
// The writing phases run interleaved in one dnsperf run (-S 1): --rounds rounds of blocks of --block seconds,
// a quiet block before and after each writing block, each writing block's rate over the mean of the two quiet
// ones around it. The checked phase runs --rounds rounds of its own (quiet, checked; --duration s each). The churn
// is sent from this process over keep-alive HTTP with bench/raw-http.ts (its cost lands on dnsperf's CPU), as a
// user's deploy tooling would; the server is on CPU 1, dnsperf and this process on CPU 0 (as bench/dns.ts pins
// them). Each line shows how busy the server and both cores were. Then the writes alone, without DNS load: the
// server's CPU per write.
// --profile: instead, a CPU profile of the server under the unrelated writes alone (warmed first; no DNS load; with
// the checked phase among --phases, under the checks alone), printed as the hot functions.
// Usage: bench/run.sh dns-churn [--services 1000] [--rate 100] [--rounds 3] [--block 3] [--duration 4] [--warmup 30]
//   [--warm-writes 5000] [--checked 300] [--check-interval 1000] [--phases quiet,bare,unrelated,asked,checked] [--no-pin] [--profile]
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Agent, request } from "undici";
import { canPin, children, runMain, sleep, stopChild } from "./children.js";
import { printHotFunctions } from "./cpuprofile.js";
import { pace, type Paced } from "./pace.js";
import { RawHttp } from "./raw-http.js";
import { dnsperf as runDnsperf, requireDnsperf } from "./dnsperf.js";
import { coreBusyMs, processCpuMs } from "./procstat.js";
import { instancesOf, queryFile, questions, serviceName } from "./dns-fixtures.js";
import { fmt, median, readyLine } from "./stats.js";

const { values: opts } = parseArgs({
  options: {
    services: { type: "string", default: "1000" },
    rate: { type: "string", default: "100" },
    rounds: { type: "string", default: "3" },
    duration: { type: "string", default: "4" },
    block: { type: "string", default: "3" },
    warmup: { type: "string", default: "30" },
    "warm-writes": { type: "string", default: "5000" },
    clients: { type: "string", default: "4" },
    unrelated: { type: "string", default: "100" },
    checked: { type: "string", default: "300" },
    "check-interval": { type: "string", default: "1000" },
    phases: { type: "string", default: "quiet,bare,unrelated,asked,checked" },
    "no-pin": { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
  },
});
const services = Number(opts.services);
const rate = Number(opts.rate);
const rounds = Number(opts.rounds);
const duration = Number(opts.duration);
const block = Number(opts.block);
const warmup = Number(opts.warmup);
const warmWrites = Number(opts["warm-writes"]);
const clients = Number(opts.clients);
const unrelated = Number(opts.unrelated);
const pin = canPin(opts["no-pin"]);
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const work = mkdtempSync(join(tmpdir(), "hd-dns-churn-"));

type Phase = "quiet" | "bare" | "unrelated" | "asked" | "checked";
const ALL_PHASES: readonly Phase[] = ["quiet", "bare", "unrelated", "asked", "checked"];
const PHASES = opts.phases.split(",") as Phase[];
for (const p of PHASES) if (!ALL_PHASES.includes(p)) throw new Error(`--phases: unknown phase ${p} (${ALL_PHASES.join(", ")})`);
if (PHASES[0] !== "quiet") throw new Error("--phases must start with quiet: the ratios are to it");
const checked = Number(opts.checked);
const checkInterval = Number(opts["check-interval"]);
/** Writes a second, for the phases that write. */
type Writing = "bare" | "unrelated" | "asked";

requireDnsperf();

/** dnsperf, asynchronously: this process keeps sending the churn meanwhile. */
const dnsperf = (port: number, file: string, seconds: number, statsEvery?: number) => runDnsperf(port, file, seconds, { clients, pin, statsEvery });

/** Sends `perSecond` (--rate) writes of a phase's kind a second (bench/pace.ts) over bench/raw-http.ts (the driver
 * shares dnsperf's CPU) until stopped; counts the acknowledged ones. */
function churn(client: RawHttp, phase: Writing, perSecond = rate): Paced {
  return pace(perSecond, () => {
    const seq = ++churnSeq;
    let id: string;
    let body: Record<string, unknown>;
    if (phase !== "asked") {
      const k = seq % unrelated;
      id = `churn-${k}`;
      body = { name: `churn-${k}`, address: `10.200.${k >> 8}.${k & 255}`, port: 20_000 + (seq % 1000), metadata: { rev: String(seq) } };
    } else {
      // Spread over every asked service: a stride coprime with the service count walks them all.
      const s = (seq * 7919) % services;
      const k = seq % 3;
      const inst = instancesOf(s)[k]!;
      const moved = Math.floor(seq / services) % 2 === 1;
      body = { name: serviceName(s), address: inst.address, port: moved ? inst.port + 1000 : inst.port, metadata: { rev: String(seq) } };
      id = inst.id;
    }
    return client.request("PUT", `/v1/services/${id}`, JSON.stringify(body)).then((status) => status >= 200 && status < 300);
  });
}
let churnSeq = 0;

async function bulk(base: string, agent: Agent, body: object): Promise<void> {
  const res = await request(`${base}/v1/services/bulk`, { method: "POST", dispatcher: agent, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`bulk: HTTP ${res.statusCode}: ${text.slice(0, 300)}`);
}

/** bench/health-peer.ts on CPU 0 (IPC): the health endpoints the checked phase's instances are checked at. */
async function startPeer(): Promise<{ child: ChildProcess; ports: number[]; requests: () => Promise<number> }> {
  const argv = [here("./health-peer.js"), "--addresses", "10", "--ports", "4"];
  const child = spawn(pin ? "taskset" : process.execPath, pin ? ["-c", "0", process.execPath, ...argv] : argv, { stdio: ["ignore", "ignore", "inherit", "ipc"] });
  children.push(child);
  const next = <T>(key: string) => new Promise<T>((resolve) => {
    const on = (m: Record<string, unknown>) => {
      if (!(key in m)) return;
      child.off("message", on);
      resolve(m as T);
    };
    child.on("message", on);
  });
  const { ports } = await next<{ ports: number[] }>("ready");
  return {
    child,
    ports,
    requests: async () => {
      const reply = next<{ requests: number }>("requests");
      child.send({ count: true });
      return (await reply).requests;
    },
  };
}

async function dnsStats(base: string): Promise<{ hits: number; misses: number } | undefined> {
  const res = await request(`${base}/v1/stats`);
  const body = (await res.body.json()) as { dns?: { cacheHits?: number; cacheMisses?: number } };
  return body.dns?.cacheMisses === undefined ? undefined : { hits: body.dns.cacheHits ?? 0, misses: body.dns.cacheMisses };
}

async function main(): Promise<void> {
  // This process shares CPU 0 with dnsperf: the server keeps CPU 1 to itself.
  if (pin) spawnSync("taskset", ["-p", "-c", "0", String(process.pid)], { stdio: "ignore" });
  console.log(`cpus: ${cpus().length} x ${cpus()[0]?.model ?? "?"}; node ${process.version}; load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  const file = join(work, "queries.txt");
  writeFileSync(file, queryFile(questions(services, Math.max(20_000, services * 20))));
  const profile = opts.profile ? join(work, "ours.cpuprofile") : undefined;
  const serverArgs = [here("./ours-server.js"), "--services", String(services), ...(PHASES.includes("bare") ? ["--bare-writes"] : []), ...(profile ? ["--profile", profile, "--profile-on-signal"] : [])];
  const child = spawn(pin ? "taskset" : process.execPath, [...(pin ? ["-c", "1", process.execPath] : []), ...serverArgs], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  const ready = await readyLine<{ port: number; dnsPort: number; instances: number; barePort?: number }>(child);
  const base = `http://127.0.0.1:${ready.port}`;
  const writer = new RawHttp(ready.port);
  const bareWriter = ready.barePort === undefined ? undefined : new RawHttp(ready.barePort);
  const agent = new Agent({ connections: 32 });
  // The unrelated services, which no query asks.
  for (let k = 0; k < unrelated; k++) {
    const res = await request(`${base}/v1/services/churn-${k}`, { method: "PUT", dispatcher: agent, headers: { "content-type": "application/json" }, body: JSON.stringify({ name: `churn-${k}`, address: `10.200.${k >> 8}.${k & 255}`, port: 20_000 }) });
    await res.body.dump();
    if (res.statusCode >= 300) throw new Error(`registering churn-${k}: HTTP ${res.statusCode}`);
  }
  console.log(`ours: pid ${child.pid}, DNS 127.0.0.1:${ready.dnsPort}, ${ready.instances} + ${unrelated} instances; ${rate} writes/s while churning${pin ? "; server on CPU 1, dnsperf and the churn on CPU 0" : ""}`);
  console.log(`dnsperf -s 127.0.0.1 -p ${ready.dnsPort} -d <queries> -c ${clients} -S 1; ${rounds} rounds of ${PHASES.filter((p) => p !== "checked").join(", ")} in ${block} s blocks${PHASES.includes("checked") ? `, then ${rounds} rounds of quiet, checked of ${duration} s` : ""} (order alternating); warm-up: ${warmWrites} writes of each kind, then ${warmup} s of the blocks\n`);
  await dnsperf(ready.dnsPort, file, 2);
  const peer = PHASES.includes("checked") ? await startPeer() : undefined;
  const [dnsPort, queries] = [ready.dnsPort, file];
  /** The checked instances for the checked phase: on while `run` runs, checked by the server every checkInterval. */
  const withChecks = async <T>(run: () => Promise<T>): Promise<{ result: T; checks: number }> => {
    const ids = Array.from({ length: checked }, (_, k) => `checked-${k}`);
    const register = ids.map((id, k) => ({ id, name: `checked-${k % 30}`, address: `127.0.0.${(k % 10) + 1}`, port: peer!.ports[k % peer!.ports.length]!, healthEndpoint: `/health/${id}`, healthCheckInterval: checkInterval }));
    await bulk(base, agent, { register });
    // Every check runs once meanwhile, and the answer table (emptied by a batch of 300 changes) fills again.
    await dnsperf(dnsPort, queries, Math.max(2, Math.ceil((2 * checkInterval) / 1000)));
    const before = await peer!.requests();
    const result = await run();
    const checks = (await peer!.requests()) - before;
    await bulk(base, agent, { deregister: ids });
    return { result, checks };
  };

  /** --warm-writes writes of a phase's kind, back to back (32 in flight): V8 optimises the path they take. */
  const warmWritePath = async (phase: Writing) => {
    const client = phase === "bare" ? bareWriter! : writer;
    for (let done = 0; done < warmWrites; ) {
      const load = churn(client, phase, Infinity);
      await sleep(200);
      done += (await load.stop()).acked;
    }
  };
  /** The writes alone for `duration` seconds: acknowledged writes a second and the server's CPU ms per write. */
  const writesAlone = async (phase: Writing) => {
    await sleep(300);
    const cpu0 = processCpuMs(child.pid);
    const load = churn(writer, phase);
    await sleep(duration * 1000);
    const w = await load.stop();
    const cpuMs = processCpuMs(child.pid) - cpu0;
    return { rate: w.acked / w.seconds, msPerWrite: cpuMs / Math.max(1, w.acked), failed: w.failed };
  };
  if (profile !== undefined) {
    if (peer !== undefined) {
      // With the checked phase: the checks alone, profiled.
      const c = await withChecks(async () => {
        child.kill("SIGUSR2");
        await sleep(500);
        const cpu0 = processCpuMs(child.pid);
        await sleep(duration * 1000);
        return processCpuMs(child.pid) - cpu0;
      });
      console.log(`profiled: ${fmt(c.checks / duration, 0)} checks/s alone, ${fmt(c.result / Math.max(1, c.checks), 3)} ms of server CPU per check (with the profiler's cost)`);
      await agent.close();
      writer.close();
      await stopChild(child);
      await stopChild(peer.child);
      printHotFunctions(profile);
      return;
    }
    await warmWritePath("unrelated");
    child.kill("SIGUSR2");
    await sleep(500);
    const w = await writesAlone("unrelated");
    console.log(`profiled: ${fmt(w.rate, 0)} unrelated writes/s alone, ${fmt(w.msPerWrite, 2)} ms of server CPU per write (with the profiler's cost)`);
    await agent.close();
    writer.close();
    await stopChild(child);
    printHotFunctions(profile);
    return;
  }

  /** A row of the table: per block (or per round, for checked) the qps, the writes or checks a second, the
   * cache misses and the ratio to quiet. */
  type Row = { qps: number[]; writes: number[]; misses: number[]; ratios: number[] };
  const rows = new Map<Phase, Row>(PHASES.map((p) => [p, { qps: [], writes: [], misses: [], ratios: [] }]));
  const add = (phase: Phase, qpsValue: number, writesPerS: number, missed: number, ratio: number) => {
    const row = rows.get(phase)!;
    row.qps.push(qpsValue);
    row.writes.push(writesPerS);
    row.misses.push(missed);
    row.ratios.push(ratio);
  };
  const busyLine = (c0: number[], c1: number[], ms: number) =>
    `busy: server ${fmt(((c1[0]! - c0[0]!) / ms) * 100, 0)}%, cpu0 ${fmt(((c1[1]! - c0[1]!) / ms) * 100, 0)}%, cpu1 ${fmt(((c1[2]! - c0[2]!) / ms) * 100, 0)}%`;
  const cpuNow = () => [processCpuMs(child.pid), coreBusyMs(0), coreBusyMs(1)];

  // The writing phases, interleaved in one dnsperf run: blocks of --block seconds, quiet before and after each
  // writing block, so each writing block is compared with the quiet on either side of it, seconds apart (this
  // VM's quiet rate drifts by a third within a minute: runs of their own, as the checked phase has, compare
  // moments too far apart). dnsperf -S 1 gives a rate a second; a block's rate is the mean of the seconds wholly
  // inside it.
  const writing = PHASES.filter((p): p is Writing => p !== "quiet" && p !== "checked");
  type Block = { phase: Phase; start: number; end: number; acked: number; failed: number; missed: number; busy: string; qps: number };
  /** The phases in `schedule`, a block each, under one dnsperf run: each block's writes, misses and qps. */
  const runSchedule = async (schedule: readonly Phase[]) => {
    const blocks: Block[] = [];
    const run = dnsperf(ready.dnsPort, file, schedule.length * block + 2, 1);
    await sleep(1000);
    for (const phase of schedule) {
      const before = await dnsStats(base);
      const c0 = cpuNow();
      const start = Date.now();
      let w = { acked: 0, failed: 0, seconds: block };
      let end: number;
      if (phase === "quiet") {
        await sleep(block * 1000);
        end = Date.now();
      } else {
        const load = churn(phase === "bare" ? bareWriter! : writer, phase as Writing);
        await sleep(block * 1000);
        end = Date.now();
        w = await load.stop();
      }
      const busy = busyLine(c0, cpuNow(), end - start);
      const after = await dnsStats(base);
      blocks.push({ phase, start, end, acked: w.acked, failed: w.failed, missed: before && after ? after.misses - before.misses : NaN, busy, qps: NaN });
    }
    const r = await run;
    for (const b of blocks) {
      const inside = r.samples.filter((x) => x.at - 1000 >= b.start && x.at <= b.end);
      b.qps = inside.length > 0 ? inside.reduce((sum, x) => sum + x.qps, 0) / inside.length : NaN;
    }
    return { blocks, r };
  };
  if (writing.length > 0) {
    // Warm-up: V8 runs a code path in its lower tiers until it has run often, and at 100 writes a second the write
    // path (node:http, Hono, zod, the registry) takes tens of seconds to be optimised: measured here, the first
    // ~3,000 writes cost DNS two to three times what a warm write does (BENCHMARKS.md §10). A server that takes
    // writes all day is past that, so the blocks are measured after --warm-writes writes of each kind back to
    // back and --warmup seconds of the schedule itself under dnsperf (the DNS path warms meanwhile).
    for (const phase of writing) await warmWritePath(phase);
    const warmBlocks = Math.max(writing.length * 2, Math.ceil(warmup / block));
    await runSchedule(Array.from({ length: warmBlocks }, (_, i) => (i % 2 === 0 ? "quiet" : writing[(i >> 1) % writing.length]!)));
    const schedule: Phase[] = [];
    for (let round = 1; round <= rounds; round++) for (const p of round % 2 === 1 ? writing : [...writing].reverse()) schedule.push("quiet", p);
    schedule.push("quiet");
    const { blocks, r } = await runSchedule(schedule);
    blocks.forEach((b, i) => {
      const around = [blocks[i - 1]?.qps, blocks[i + 1]?.qps].filter((q): q is number => q !== undefined && Number.isFinite(q));
      const quiet = b.phase === "quiet" ? b.qps : around.reduce((a, q) => a + q, 0) / around.length;
      add(b.phase, b.qps, b.acked / block, b.missed, b.qps / quiet);
      console.log(
        `block ${String(i + 1).padStart(2)} ${b.phase.padEnd(9)} ${fmt(b.qps, 0).padStart(7)} qps${b.phase === "quiet" ? "" : ` (${fmt(b.qps / quiet, 3)}x the quiet around it)`}  writes ${b.acked} acked, ${b.failed} failed  cache misses ${b.missed}  ${b.busy}`,
      );
    });
    console.log(`dnsperf over the whole schedule: ${fmt(r.qps, 0)} qps, lost ${r.lost}`);
  }

  // The checked phase: rounds of their own (quiet, then checked, order alternating), as registering and
  // deregistering the 300 takes seconds each time.
  if (peer !== undefined) {
    const quiet: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      for (const phase of round % 2 === 1 ? (["quiet", "checked"] as const) : (["checked", "quiet"] as const)) {
        await sleep(300);
        const measured = async () => {
          const before = await dnsStats(base);
          const c0 = cpuNow();
          const t0 = performance.now();
          const r = await dnsperf(ready.dnsPort, file, duration);
          const busy = busyLine(c0, cpuNow(), performance.now() - t0);
          const after = await dnsStats(base);
          return { r, busy, missed: before && after ? after.misses - before.misses : NaN };
        };
        const { result: m, checks } = phase === "checked" ? await withChecks(measured) : { result: await measured(), checks: 0 };
        if (phase === "quiet") quiet.push(m.r.qps);
        else add("checked", m.r.qps, checks / duration, m.missed, NaN);
        console.log(`round ${round} ${phase.padEnd(9)} ${fmt(m.r.qps, 0).padStart(7)} qps  lost ${m.r.lost}  ${phase === "checked" ? `checks ${fmt(checks / duration, 0)}/s (answered by the peer)` : ""}  cache misses ${m.missed}  ${m.busy}`);
      }
    }
    const row = rows.get("checked")!;
    row.ratios = row.qps.map((q, i) => q / quiet[i]!);
  }
  const alone = { unrelated: await writesAlone("unrelated"), asked: await writesAlone("asked") };
  await agent.close();
  writer.close();
  bareWriter?.close();
  if (peer) await stopChild(peer.child);

  console.log(`\n| phase | writes (checks) /s (median) | median qps | range | cache misses per block (median) | ratio to quiet (median) | per block (checked: per round) | target |`);
  console.log("|---|---|---|---|---|---|---|---|");
  const target: Record<Phase, string> = { quiet: "", bare: "(the floor)", unrelated: ">= 0.9x", asked: ">= 0.5x", checked: ">= 0.8x" };
  const floor: Record<Phase, number> = { quiet: 0, bare: 0, unrelated: 0.9, asked: 0.5, checked: 0.8 };
  for (const [p, row] of rows) {
    if (row.qps.length === 0) continue;
    const met = p === "quiet" || p === "bare" ? "" : median(row.ratios) >= floor[p] ? " met" : " NOT met";
    console.log(
      `| ${p} | ${fmt(median(row.writes), 0)} | ${fmt(median(row.qps), 0)} | ${fmt(Math.min(...row.qps), 0)} - ${fmt(Math.max(...row.qps), 0)} | ${fmt(median(row.misses), 0)} | **${fmt(median(row.ratios), 3)}x** | ${row.ratios.map((x) => fmt(x, 2)).join(", ")} | ${target[p]}${met} |`,
    );
  }
  const bareRow = rows.get("bare");
  const ourRow = rows.get("unrelated");
  if (bareRow && ourRow && bareRow.ratios.length > 0 && ourRow.ratios.length > 0) {
    console.log(`\nunrelated against bare (their ratios to quiet): ${fmt(median(ourRow.ratios) / median(bareRow.ratios), 3)}x; the bare handler's loss is the floor of any HTTP write in this process`);
  }
  console.log(`\nthe writes alone (no DNS load, ${duration} s each): server CPU per write`);
  for (const p of ["unrelated", "asked"] as const) {
    const a = alone[p];
    console.log(`- ${p}: ${fmt(a.rate, 0)} writes/s, ${fmt(a.msPerWrite, 2)} ms per write (${fmt((a.rate * a.msPerWrite) / 10, 1)}% of a core)${a.failed > 0 ? `, ${a.failed} failed` : ""}`);
  }
}

await runMain(main, work, "the query file");
