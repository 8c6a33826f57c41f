// HTTP query throughput: our GET /v1/services with 10k instances against a bare Hono route that returns the very
// same bytes, same listener, same load tool (wrk), same run. Rounds alternate which server goes first; medians
// are reported. Usage: node dist/bench/http-query.js [--duration 5] [--warmup 2] [--rounds 5] [--connections 32]
//   [--instances 10000] [--no-pin] [--profile [--query selective|broad]]
// --profile: one wrk run per server on one query with both servers CPU-profiled (serving phase only); prints the
// hottest functions of each instead of a comparison (profiling slows both, so those req/s are not results).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { expectedCount, QUERIES, QUERY_NAMES, type QueryName } from "./fixtures.js";
import { originOf, profileTop, type CallFrame } from "./profile-top.js";
import { fmt, median, readyLine } from "./stats.js";
import { canPin, children, stopChild } from "./children.js";

const { values: opts } = parseArgs({
  options: {
    duration: { type: "string", default: "5" },
    warmup: { type: "string", default: "2" },
    rounds: { type: "string", default: "5" },
    connections: { type: "string", default: "32" },
    instances: { type: "string", default: "10000" },
    "no-pin": { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    query: { type: "string", default: "selective" },
  },
});
const duration = Number(opts.duration);
const warmup = Number(opts.warmup);
const rounds = Number(opts.rounds);
const connections = Number(opts.connections);
const instances = Number(opts.instances);
// Two cores: the server under test on CPU 1, wrk on CPU 0, so neither steals the other's core.
const pin = canPin(opts["no-pin"]);

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const resultsDir = here("../../bench/results/");
const work = mkdtempSync(join(tmpdir(), "hd-bench-"));

const WRK_REPORT = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"durationUs":%d,"bytes":%d,"errors":%d,"latencyUs":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect + e.read + e.write + e.status + e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`;
const luaFile = join(work, "report.lua");
writeFileSync(luaFile, WRK_REPORT);

interface WrkResult {
  requests: number;
  durationUs: number;
  bytes: number;
  errors: number;
  latencyUs: { mean: number; p50: number; p90: number; p99: number; max: number };
}
interface Run extends WrkResult {
  server: "ours" | "bare";
  query: QueryName;
  round: number;
  rps: number;
}

function wrk(url: string, seconds: number): WrkResult {
  const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "-s", luaFile, url];
  const res = spawnSync(pin ? "taskset" : "wrk", pin ? ["-c", "0", "wrk", ...args] : args, { encoding: "utf8" });
  if (res.status !== 0) throw new Error(`wrk failed (${res.status}): ${res.stderr}`);
  const line = res.stdout.split("\n").reverse().find((l) => l.startsWith("{"));
  if (line === undefined) throw new Error(`no report from wrk:\n${res.stdout}`);
  return JSON.parse(line) as WrkResult;
}

function startChild(script: string, args: string[]): ChildProcess {
  const argv = [here(script), ...args];
  return spawn(pin ? "taskset" : process.execPath, pin ? ["-c", "1", process.execPath, ...argv] : argv, {
    stdio: ["ignore", "pipe", "inherit"],
  });
}


const ourPath = (q: QueryName) => `/v1/services?${QUERIES[q]}`;
// The bare route is matched on its path alone; the same query string rides along so both requests are alike.
const barePath = (q: QueryName) => `/bare/${q}?${QUERIES[q]}`;


async function main(): Promise<void> {
  const profDir = opts.profile ? join(resultsDir, `prof-${new Date().toISOString().replace(/[:.]/g, "-")}`) : undefined;
  if (profDir !== undefined) mkdirSync(profDir, { recursive: true });
  const profArgs = (name: string) => (profDir === undefined ? [] : ["--profile", join(profDir, `${name}.cpuprofile`)]);
  const ours = startChild("./ours-server.js", ["--instances", String(instances), ...profArgs("ours")]);
  children.push(ours);
  const oursReady = await readyLine<{ port: number; instances: number; registerMs: number }>(ours);
  const oursBase = `http://127.0.0.1:${oursReady.port}`;
  console.log(`ours: pid ${ours.pid}, port ${oursReady.port}, ${oursReady.instances} instances registered in ${oursReady.registerMs} ms`);

  const bodies: Record<string, string> = {};
  const contentTypes: Record<string, string | null> = {};
  for (const q of QUERY_NAMES) {
    const res = await fetch(oursBase + ourPath(q));
    if (res.status !== 200) throw new Error(`GET ${ourPath(q)}: ${res.status} ${await res.text()}`);
    const body = await res.text();
    const count = (JSON.parse(body) as { count: number }).count;
    if (count !== expectedCount(q, instances)) throw new Error(`${q}: ${count} results, expected ${expectedCount(q, instances)}`);
    bodies[q] = body;
    contentTypes[q] = res.headers.get("content-type");
    console.log(`${q}: GET ${ourPath(q)} -> ${count} results, ${Buffer.byteLength(body)} bytes`);
  }

  const bodiesFile = join(work, "bodies.json");
  writeFileSync(bodiesFile, JSON.stringify(bodies));
  const bare = startChild("./bare-hono.js", [bodiesFile, ...profArgs("bare")]);
  children.push(bare);
  const bareReady = await readyLine<{ port: number }>(bare);
  const bareBase = `http://127.0.0.1:${bareReady.port}`;
  console.log(`bare: pid ${bare.pid}, port ${bareReady.port}`);
  for (const q of QUERY_NAMES) {
    const res = await fetch(bareBase + barePath(q));
    const body = await res.text();
    if (body !== bodies[q] || res.headers.get("content-type") !== contentTypes[q]) {
      throw new Error(`bare route ${q} does not return the same bytes and content-type as ours`);
    }
  }
  console.log(`load average before measuring: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  console.log(`bodies verified identical; wrk -t1 -c${connections}, ${duration}s x ${rounds} rounds per server per query, warmup ${warmup}s${pin ? ", server on CPU 1, wrk on CPU 0" : ""}\n`);

  const targets = { ours: (q: QueryName) => oursBase + ourPath(q), bare: (q: QueryName) => bareBase + barePath(q) };

  if (profDir !== undefined) {
    const q = opts.query as QueryName;
    if (!QUERY_NAMES.includes(q)) throw new Error(`--query must be one of ${QUERY_NAMES.join(", ")}`);
    for (const server of ["ours", "bare"] as const) {
      wrk(targets[server](q), warmup);
      const r = wrk(targets[server](q), duration);
      console.log(`profiled ${server} ${q}: ${fmt(r.requests / (r.durationUs / 1e6), 0)} req/s (slowed by the profiler: not a result)`);
    }
    await Promise.all([stopChild(ours), stopChild(bare)]);
    for (const server of ["ours", "bare"] as const) {
      console.log(`\n${server}: ${join(profDir, `${server}.cpuprofile`)}\n`);
      printHotFunctions(join(profDir, `${server}.cpuprofile`));
    }
    return;
  }
  const runs: Run[] = [];
  for (const q of QUERY_NAMES) {
    for (const server of ["ours", "bare"] as const) wrk(targets[server](q), warmup);
    for (let round = 1; round <= rounds; round++) {
      const order = round % 2 === 1 ? (["ours", "bare"] as const) : (["bare", "ours"] as const);
      for (const server of order) {
        const r = wrk(targets[server](q), duration);
        if (r.errors > 0) throw new Error(`${server} ${q}: ${r.errors} socket/status errors`);
        const run: Run = { ...r, server, query: q, round, rps: r.requests / (r.durationUs / 1e6) };
        runs.push(run);
        console.log(
          `${q.padEnd(9)} round ${round} ${server.padEnd(4)} ${fmt(run.rps, 0).padStart(7)} req/s  p50 ${fmt(r.latencyUs.p50 / 1000, 2)} ms  p99 ${fmt(r.latencyUs.p99 / 1000, 2)} ms`,
        );
      }
    }
  }

  const summary = QUERY_NAMES.map((q) => {
    const pick = (s: "ours" | "bare") => runs.filter((r) => r.query === q && r.server === s);
    const agg = (s: "ours" | "bare") => {
      const rs = pick(s);
      return {
        rps: median(rs.map((r) => r.rps)),
        p50Ms: median(rs.map((r) => r.latencyUs.p50)) / 1000,
        p99Ms: median(rs.map((r) => r.latencyUs.p99)) / 1000,
        meanMs: median(rs.map((r) => r.latencyUs.mean)) / 1000,
      };
    };
    const o = agg("ours");
    const b = agg("bare");
    const perRound = pick("ours").map((r) => r.rps / pick("bare").find((x) => x.round === r.round)!.rps);
    return { query: q, path: ourPath(q), results: expectedCount(q, instances), bodyBytes: Buffer.byteLength(bodies[q]!), ours: o, bare: b, ratio: o.rps / b.rps, perRoundRatios: perRound, met: o.rps / b.rps >= 0.8 };
  });

  console.log("\n| query | results | body bytes | ours req/s | bare req/s | ratio (target >= 0.8) | ours p50 / p99 ms | bare p50 / p99 ms | per-round ratios |");
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const s of summary) {
    console.log(
      `| ${s.query} \`${s.path}\` | ${s.results} | ${s.bodyBytes} | ${fmt(s.ours.rps, 0)} | ${fmt(s.bare.rps, 0)} | **${fmt(s.ratio, 3)}** ${s.met ? "met" : "NOT met"} | ${fmt(s.ours.p50Ms, 2)} / ${fmt(s.ours.p99Ms, 2)} | ${fmt(s.bare.p50Ms, 2)} / ${fmt(s.bare.p99Ms, 2)} | ${s.perRoundRatios.map((r) => fmt(r, 3)).join(", ")} |`,
    );
  }
  mkdirSync(resultsDir, { recursive: true });
  const out = join(resultsDir, `http-query-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(out, JSON.stringify({ node: process.version, loadavg: loadavg(), instances, connections, duration, rounds, pin, summary, runs }, null, 2));
  console.log(`\nraw results: ${out}`);
}

/** Self time from a .cpuprofile: by origin (ours, Hono's two packages, the rest), then the top 15 functions. */
function printHotFunctions(file: string): void {
  const origin = (f: CallFrame) =>
    f.url.includes("/dist/src/") ? "src (ours)"
    : f.url.includes("/node_modules/@hono/node-server/") ? "@hono/node-server"
    : f.url.includes("/node_modules/hono/") ? "hono"
    : f.url.includes("/node_modules/") ? "other packages"
    : originOf(f);
  console.log(profileTop(file, 15, origin).join("\n"));
}

try {
  await main();
} finally {
  await Promise.all(children.map(stopChild));
  rmSync(work, { recursive: true, force: true });
}
