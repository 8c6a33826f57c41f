// DNS throughput while the registry changes (issue 18): ours with bench/dns-fixtures.ts' data set (1,000 services
// x 3 instances), dnsperf asking the usual query file, in rounds alternating three phases:
//   quiet      no writes;
//   unrelated  --rate re-registrations a second of services the query file never asks (churn-<k>, registered
//              at start), each with a changed port and metadata, through the HTTP API;
//   asked      --rate re-registrations a second spread over the very services asked (svc-<s>-<k>, s walking
//              all 1,000 services), each with a changed port (their SRV answers really change) and metadata;
//   checked    --checked instances (300) with HTTP checks every --check-interval ms (1 s), registered at the
//              phase's start and deregistered at its end, against bench/health-peer.ts in its own process on CPU 0
//              (127.0.0.1-10, 4 ports): the checks' own cost on the DNS event loop (issue 18: >= 0.8x quiet).
// The churn is sent from this process over HTTP, as a user's deploy tooling would; the server is on CPU 1,
// dnsperf and this process on CPU 0 (as bench/dns.ts pins them). Reports qps per phase and the ratios churn/quiet
// per round, their medians, the writes actually acknowledged during each run, and the server's cache misses. Then
// the writes alone, without DNS load: the server's CPU per write, what the DNS loses to each write once no answer
// is dropped for it.
// --profile: instead of the rounds, a CPU profile of the server under the unrelated writes alone (no DNS load),
// printed as the hot functions: where a write's cost goes.
// Usage: bench/run.sh dns-churn [--services 1000] [--rate 100] [--rounds 3] [--duration 4] [--warmup 2] [--checked 300]
//   [--check-interval 1000] [--phases quiet,unrelated,asked,checked] [--no-pin] [--profile]
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Agent, request } from "undici";
import { canPin, children, runMain, sleep, stopChild } from "./children.js";
import { printHotFunctions } from "./cpuprofile.js";
import { dnsperf as runDnsperf, requireDnsperf } from "./dnsperf.js";
import { processCpuMs } from "./procstat.js";
import { instancesOf, queryFile, questions, serviceName } from "./dns-fixtures.js";
import { fmt, median, readyLine } from "./stats.js";

const { values: opts } = parseArgs({
  options: {
    services: { type: "string", default: "1000" },
    rate: { type: "string", default: "100" },
    rounds: { type: "string", default: "3" },
    duration: { type: "string", default: "4" },
    warmup: { type: "string", default: "2" },
    clients: { type: "string", default: "4" },
    unrelated: { type: "string", default: "100" },
    checked: { type: "string", default: "300" },
    "check-interval": { type: "string", default: "1000" },
    phases: { type: "string", default: "quiet,unrelated,asked,checked" },
    "no-pin": { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
  },
});
const services = Number(opts.services);
const rate = Number(opts.rate);
const rounds = Number(opts.rounds);
const duration = Number(opts.duration);
const warmup = Number(opts.warmup);
const clients = Number(opts.clients);
const unrelated = Number(opts.unrelated);
const pin = canPin(opts["no-pin"]);
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const work = mkdtempSync(join(tmpdir(), "hd-dns-churn-"));

type Phase = "quiet" | "unrelated" | "asked" | "checked";
const ALL_PHASES: readonly Phase[] = ["quiet", "unrelated", "asked", "checked"];
const PHASES = opts.phases.split(",") as Phase[];
for (const p of PHASES) if (!ALL_PHASES.includes(p)) throw new Error(`--phases: unknown phase ${p} (${ALL_PHASES.join(", ")})`);
if (PHASES[0] !== "quiet") throw new Error("--phases must start with quiet: the ratios are to it");
const checked = Number(opts.checked);
const checkInterval = Number(opts["check-interval"]);
/** Writes a second, for the phases that write. */
type Writing = "unrelated" | "asked";

requireDnsperf();

/** dnsperf, asynchronously: this process keeps sending the churn meanwhile. */
const dnsperf = (port: number, file: string, seconds: number) => runDnsperf(port, file, seconds, { clients, pin });

/** Sends `rate` writes a second (paced every 5 ms, at most 32 in flight) until stopped; counts the acknowledged ones. */
function churn(base: string, phase: Writing, agent: Agent): { stop: () => Promise<{ acked: number; failed: number; seconds: number }> } {
  let sent = 0;
  let acked = 0;
  let failed = 0;
  let inFlight = 0;
  let seq = churnSeq;
  const started = performance.now();
  const pending = new Set<Promise<void>>();
  const one = () => {
    seq += 1;
    let id: string;
    let body: Record<string, unknown>;
    if (phase === "unrelated") {
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
    inFlight += 1;
    const p: Promise<void> = request(`${base}/v1/services/${id}`, { method: "PUT", dispatcher: agent, headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
      .then(async (res) => {
        await res.body.dump();
        if (res.statusCode < 300) acked += 1;
        else failed += 1;
      })
      .catch(() => void (failed += 1))
      .finally(() => {
        inFlight -= 1;
        pending.delete(p);
      });
    pending.add(p);
  };
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) / 1000) * rate);
    while (sent < due && inFlight < 32) {
      one();
      sent += 1;
    }
  }, 5);
  return {
    stop: async () => {
      clearInterval(timer);
      const seconds = (performance.now() - started) / 1000;
      await Promise.all(pending);
      churnSeq = seq;
      return { acked, failed, seconds };
    },
  };
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
  const serverArgs = [here("./ours-server.js"), "--services", String(services), ...(profile ? ["--profile", profile, "--profile-on-signal"] : [])];
  const child = spawn(pin ? "taskset" : process.execPath, [...(pin ? ["-c", "1", process.execPath] : []), ...serverArgs], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  const ready = await readyLine<{ port: number; dnsPort: number; instances: number }>(child);
  const base = `http://127.0.0.1:${ready.port}`;
  const agent = new Agent({ connections: 32 });
  // The unrelated services, which no query asks.
  for (let k = 0; k < unrelated; k++) {
    const res = await request(`${base}/v1/services/churn-${k}`, { method: "PUT", dispatcher: agent, headers: { "content-type": "application/json" }, body: JSON.stringify({ name: `churn-${k}`, address: `10.200.${k >> 8}.${k & 255}`, port: 20_000 }) });
    await res.body.dump();
    if (res.statusCode >= 300) throw new Error(`registering churn-${k}: HTTP ${res.statusCode}`);
  }
  console.log(`ours: pid ${child.pid}, DNS 127.0.0.1:${ready.dnsPort}, ${ready.instances} + ${unrelated} instances; ${rate} writes/s while churning${pin ? "; server on CPU 1, dnsperf and the churn on CPU 0" : ""}`);
  console.log(`dnsperf -s 127.0.0.1 -p ${ready.dnsPort} -d <queries> -c ${clients} -l ${duration}, ${rounds} rounds of ${PHASES.join(", ")} (order alternating), warmup ${warmup}s\n`);
  await dnsperf(ready.dnsPort, file, warmup);
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

  /** The writes alone for `duration` seconds: acknowledged writes a second and the server's CPU ms per write. */
  const writesAlone = async (phase: Writing) => {
    await sleep(300);
    const cpu0 = processCpuMs(child.pid);
    const load = churn(base, phase, agent);
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
      await stopChild(child);
      await stopChild(peer.child);
      printHotFunctions(profile);
      return;
    }
    child.kill("SIGUSR2");
    await sleep(500);
    const w = await writesAlone("unrelated");
    console.log(`profiled: ${fmt(w.rate, 0)} unrelated writes/s alone, ${fmt(w.msPerWrite, 2)} ms of server CPU per write (with the profiler's cost)`);
    await agent.close();
    await stopChild(child);
    printHotFunctions(profile);
    return;
  }

  const qps: Record<Phase, number[]> = { quiet: [], unrelated: [], asked: [], checked: [] };
  const writes: Record<Phase, number[]> = { quiet: [], unrelated: [], asked: [], checked: [] };
  const misses: Record<Phase, number[]> = { quiet: [], unrelated: [], asked: [], checked: [] };
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? PHASES : [...PHASES].reverse();
    for (const phase of order) {
      await sleep(300);
      let before: Awaited<ReturnType<typeof dnsStats>>;
      let after: typeof before;
      let r: Awaited<ReturnType<typeof dnsperf>>;
      let w = { acked: 0, failed: 0, seconds: duration };
      const measured = async (during: () => Promise<void>) => {
        before = await dnsStats(base);
        const run = dnsperf(ready.dnsPort, file, duration);
        await during();
        r = await run;
        after = await dnsStats(base);
      };
      if (phase === "checked") {
        // Registering the 300 (one batch over 256 changes) empties the answer table: the run starts once it is full again.
        const c = await withChecks(() => measured(async () => undefined));
        w = { acked: c.checks, failed: 0, seconds: duration }; // the checks the peer answered, per second
      } else {
        await measured(async () => {
          if (phase === "quiet") return;
          const load = churn(base, phase, agent);
          await sleep(duration * 1000);
          w = await load.stop();
        });
      }
      r = r!;
      const missed = before! && after! ? after.misses - before.misses : NaN;
      qps[phase].push(r.qps);
      writes[phase].push(w.acked / w.seconds);
      misses[phase].push(missed);
      console.log(
        `round ${round} ${phase.padEnd(9)} ${fmt(r.qps, 0).padStart(7)} qps  lost ${r.lost}  ${phase === "checked" ? "checks" : "writes"} ${fmt(w.acked / w.seconds, 0)}/s (${w.acked} ${phase === "checked" ? "answered by the peer" : `acked, ${w.failed} failed`})  cache misses ${missed}`,
      );
    }
  }
  const alone = { unrelated: await writesAlone("unrelated"), asked: await writesAlone("asked") };
  await agent.close();
  if (peer) await stopChild(peer.child);

  const ratios = (p: Phase) => qps[p].map((q, i) => q / qps.quiet[i]!);
  console.log(`\n| phase | writes (checks) /s (median) | median qps | range | cache misses per run (median) | ratio to quiet (median of per-round) | per round | target |`);
  console.log("|---|---|---|---|---|---|---|---|");
  const target: Record<Phase, string> = { quiet: "", unrelated: ">= 0.9x", asked: ">= 0.5x", checked: ">= 0.8x" };
  const floor: Record<Phase, number> = { quiet: 0, unrelated: 0.9, asked: 0.5, checked: 0.8 };
  for (const p of PHASES) {
    const rs = ratios(p);
    const met = p === "quiet" ? "" : median(rs) >= floor[p] ? " met" : " NOT met";
    console.log(
      `| ${p} | ${fmt(median(writes[p]), 0)} | ${fmt(median(qps[p]), 0)} | ${fmt(Math.min(...qps[p]), 0)} - ${fmt(Math.max(...qps[p]), 0)} | ${fmt(median(misses[p]), 0)} | **${fmt(median(rs), 3)}x** | ${rs.map((x) => fmt(x, 2)).join(", ")} | ${target[p]}${met} |`,
    );
  }
  console.log(`\nthe writes alone (no DNS load, ${duration} s each): server CPU per write`);
  for (const p of ["unrelated", "asked"] as const) {
    const a = alone[p];
    console.log(`- ${p}: ${fmt(a.rate, 0)} writes/s, ${fmt(a.msPerWrite, 2)} ms per write (${fmt((a.rate * a.msPerWrite) / 10, 1)}% of a core)${a.failed > 0 ? `, ${a.failed} failed` : ""}`);
  }
}

await runMain(main, work, "the query file");
