// Registry scale: query latency at 1k vs 100k instances (uncached registry.query, the cached discover() path and
// the HTTP route's rendered-body lookup), and RSS with 100k instances registered. Each size runs in its own
// child process (node --expose-gc) so memory numbers are not mixed.
// Usage: node dist/bench/registry-scale.js [--sizes 1000,100000] [--ms 500]
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import pino from "pino";
import { startDiscovery } from "../src/app/discovery.js";
import { queryFromParams } from "../src/http/params.js";
import { compileQuery, serviceQuerySchema } from "../src/registry/query.js";
import { parseOrThrow } from "../src/model/schema.js";
import { expectedCount, instanceInputs, QUERIES, QUERY_NAMES, registerAll, type QueryName } from "./fixtures.js";
import { fmt, median, percentile } from "./stats.js";

const { values: opts } = parseArgs({
  options: {
    sizes: { type: "string", default: "1000,100000" },
    ms: { type: "string", default: "500" },
    child: { type: "string" },
  },
});

interface Timing {
  /** Microseconds per call: median and p99 over batches (a batch is enough calls to last >= ~200 us). */
  medianUs: number;
  p99Us: number;
  calls: number;
  batch: number;
}
interface Memory {
  rssMb: number;
  heapUsedMb: number;
  externalMb: number;
}
interface SizeResult {
  instances: number;
  services: number;
  registerMs: number;
  baseline: Memory;
  afterRegister: Memory;
  afterQueries: Memory;
  queries: Record<QueryName, { results: number; uncached: Timing; discover: Timing; httpRender: Timing }>;
}

const mb = (b: number) => Math.round((b / 1048576) * 10) / 10;
function memory(): Memory {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run the child with --expose-gc");
  gc();
  gc();
  const m = process.memoryUsage();
  return { rssMb: mb(m.rss), heapUsedMb: mb(m.heapUsed), externalMb: mb(m.external) };
}

/** Times fn in batches for about budgetMs after a short warmup; returns per-call latency from the batch times. */
function time(fn: () => unknown, budgetMs: number): Timing {
  const warmEnd = performance.now() + Math.min(100, budgetMs / 5);
  let warmCalls = 0;
  while (performance.now() < warmEnd) {
    fn();
    warmCalls++;
  }
  const perCallMs = Math.min(100, budgetMs / 5) / warmCalls;
  const batch = Math.max(1, Math.ceil(0.2 / perCallMs));
  const samples: number[] = [];
  const end = performance.now() + budgetMs;
  while (performance.now() < end) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) fn();
    samples.push(Number(process.hrtime.bigint() - t0) / 1000 / batch);
  }
  return { medianUs: median(samples), p99Us: percentile(samples, 99), calls: samples.length * batch, batch };
}

async function child(instances: number, budgetMs: number): Promise<SizeResult> {
  const baseline = memory();
  const discovery = await startDiscovery({ nodeId: "bench", logger: pino({ level: "silent" }) });
  const registerMs = await registerAll(discovery, instanceInputs(instances));
  const afterRegister = memory();

  const queries = {} as SizeResult["queries"];
  for (const q of QUERY_NAMES) {
    const search = QUERIES[q];
    const plain = queryFromParams(new URLSearchParams(search));
    const parsed = parseOrThrow(serviceQuerySchema, plain, "query");
    const results = discovery.registry.query(compileQuery(parsed)).length;
    if (results !== expectedCount(q, instances)) throw new Error(`${q}: ${results} results, expected ${expectedCount(q, instances)}`);

    // Uncached: compile + index lookup + match + sort, as on a cache miss.
    const uncached = time(() => discovery.registry.query(compileQuery(parsed)), budgetMs);
    // Cached library path: zod-parse the plain query, compile it for its key, one cache lookup.
    const discover = time(() => discovery.discover(plain), budgetMs);
    // The HTTP route's cached path without the network: one lookup keyed by the raw query string.
    const render = () => {
      const services = discovery.discoverCompiled(compileQuery(parsed));
      return { body: JSON.stringify({ count: services.length, services }), name: parsed.name ?? null };
    };
    const httpRender = time(() => discovery.cachedRender(`h${search}`, render), budgetMs);
    queries[q] = { results, uncached, discover, httpRender };
  }
  const afterQueries = memory();
  await discovery.stop();
  return { instances, services: discovery.registry.serviceNames().length, registerMs: Math.round(registerMs), baseline, afterRegister, afterQueries, queries };
}

function parent(): void {
  const sizes = opts.sizes.split(",").map(Number);
  console.log(`load average before measuring: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  const results: SizeResult[] = [];
  for (const size of sizes) {
    const script = fileURLToPath(import.meta.url);
    const res = spawnSync(process.execPath, ["--expose-gc", script, "--child", String(size), "--ms", opts.ms], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    if (res.status !== 0) throw new Error(`child for ${size} failed with ${res.status}`);
    const line = res.stdout.split("\n").reverse().find((l) => l.startsWith("{"));
    if (line === undefined) throw new Error(`no result from child for ${size}`);
    const r = JSON.parse(line) as SizeResult;
    results.push(r);
    console.log(
      `${size} instances (${r.services} services): registered in ${r.registerMs} ms; RSS ${r.baseline.rssMb} MB before, ` +
        `${r.afterRegister.rssMb} MB after registering (heap ${r.afterRegister.heapUsedMb} MB), ${r.afterQueries.rssMb} MB after queries`,
    );
  }

  console.log("\n| query | path | " + results.map((r) => `${r.instances} median / p99 us`).join(" | ") + " | ratio largest/smallest (median) |");
  console.log("|---|---|" + results.map(() => "---|").join("") + "---|");
  const ratios: Record<string, number> = {};
  for (const q of QUERY_NAMES) {
    for (const path of ["uncached", "discover", "httpRender"] as const) {
      const cells = results.map((r) => `${fmt(r.queries[q][path].medianUs, 2)} / ${fmt(r.queries[q][path].p99Us, 2)} (${r.queries[q].results} results)`);
      const first = results[0]!.queries[q][path].medianUs;
      const last = results[results.length - 1]!.queries[q][path].medianUs;
      ratios[`${q}.${path}`] = last / first;
      console.log(`| ${q} | ${path} | ${cells.join(" | ")} | ${fmt(last / first, 2)}x |`);
    }
  }
  const largest = results[results.length - 1]!;
  const sel = ratios["selective.uncached"]!;
  console.log(`\ntarget: selective uncached ${largest.instances} <= 2x ${results[0]!.instances}: ${fmt(sel, 2)}x -> ${sel <= 2 ? "met" : "NOT met"}`);
  console.log(`target: RSS with ${largest.instances} instances <= 300 MB: ${largest.afterRegister.rssMb} MB -> ${largest.afterRegister.rssMb <= 300 ? "met" : "NOT met"}`);

  const resultsDir = fileURLToPath(new URL("../../bench/results/", import.meta.url));
  mkdirSync(resultsDir, { recursive: true });
  const out = join(resultsDir, `registry-scale-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(out, JSON.stringify({ node: process.version, results, ratios }, null, 2));
  console.log(`raw results: ${out}`);
}

if (opts.child !== undefined) {
  const result = await child(Number(opts.child), Number(opts.ms));
  process.stdout.write(JSON.stringify(result) + "\n");
} else {
  parent();
}
