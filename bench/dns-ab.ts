// A/B of two builds of our DNS server over sockets: this checkout against another one (its own built dist/),
// same data, same dnsperf query file, alternating rounds, servers on CPU 1 and dnsperf on CPU 0 as in bench/dns.ts.
// For hot-path changes whose effect is smaller than this VM's run-to-run noise: only ratios within a round count.
// Usage: node dist/bench/dns-ab.js --old /path/to/other/checkout [--services 1000] [--rounds 6] [--duration 4]
//   (the other checkout needs `npx tsc -p bench/tsconfig.json` run in it first)
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { children } from "./children.js";
import { queryFile, questions } from "./dns-fixtures.js";
import { processCpuMs } from "./procstat.js";
import { fmt, median } from "./stats.js";

const { values: opts } = parseArgs({
  options: { old: { type: "string" }, services: { type: "string", default: "1000" }, rounds: { type: "string", default: "6" }, duration: { type: "string", default: "4" } },
});
if (opts.old === undefined) throw new Error("--old <checkout> is required");
const services = Number(opts.services);
const tmp = mkdtempSync(join(tmpdir(), "hd-dns-ab-"));
const file = join(tmp, "queries.txt");
writeFileSync(file, queryFile(questions(services, Math.max(20_000, services * 20))));

async function start(name: string, script: string): Promise<{ name: string; child: ChildProcess; port: number }> {
  const child = spawn("taskset", ["-c", "1", process.execPath, script, "--services", String(services)], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  const line = await new Promise<string>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code}`)));
    createInterface({ input: child.stdout! }).once("line", resolve);
  });
  return { name, child, port: (JSON.parse(line) as { dnsPort: number }).dnsPort };
}

const servers = [await start("old", join(opts.old, "dist/bench/ours-server.js")), await start("new", fileURLToPath(new URL("./ours-server.js", import.meta.url)))];
const run = (port: number, seconds: number) => {
  const r = spawnSync("taskset", ["-c", "0", "dnsperf", "-s", "127.0.0.1", "-p", String(port), "-d", file, "-c", "4", "-l", String(seconds)], { encoding: "utf8" });
  return Number(/Queries per second:\s+([\d.]+)/.exec(r.stdout)?.[1]);
};
try {
  for (const s of servers) run(s.port, 2); // warm-up: every answer cached, the code optimized
  const ratios: number[] = [];
  const perCpu: number[] = [];
  for (let r = 0; r < Number(opts.rounds); r++) {
    const order = r % 2 === 0 ? servers : [...servers].reverse();
    const got: Record<string, { qps: number; perCpuS: number }> = {};
    for (const s of order) {
      const c0 = processCpuMs(s.child.pid);
      const qps = run(s.port, Number(opts.duration));
      const cpuS = (processCpuMs(s.child.pid) - c0) / 1000;
      got[s.name] = { qps, perCpuS: (qps * Number(opts.duration)) / cpuS };
    }
    ratios.push(got.new!.qps / got.old!.qps);
    perCpu.push(got.new!.perCpuS / got.old!.perCpuS);
    console.log(`round ${r + 1}: old ${fmt(got.old!.qps, 0)} qps, new ${fmt(got.new!.qps, 0)} qps: new/old ${fmt(ratios.at(-1)!, 3)} (per CPU-second ${fmt(perCpu.at(-1)!, 3)})`);
  }
  console.log(`\n${services} services: new/old median ${fmt(median(ratios), 3)}x (per CPU-second ${fmt(median(perCpu), 3)}x) over ${ratios.length} rounds`);
} finally {
  for (const s of servers) s.child.kill("SIGTERM");
  rmSync(tmp, { recursive: true, force: true });
}
