// DNS throughput with a routing policy on every service against none, in one run (issue 21: goal >= 0.9x).
// bench/dns-fixtures.ts' data set (1,000 services x 3 instances), re-registered with versions in both phases (the
// first two instances of every service 1.0.0, the third 2.0.0), so that only the policies differ:
//   none     no policy;
//   policy   {"split": [{"version": "^1", "weight": 90}, {"version": "^2", "weight": 10}]} on every service: SRV
//            answers weighted per version, A answers split per query over 100 variants (answer.ts).
// Rounds alternate the order of the phases; each phase sets (or removes) the policies over the API, warms the answer
// table up with one dnsperf run, then measures. The server on CPU 1, dnsperf and this process on CPU 0.
// Usage: bench/run.sh dns-routing [--services 1000] [--rounds 3] [--duration 5] [--warmup 2] [--clients 4] [--no-pin]
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Agent, request } from "undici";
import { canPin, children, runMain, sleep, stopChild } from "./children.js";
import { dnsperf, requireDnsperf } from "./dnsperf.js";
import { instancesOf, queryFile, questions, serviceName } from "./dns-fixtures.js";
import { fmt, median, readyLine } from "./stats.js";

const { values: opts } = parseArgs({
  options: {
    services: { type: "string", default: "1000" },
    rounds: { type: "string", default: "3" },
    duration: { type: "string", default: "5" },
    warmup: { type: "string", default: "2" },
    clients: { type: "string", default: "4" },
    "no-pin": { type: "boolean", default: false },
  },
});
const services = Number(opts.services);
const rounds = Number(opts.rounds);
const duration = Number(opts.duration);
const warmup = Number(opts.warmup);
const clients = Number(opts.clients);
const pin = canPin(opts["no-pin"]);
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const work = mkdtempSync(join(tmpdir(), "hd-dns-routing-"));
const POLICY = { split: [{ version: "^1", weight: 90 }, { version: "^2", weight: 10 }] };
type Phase = "none" | "policy";

requireDnsperf();

async function call(agent: Agent, base: string, method: string, path: string, body?: unknown): Promise<void> {
  const res = await request(`${base}${path}`, { method: method as "PUT", dispatcher: agent, ...(body !== undefined ? { headers: { "content-type": "application/json" }, body: JSON.stringify(body) } : {}) });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`${method} ${path}: HTTP ${res.statusCode}: ${text.slice(0, 300)}`);
}

/** Sets or removes the policy of every service, 32 requests in flight. */
async function setPolicies(agent: Agent, base: string, on: boolean): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      for (let s = next++; s < services; s = next++) await call(agent, base, on ? "PUT" : "DELETE", `/v1/routing/${serviceName(s)}`, on ? POLICY : undefined);
    }),
  );
  return performance.now() - t0;
}

async function main(): Promise<void> {
  if (pin) spawn("taskset", ["-p", "-c", "0", String(process.pid)], { stdio: "ignore" });
  console.log(`cpus: ${cpus().length} x ${cpus()[0]?.model ?? "?"}; node ${process.version}; load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  const file = join(work, "queries.txt");
  writeFileSync(file, queryFile(questions(services, Math.max(20_000, services * 20))));
  const child = spawn(pin ? "taskset" : process.execPath, [...(pin ? ["-c", "1", process.execPath] : []), here("./ours-server.js"), "--services", String(services)], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  const ready = await readyLine<{ port: number; dnsPort: number; instances: number }>(child);
  const base = `http://127.0.0.1:${ready.port}`;
  const agent = new Agent({ connections: 32 });
  // Versions for every instance (in both phases): the first two of each service 1.0.0, the third 2.0.0 (the canary).
  const register = Array.from({ length: services }, (_, s) =>
    instancesOf(s).map((inst, k) => ({ id: inst.id, name: serviceName(s), version: k === 2 ? "2.0.0" : "1.0.0", address: inst.address, port: inst.port })),
  ).flat();
  for (let i = 0; i < register.length; i += 500) await call(agent, base, "POST", "/v1/services/bulk", { register: register.slice(i, i + 500) });
  console.log(`ours: pid ${child.pid}, DNS 127.0.0.1:${ready.dnsPort}, ${ready.instances} instances (2 x 1.0.0 and 1 x 2.0.0 per service)${pin ? "; server on CPU 1, dnsperf on CPU 0" : ""}`);
  console.log(`dnsperf -s 127.0.0.1 -p ${ready.dnsPort} -d <queries> -c ${clients} -l ${duration}; policy ${JSON.stringify(POLICY)} on every service; ${rounds} rounds, order alternating\n`);
  const run = { clients, pin };
  const qps: Record<Phase, number[]> = { none: [], policy: [] };
  let policies = false;
  for (let round = 1; round <= rounds; round++) {
    const order: Phase[] = round % 2 === 1 ? ["none", "policy"] : ["policy", "none"];
    for (const phase of order) {
      const want = phase === "policy";
      const setMs = want !== policies ? await setPolicies(agent, base, want) : 0;
      policies = want;
      await dnsperf(ready.dnsPort, file, warmup, run);
      await sleep(300);
      const r = await dnsperf(ready.dnsPort, file, duration, run);
      qps[phase].push(r.qps);
      console.log(`round ${round} ${phase.padEnd(6)} ${fmt(r.qps, 0).padStart(7)} qps  lost ${r.lost}${setMs > 0 ? `  (${services} policies ${want ? "set" : "removed"} in ${fmt(setMs, 0)} ms)` : ""}`);
    }
  }
  await agent.close();
  await stopChild(child);
  const ratios = qps.policy.map((q, i) => q / qps.none[i]!);
  console.log(`\n| phase | median qps | range | ratio to none (median of per-round) | per round | target |`);
  console.log("|---|---|---|---|---|---|");
  console.log(`| none | ${fmt(median(qps.none), 0)} | ${fmt(Math.min(...qps.none), 0)} - ${fmt(Math.max(...qps.none), 0)} | | | |`);
  console.log(`| policy on every service | ${fmt(median(qps.policy), 0)} | ${fmt(Math.min(...qps.policy), 0)} - ${fmt(Math.max(...qps.policy), 0)} | **${fmt(median(ratios), 3)}x** | ${ratios.map((x) => fmt(x, 2)).join(", ")} | >= 0.9x${median(ratios) >= 0.9 ? " met" : " NOT met"} |`);
}

await runMain(main, work, "the query file");
