// Compressed answers: bytes and requests/s for a 3,500-instance answer (the broad query at 100,000 instances,
// bench/fixtures.ts) from ours without and with Accept-Encoding (gzip, br, and zstd where this Node has it),
// against a bare Hono route serving the same body with hono/compress, in the same run. Servers on CPU 1, wrk on
// CPU 0 (as bench/http-query.ts); rounds alternate; medians.
// Usage: node dist/bench/compress.js [--duration 5] [--rounds 3] [--connections 16] [--instances 100000]
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ENCODINGS } from "../src/http/compress.js";
import { QUERIES, expectedCount } from "./fixtures.js";
import { fmt, median, readyLine } from "./stats.js";

const { values } = parseArgs({
  options: { duration: { type: "string", default: "5" }, rounds: { type: "string", default: "3" }, connections: { type: "string", default: "16" }, instances: { type: "string", default: "100000" } },
});
const duration = Number(values.duration);
const rounds = Number(values.rounds);
const connections = Number(values.connections);
const instances = Number(values.instances);
const pin = spawnSync("taskset", ["-c", "0", "true"]).status === 0;
const here = (f: string) => new URL(f, import.meta.url).pathname;
const children: ChildProcess[] = [];
process.on("exit", () => children.forEach((c) => c.kill("SIGTERM")));

function startChild(script: string, args: string[]): ChildProcess {
  const argv = [here(script), ...args];
  const child = spawn(pin ? "taskset" : process.execPath, pin ? ["-c", "1", process.execPath, ...argv] : argv, { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  return child;
}

function wrk(url: string, encoding: string | undefined, seconds: number): number {
  const args = ["-t1", `-c${connections}`, `-d${seconds}s`, ...(encoding ? ["-H", `Accept-Encoding: ${encoding}`] : []), url];
  const res = spawnSync(pin ? "taskset" : "wrk", pin ? ["-c", "0", "wrk", ...args] : args, { encoding: "utf8" });
  if (res.status !== 0) throw new Error(`wrk failed: ${res.stderr}`);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(res.stdout);
  if (!m) throw new Error(`no Requests/sec from wrk:\n${res.stdout}`);
  if (/Non-2xx/.test(res.stdout)) throw new Error(`wrk saw errors:\n${res.stdout}`);
  return Number(m[1]);
}

/** One request's body bytes on the wire and its Content-Encoding. */
function probe(url: string, encoding: string | undefined): Promise<{ bytes: number; sent: string }> {
  return new Promise((resolve, reject) => {
    get(url, { headers: encoding ? { "accept-encoding": encoding } : {} }, (res) => {
      let bytes = 0;
      res.on("data", (d: Buffer) => (bytes += d.length));
      res.on("end", () => resolve({ bytes, sent: String(res.headers["content-encoding"] ?? "identity") }));
    }).on("error", reject);
  });
}

const ours = startChild("./ours-server.js", ["--instances", String(instances)]);
const oursPort = (await readyLine<{ port: number }>(ours)).port;
const path = `/v1/services?${QUERIES.broad}`;
const body = await (await fetch(`http://127.0.0.1:${oursPort}${path}`, { headers: { "accept-encoding": "identity" } })).text();
const count = (JSON.parse(body) as { count: number }).count;
if (count !== expectedCount("broad", instances)) throw new Error(`broad: ${count} results`);
const work = mkdtempSync(join(tmpdir(), "hd-compress-"));
writeFileSync(join(work, "bodies.json"), JSON.stringify({ broad: body }));
const bare = startChild("./bare-hono.js", [join(work, "bodies.json"), "--compress"]);
const barePort = (await readyLine<{ port: number }>(bare)).port;

const zstd = ENCODINGS.includes("zstd");
const targets: { name: string; url: string; encoding: string | undefined }[] = [
  { name: "ours identity", url: `http://127.0.0.1:${oursPort}${path}`, encoding: undefined },
  { name: "ours gzip", url: `http://127.0.0.1:${oursPort}${path}`, encoding: "gzip" },
  { name: "ours br", url: `http://127.0.0.1:${oursPort}${path}`, encoding: "br" },
  ...(zstd ? [{ name: "ours zstd", url: `http://127.0.0.1:${oursPort}${path}`, encoding: "zstd" }] : []),
  { name: "bare identity", url: `http://127.0.0.1:${barePort}/bare/broad?${QUERIES.broad}`, encoding: undefined },
  { name: "bare hono/compress gzip", url: `http://127.0.0.1:${barePort}/bare/broad?${QUERIES.broad}`, encoding: "gzip" },
];
console.log(`${count} instances, ${Buffer.byteLength(body)} bytes; node ${process.version}; wrk -t1 -c${connections} -d${duration}s x ${rounds} rounds${pin ? ", servers on CPU 1, wrk on CPU 0" : ""}`);
const sizes = new Map<string, { bytes: number; sent: string }>();
for (const t of targets) sizes.set(t.name, await probe(t.url, t.encoding));
for (const t of targets) wrk(t.url, t.encoding, 1); // warm-up
const rps = new Map<string, number[]>(targets.map((t) => [t.name, []]));
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? targets : [...targets].reverse();
  for (const t of order) rps.get(t.name)!.push(wrk(t.url, t.encoding, duration));
}
for (const t of targets) {
  const size = sizes.get(t.name)!;
  const runs = rps.get(t.name)!;
  console.log(`${t.name.padEnd(24)} ${String(size.bytes).padStart(9)} bytes (${size.sent.padEnd(8)})  ${fmt(median(runs)).padStart(8)} req/s  (rounds ${runs.map(fmt).join(", ")})`);
}
const m = (n: string) => median(rps.get(n)!);
console.log(`ours gzip / bare hono/compress gzip: ${fmt(m("ours gzip") / m("bare hono/compress gzip"))}x req/s; ours identity / bare identity: ${fmt(m("ours identity") / m("bare identity"))}x`);
process.exit(0);
