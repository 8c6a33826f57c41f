// The durable store's cost: registrations per second through the API with --data-dir against --in-memory
// (same built CLI, same load, same run), single PUTs (wrk, 1 and 16 connections) and bulk POSTs (100 and 1000
// per call); and restart time with 100k stored instances (spawn of dist/src/main.js to its "registry ready" log
// line and to GET /v1/status answering), from a journal and from a snapshot. Addresses are 10.x.y.z and no
// instance has a check, so nothing is contacted.
// Usage: node dist/bench/store.js [--duration 8] [--bulk-duration 6] [--rounds 2] [--restarts 3] [--instances 100000]
//   [--only throughput|restart] [--no-pin] [--profile] [--base <another build's dist/src/main.js>]
// Besides wall time, the servers' own CPU time (user + system, /proc/<pid>/stat) is reported: it is what a busy
// machine changes least. --profile: one more restart of each data set under `node --cpu-prof`, summarised.
// --base: every restart round also restarts each data set with that build (e.g. the commit before a change, built
// in a copy of the repository), alternating which goes first, so before and after are measured in the same run.
/// <reference path="../src/main.ts" />
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import pino from "pino";
import { startDiscovery } from "../src/app/discovery.js";
import type { ServiceInput } from "../src/model/schema.js";
import { FileStore } from "../src/store/index.js";
import { instanceInputs } from "./fixtures.js";
import { processCpuMs } from "./procstat.js";
import { profileTop } from "./profile-top.js";
import { fmt, median, percentile } from "./stats.js";
import { canPin, children, now, runMain, sleep, stopChild, stopping } from "./children.js";

const { values: opts } = parseArgs({
  options: {
    duration: { type: "string", default: "8" },
    "bulk-duration": { type: "string", default: "6" },
    restarts: { type: "string", default: "3" },
    rounds: { type: "string", default: "2" },
    instances: { type: "string", default: "100000" },
    only: { type: "string" },
    "no-pin": { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    base: { type: "string" },
  },
});
const DURATION = Number(opts.duration);
const BULK_DURATION = Number(opts["bulk-duration"]);
const RESTARTS = Number(opts.restarts);
const ROUNDS = Number(opts.rounds);
const INSTANCES = Number(opts.instances);
// Two cores: the servers on CPU 1; wrk and this driver on CPU 0.
const pin = canPin(opts["no-pin"]);

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const repo = here("../../");
const MAIN = here("../src/main.js");
const resultsDir = here("../../bench/results/");
// On the same disk as a user's ./data: os.tmpdir() here is ext4 on the VM's disk, not tmpfs (checked below).
const work = mkdtempSync(join(tmpdir(), "hd-store-"));


function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}


/** The built CLI as a user runs it, on CPU 1; stdout (the JSON log) piped or written to a file. */
function spawnServer(args: string[], stdout: "pipe" | string, nodeArgs: string[] = [], main = MAIN): ChildProcess {
  const out = stdout === "pipe" ? "pipe" : openSync(stdout, "w");
  const argv = [...nodeArgs, main, "--node-id", "bench", "--dns-listen", "127.0.0.1:0", ...args];
  const child = spawn(pin ? "taskset" : process.execPath, pin ? ["-c", "1", process.execPath, ...argv] : argv, {
    cwd: repo,
    stdio: ["ignore", out, "inherit"],
  });
  if (typeof out === "number") closeSync(out);
  children.push(child);
  child.once("exit", (code, signal) => {
    if (!stopping.has(child)) console.error(`server pid ${child.pid} exited unexpectedly: code ${code}, signal ${signal}${stdout === "pipe" ? "" : `; its log: ${stdout}`}`);
  });
  return child;
}

async function waitStatus(base: string, child: ChildProcess, timeoutMs = 60_000): Promise<number> {
  const started = now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${base}/v1/status`);
      await res.arrayBuffer();
      if (res.status === 200) return now();
    } catch {
      // not listening yet
    }
    if (now() - started > timeoutMs) throw new Error(`${base} not answering after ${timeoutMs} ms`);
    await sleep(5);
  }
}

async function totalCount(base: string): Promise<number> {
  const res = await fetch(`${base}/v1/stats`);
  return ((await res.json()) as { totalCount: number }).totalCount;
}

// ---------------------------------------------------------------------------------------------------------
// 1. Registration throughput

const WRK_SCRIPT = `
local counter = 0
local prefix = "r"
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"
init = function(args) prefix = args[1] or "r" end
request = function()
  counter = counter + 1
  local body = string.format('{"name":"reg-%d","version":"1.2.3","address":"10.%d.%d.%d","port":8080,"tags":["prod","zone-%d","http"],"metadata":{"team":"platform","slot":"%d","region":"eu-1"}}',
    counter % 1000, math.floor(counter / 65536) % 256, math.floor(counter / 256) % 256, counter % 256, counter % 3, counter % 10)
  return wrk.format(nil, "/v1/services/" .. prefix .. "-" .. counter, nil, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"durationUs":%d,"errors":%d,"status":%d,"latencyUs":{"p50":%d,"p99":%d,"max":%d}}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
`;

interface Rate {
  server: "durable" | "memory";
  round?: number;
  mode: string;
  registrations: number;
  /** The server's CPU time per registration, us (its whole process: HTTP, validation, logging, store). */
  cpuUsPerRegistration?: number;
  seconds: number;
  perSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
  errors: number;
}

/** wrk as an async child: a spawnSync would stall this process's event loop, and undici would then reuse a
 * keep-alive socket the server closed meanwhile ("other side closed" on the next POST). */
async function wrkPut(base: string, connections: number, seconds: number, prefix: string, lua: string): Promise<Omit<Rate, "server">> {
  const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--timeout", "10s", "-s", lua, base, "--", prefix];
  const child = spawn(pin ? "taskset" : "wrk", pin ? ["-c", "0", "wrk", ...args] : args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`wrk failed (${code}): ${stderr}`);
  const line = stdout.split("\n").reverse().find((l) => l.startsWith("{"));
  if (line === undefined) throw new Error(`no report from wrk:\n${stdout}`);
  const r = JSON.parse(line) as { requests: number; durationUs: number; errors: number; latencyUs: { p50: number; p99: number; max: number } };
  const s = r.durationUs / 1e6;
  return {
    mode: `single PUT, ${connections} connection${connections > 1 ? "s" : ""}`,
    registrations: r.requests,
    seconds: s,
    perSecond: r.requests / s,
    latencyMs: { p50: r.latencyUs.p50 / 1000, p99: r.latencyUs.p99 / 1000, max: r.latencyUs.max / 1000 },
    errors: r.errors,
  };
}

function bulkInput(prefix: string, i: number): object {
  return {
    id: `${prefix}-${i}`,
    name: `reg-${i % 1000}`,
    version: "1.2.3",
    address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    port: 8080,
    tags: ["prod", `zone-${i % 3}`, "http"],
    metadata: { team: "platform", slot: String(i % 10), region: "eu-1" },
  };
}

/** POST /v1/services/bulk with `size` new instances per call, one call at a time, for `seconds`. */
async function bulkLoad(base: string, size: number, seconds: number, prefix: string): Promise<Omit<Rate, "server">> {
  const latencies: number[] = [];
  let registered = 0;
  let errors = 0;
  let i = 0;
  const started = now();
  while (now() - started < seconds * 1000) {
    const body = JSON.stringify({ register: Array.from({ length: size }, () => bulkInput(prefix, i++)) });
    const t = now();
    const res = await fetch(`${base}/v1/services/bulk`, { method: "POST", headers: { "content-type": "application/json" }, body });
    await res.arrayBuffer();
    latencies.push(now() - t);
    if (res.status === 200) registered += size;
    else errors += 1;
  }
  const s = (now() - started) / 1000;
  return {
    mode: `bulk POST, ${size} per call`,
    registrations: registered,
    seconds: s,
    perSecond: registered / s,
    latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: Math.max(...latencies) },
    errors,
  };
}

async function throughput(): Promise<{ rates: Rate[]; ratios: { mode: string; durable: number; memory: number; ratio: number; perRound: number[] }[]; counts: Record<string, number> }> {
  const lua = join(work, "put.lua");
  writeFileSync(lua, WRK_SCRIPT);
  const dataDir = join(work, "throughput-data");
  const servers = {} as Record<"durable" | "memory", { child: ChildProcess; base: string }>;
  for (const kind of ["durable", "memory"] as const) {
    const port = await freePort();
    const child = spawnServer(["--http-listen", `127.0.0.1:${port}`, ...(kind === "durable" ? ["--data-dir", dataDir] : ["--in-memory"])], join(work, `${kind}.log`));
    const base = `http://127.0.0.1:${port}`;
    await waitStatus(base, child);
    servers[kind] = { child, base };
    console.log(`${kind}: pid ${child.pid}, ${base}${kind === "durable" ? `, --data-dir ${dataDir}` : ", --in-memory"}${pin ? ", CPU 1" : ""}`);
  }
  const rates: Rate[] = [];
  const expected = { durable: 0, memory: 0 };
  let run = 0;
  const modes: { label: string; go: (kind: "durable" | "memory") => Promise<Omit<Rate, "server">> }[] = [
    { label: "c1", go: (k) => wrkPut(servers[k].base, 1, DURATION, `c1-${run++}`, lua) },
    { label: "c16", go: (k) => wrkPut(servers[k].base, 16, DURATION, `c16-${run++}`, lua) },
    { label: "b100", go: (k) => bulkLoad(servers[k].base, 100, BULK_DURATION, `b100-${run++}`) },
    { label: "b1000", go: (k) => bulkLoad(servers[k].base, 1000, BULK_DURATION, `b1000-${run++}`) },
  ];
  for (let round = 1; round <= ROUNDS; round++) for (const [m, mode] of modes.entries()) {
    // Alternate which server goes first, so a drift of this VM's speed does not always favour the same one.
    const order = (m + round) % 2 === 1 ? (["durable", "memory"] as const) : (["memory", "durable"] as const);
    for (const kind of order) {
      const cpuBefore = processCpuMs(servers[kind].child.pid);
      const r: Rate = { server: kind, round, ...(await mode.go(kind)) };
      r.cpuUsPerRegistration = ((processCpuMs(servers[kind].child.pid) - cpuBefore) * 1000) / r.registrations;
      if (r.errors > 0) throw new Error(`${kind} ${r.mode}: ${r.errors} errors`);
      rates.push(r);
      // wrk counts requests it sent; its last ones may be cut off at the deadline without an answer counted.
      expected[kind] += r.registrations;
      console.log(`round ${round} ${kind.padEnd(7)} ${r.mode.padEnd(28)} ${fmt(r.perSecond, 0).padStart(7)} registrations/s  p50 ${fmt(r.latencyMs.p50, 2)} ms  p99 ${fmt(r.latencyMs.p99, 2)} ms  server CPU ${fmt(r.cpuUsPerRegistration, 0)} us/registration`);
    }
  }
  const counts: Record<string, number> = {};
  for (const kind of ["durable", "memory"] as const) {
    counts[`${kind}Registered`] = await totalCount(servers[kind].base);
    counts[`${kind}Counted`] = expected[kind];
    await stopChild(servers[kind].child);
  }
  // Compactions of the durable server: each writes the whole state at once, while writes wait.
  const compactions = readFileSync(join(work, "durable.log"), "utf8")
    .split("\n")
    .filter((l) => l.includes('"store compacted"'))
    .map((l) => JSON.parse(l) as { time: number; entries: number; bytes: number });
  counts.compactions = compactions.length;
  counts.largestCompactionEntries = Math.max(0, ...compactions.map((c) => c.entries));
  counts.journalBytes = existsSync(join(dataDir, "registry.journal")) ? statSync(join(dataDir, "registry.journal")).size : 0;
  counts.snapshotBytes = existsSync(join(dataDir, "registry.snapshot")) ? statSync(join(dataDir, "registry.snapshot")).size : 0;
  // Medians over rounds; the per-round ratios show how much this machine moved between rounds.
  const ratios = [...new Set(rates.map((r) => r.mode))].map((mode) => {
    const pick = (server: Rate["server"]) => rates.filter((r) => r.mode === mode && r.server === server);
    const d = median(pick("durable").map((r) => r.perSecond));
    const m = median(pick("memory").map((r) => r.perSecond));
    const perRound = pick("durable").map((r) => r.perSecond / pick("memory").find((x) => x.round === r.round)!.perSecond);
    return { mode, durable: d, memory: m, ratio: d / m, perRound };
  });
  return { rates, ratios, counts };
}

// ---------------------------------------------------------------------------------------------------------
// 2. Restart time with 100k stored instances

const silent = pino({ level: "silent" });

/** Writes instances through Discovery over a FileStore, i.e. the very records the server writes, with compaction off. */
async function fill(dir: string, inputs: readonly ServiceInput[], mode: "bulk" | "single"): Promise<number> {
  const started = now();
  const store = new FileStore({ dir, logger: silent, compactAfterBytes: Number.MAX_SAFE_INTEGER });
  const discovery = await startDiscovery({ nodeId: "bench", store, logger: silent });
  if (mode === "bulk") {
    for (let i = 0; i < inputs.length; i += 10_000) await discovery.bulk({ register: inputs.slice(i, i + 10_000) });
  } else {
    // Many in flight at once, as many clients would be: one journal record each, sharing fdatasyncs.
    for (let i = 0; i < inputs.length; i += 2000) await Promise.all(inputs.slice(i, i + 2000).map((input) => discovery.registerService(input)));
  }
  await discovery.stop();
  return now() - started;
}

async function compact(dir: string): Promise<number> {
  const started = now();
  const store = new FileStore({ dir, logger: silent });
  await store.load();
  await store.compact();
  await store.close();
  return now() - started;
}

function files(dir: string): Record<string, number> {
  return Object.fromEntries(readdirSync(dir).map((f) => [f, statSync(join(dir, f)).size]));
}

interface Restart {
  /** The server's CPU time (user + system) when /v1/status first answered. */
  cpuMs: number;
  readyMs: number;
  statusMs: number;
  listeningMs: number;
  restored: number;
  loadReport: unknown;
}

/** Spawns the CLI on a data dir; times spawn -> "registry ready" log line and spawn -> /v1/status 200. */
async function restart(dir: string, nodeArgs: string[] = [], main = MAIN): Promise<Restart> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const t0 = now();
  const child = spawnServer(["--http-listen", `127.0.0.1:${port}`, "--data-dir", dir], "pipe", nodeArgs, main);
  let readyMs = NaN;
  let listeningMs = NaN;
  let restored = NaN;
  let loadReport: unknown;
  const lines = createInterface({ input: child.stdout! });
  lines.on("line", (line) => {
    const at = now() - t0;
    if (!line.startsWith("{")) return;
    const rec = JSON.parse(line) as { msg?: string; restored?: number; snapshotEntries?: number; journalRecords?: number; droppedTailBytes?: number };
    if (rec.msg === "registry ready") {
      readyMs = at;
      restored = rec.restored ?? NaN;
      loadReport = { snapshotEntries: rec.snapshotEntries, journalRecords: rec.journalRecords, droppedTailBytes: rec.droppedTailBytes };
    } else if (rec.msg === "HTTP API listening") listeningMs = at;
  });
  const statusMs = (await waitStatus(base, child)) - t0;
  const cpu = processCpuMs(child.pid);
  const count = await totalCount(base);
  await stopChild(child);
  lines.close();
  if (count !== INSTANCES || restored !== INSTANCES) throw new Error(`restart of ${dir}: ${count} instances (${restored} restored), expected ${INSTANCES}`);
  return { cpuMs: cpu, readyMs, statusMs, listeningMs, restored, loadReport };
}

interface DataSet {
  name: string;
  dir: string;
  note: string;
  fillMs: number;
  files: Record<string, number>;
  runs: Restart[];
  /** The same restarts with --base's build. */
  baseRuns: Restart[];
}

async function restarts(): Promise<{ sets: DataSet[]; profile?: string[] }> {
  const inputs = instanceInputs(INSTANCES);
  const sets: DataSet[] = [];
  const add = (name: string, dir: string, note: string, fillMs: number) => sets.push({ name, dir, note, fillMs, files: files(dir), runs: [], baseRuns: [] });

  const n = INSTANCES;
  const bulkDir = join(work, "journal-bulk");
  add(`journal, ${Math.ceil(n / 10_000)} records of 10k`, bulkDir, `${n} bulk-registered 10k per call, compaction off`, await fill(bulkDir, inputs, "bulk"));
  const singleDir = join(work, "journal-single");
  add(`journal, ${n} records of 1`, singleDir, `${n} single registrations, compaction off`, await fill(singleDir, inputs, "single"));
  const snapDir = join(work, "snapshot");
  cpSync(bulkDir, snapDir, { recursive: true });
  add("snapshot (after compaction)", snapDir, "the bulk journal compacted by FileStore.compact(): snapshot, empty journal", await compact(snapDir));
  // The server compacts once the journal outgrows the snapshot (and 4 MiB): the most it leaves beside a snapshot
  // is a journal of about the snapshot's size. Single re-registrations up to that size: the slowest restart it allows.
  const perRecord = statSync(join(singleDir, "registry.journal")).size / n;
  const extra = Math.min(n, Math.floor(statSync(join(snapDir, "registry.snapshot")).size / perRecord));
  const worstDir = join(work, "snapshot-journal");
  cpSync(snapDir, worstDir, { recursive: true });
  add(
    `snapshot + journal of ${extra} records of 1`,
    worstDir,
    `the snapshot, then ${extra} of its instances re-registered singly: a journal as large as the snapshot, the most the default compaction leaves`,
    await fill(worstDir, inputs.slice(0, extra), "single"),
  );
  for (const s of sets) console.log(`data set "${s.name}" (${s.note}): ${Object.entries(s.files).map(([f, b]) => `${f} ${fmt(b / 1e6, 1)} MB`).join(", ")}; written in ${fmt(s.fillMs, 0)} ms`);

  // Rounds go over every data set in turn, so a slow moment of the VM does not land on one set only.
  for (let round = 1; round <= RESTARTS; round++) {
    for (const s of sets) {
      const builds = opts.base === undefined ? (["this"] as const) : round % 2 === 1 ? (["this", "base"] as const) : (["base", "this"] as const);
      for (const build of builds) {
        const r = await restart(s.dir, [], build === "base" ? opts.base : MAIN);
        (build === "base" ? s.baseRuns : s.runs).push(r);
        console.log(`round ${round} ${build.padEnd(4)} ${s.name.padEnd(48)} registry ready ${fmt(r.readyMs, 0).padStart(5)} ms, /v1/status ${fmt(r.statusMs, 0).padStart(5)} ms, server CPU ${fmt(r.cpuMs, 0).padStart(5)} ms`);
      }
    }
  }
  let profile: string[] | undefined;
  if (opts.profile) {
    profile = [];
    const root = join(resultsDir, `store-prof-${new Date().toISOString().replace(/[:.]/g, "-")}`);
    for (const [i, s] of sets.entries()) {
      const profDir = join(root, String(i));
      mkdirSync(profDir, { recursive: true });
      const r = await restart(s.dir, ["--cpu-prof", "--cpu-prof-dir", profDir, "--cpu-prof-interval", "100"]);
      const file = join(profDir, readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"))!);
      profile.push(`\nprofiled restart of "${s.name}" (node --cpu-prof, whole process life; /v1/status after ${fmt(r.statusMs, 0)} ms under the profiler): ${file}`, "", ...profileTop(file, 15));
    }
  }
  return { sets, ...(profile ? { profile } : {}) };
}

async function main(): Promise<void> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: compile with npx tsc -p bench/tsconfig.json`);
  const fs = spawnSync("df", ["-T", work], { encoding: "utf8" }).stdout.trim().split("\n").pop() ?? "";
  console.log(`data dirs under ${work} (${fs.split(/\s+/)[1] ?? "?"} on ${fs.split(/\s+/)[0] ?? "?"})\n`);
  const startedAt = new Date();
  console.log(`load average before: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  const result: Record<string, unknown> = { node: process.version, pin, filesystem: fs, loadavgBefore: loadavg() };
  if (opts.only !== "restart") {
    const t = await throughput();
    result.throughput = t;
    console.log(`\nregistered per server (GET /v1/stats totalCount): durable ${t.counts.durableRegistered}, in-memory ${t.counts.memoryRegistered} (wrk/driver counted ${t.counts.durableCounted} / ${t.counts.memoryCounted}); durable data dir at the end: journal ${fmt((t.counts.journalBytes ?? 0) / 1e6, 1)} MB, snapshot ${fmt((t.counts.snapshotBytes ?? 0) / 1e6, 1)} MB`);
    console.log(`durable server compactions during the load: ${t.counts.compactions} (the largest wrote ${t.counts.largestCompactionEntries} entries)`);
    console.log(`\n| load (median of ${ROUNDS} rounds) | durable (--data-dir) reg/s | in-memory reg/s | durable / in-memory | per-round ratios | durable p50 / p99 ms | in-memory p50 / p99 ms | server CPU per registration, durable / in-memory |\n|---|---|---|---|---|---|---|---|`);
    for (const r of t.ratios) {
      const pick = (server: Rate["server"]) => t.rates.filter((x) => x.mode === r.mode && x.server === server);
      const ms = (server: Rate["server"], k: "p50" | "p99") => fmt(median(pick(server).map((x) => x.latencyMs[k])), 2);
      const cpu = (server: Rate["server"]) => fmt(median(pick(server).map((x) => x.cpuUsPerRegistration ?? NaN)), 0);
      console.log(
        `| ${r.mode} | ${fmt(r.durable, 0)} | ${fmt(r.memory, 0)} | **${fmt(r.ratio, 3)}** | ${r.perRound.map((x) => fmt(x, 3)).join(", ")} | ${ms("durable", "p50")} / ${ms("durable", "p99")} | ${ms("memory", "p50")} / ${ms("memory", "p99")} | ${cpu("durable")} / ${cpu("memory")} us |`,
      );
    }
  }
  if (opts.only !== "throughput") {
    const r = await restarts();
    result.restart = { instances: INSTANCES, runs: RESTARTS, base: opts.base, sets: r.sets.map(({ dir: _, ...s }) => s) };
    console.log(`\n| data set (${INSTANCES} instances) | files | spawn -> "registry ready" median (min-max) | spawn -> /v1/status 200 median (min-max) | server CPU until then, median | target < 2000 ms |\n|---|---|---|---|---|---|`);
    for (const s of r.sets) {
      const ready = s.runs.map((x) => x.readyMs);
      const status = s.runs.map((x) => x.statusMs);
      const mb = Object.entries(s.files).map(([f, b]) => `${f.replace("registry.", "")} ${fmt(b / 1e6, 1)} MB`).join(", ");
      console.log(
        `| ${s.name} | ${mb} | ${fmt(median(ready), 0)} ms (${fmt(Math.min(...ready), 0)}-${fmt(Math.max(...ready), 0)}) | **${fmt(median(status), 0)} ms** (${fmt(Math.min(...status), 0)}-${fmt(Math.max(...status), 0)}) | ${fmt(median(s.runs.map((x) => x.cpuMs)), 0)} ms | ${median(status) < 2000 ? "met" : "NOT met"} |`,
      );
    }
    if (opts.base !== undefined) {
      console.log(`\n| data set, spawn -> /v1/status 200 median (min-max) | this build | --base ${opts.base} | this / base |\n|---|---|---|---|`);
      for (const s of r.sets) {
        const status = s.runs.map((x) => x.statusMs);
        const base = s.baseRuns.map((x) => x.statusMs);
        console.log(`| ${s.name} | ${fmt(median(status), 0)} ms (${fmt(Math.min(...status), 0)}-${fmt(Math.max(...status), 0)}) | ${fmt(median(base), 0)} ms (${fmt(Math.min(...base), 0)}-${fmt(Math.max(...base), 0)}) | ${fmt(median(status) / median(base), 3)} |`);
      }
    }
    if (r.profile) console.log(`\n${r.profile.join("\n")}`);
  }
  console.log(`\nload average at the end: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  mkdirSync(resultsDir, { recursive: true });
  const out = join(resultsDir, `store-${startedAt.toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(out, JSON.stringify({ ...result, loadavg: loadavg() }, null, 2));
  console.log(`raw results: ${out}`);
}

await runMain(main, work, "the data dirs and logs");
