// Health checks at scale: 10k instances with HTTP checks every 10 s against local HTTP servers (loopback only,
// in their own process, bench/health-peer.ts). Measures, in one run: the server's CPU with the checks against the
// same server with the same 10k instances and no checks, and against a bare undici loop sending the same GETs at
// the same rate (bench/health-bare.ts: the floor for the requests themselves); how late scheduled checks start
// (GET /v1/stats checks.startDelayMs, which covers the last 4096 scheduled checks, polled every 3 s); and how long
// a status flip takes to reach DNS (a health endpoint turned to 500 and back, the service's name polled over UDP
// every 20 ms).
// --mix: instead of HTTP checks only, a mix of kinds by slot k (0-9) of each service: k 0-3 the one-check HTTP form
// (healthEndpoint), 4-5 `checks: [http]` with a header and expectBody, 6-7 `checks: [tcp]`, 8 `checks: [dns]` (the
// peer answers DNS over UDP on each address and port), 9 `checks: [grpc]` (a grpc-js health server in the peer);
// flips go to HTTP instances. The bare undici loop sends HTTP GETs for all of them still: a control for HTTP.
// Usage: node dist/bench/health.js [--instances 10000] [--interval 10000] [--idle 15] [--bare 20] [--warmup 20]
//   [--window 60] [--flips 3] [--ports 4] [--mix] [--no-pin] [--profile]
// --profile: a CPU profile of the server over the checked window (inspector, 100 us sampling); it slows the
// server, so that run's CPU and lateness numbers are not results.
import { spawn, type ChildProcess } from "node:child_process";
import { Resolver } from "node:dns/promises";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { coreBusyMs, type Usage } from "./procstat.js";
import { profileTop } from "./profile-top.js";
import { fmt, median } from "./stats.js";
import { canPin, children, now, runMain, sleep, stopChild, stopping } from "./children.js";

const { values: opts } = parseArgs({
  options: {
    instances: { type: "string", default: "10000" },
    interval: { type: "string", default: "10000" },
    idle: { type: "string", default: "15" },
    bare: { type: "string", default: "20" },
    warmup: { type: "string", default: "20" },
    window: { type: "string", default: "60" },
    flips: { type: "string", default: "3" },
    ports: { type: "string", default: "4" },
    mix: { type: "boolean", default: false },
    "no-pin": { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
  },
});
const INSTANCES = Number(opts.instances);
const INTERVAL = Number(opts.interval);
const PER_SERVICE = 10; // instance k of a service lives at 127.0.0.<k+1>, so each instance has its own A record
const SERVICES = Math.ceil(INSTANCES / PER_SERVICE);
const PORTS = Number(opts.ports);
const DOMAIN = "home.arpa";
// Two cores: the server under test alone on CPU 1; the health servers, this driver and DNS polling on CPU 0.
const pin = canPin(opts["no-pin"]);

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const resultsDir = here("../../bench/results/");
const work = mkdtempSync(join(tmpdir(), "hd-health-"));


/** A forked node child (IPC), optionally pinned to one CPU with taskset; stdout to a file. */
function forkChild(script: string, args: string[], cpu: number, logFile: string): ChildProcess {
  const out = openSync(logFile, "w");
  const argv = [here(script), ...args];
  const child = spawn(pin ? "taskset" : process.execPath, pin ? ["-c", String(cpu), process.execPath, ...argv] : argv, {
    stdio: ["ignore", out, "inherit", "ipc"],
  });
  closeSync(out);
  children.push(child);
  child.once("exit", (code, signal) => {
    if (!stopping.has(child)) console.error(`child ${script} (pid ${child.pid}) exited unexpectedly: code ${code}, signal ${signal}; its log: ${logFile}`);
  });
  return child;
}

/** Sends a message and resolves with the first reply that has `key`. */
function ask<T>(child: ChildProcess, msg: object, key: string, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${key} from child ${child.pid} within ${timeoutMs} ms`)), timeoutMs);
    const on = (m: Record<string, unknown>) => {
      if (!(key in m)) return;
      clearTimeout(timer);
      child.off("message", on);
      resolve(m as T);
    };
    child.on("message", on);
    if (Object.keys(msg).length > 0) child.send(msg);
  });
}


const usage = async (server: ChildProcess) => (await ask<{ usage: Usage }>(server, { usage: true }, "usage")).usage;
/** CPU of the child between two samples, as % of one core (user + system). */
const cpuPct = (a: Usage, b: Usage) => (100 * (b.cpu.user - a.cpu.user + b.cpu.system - a.cpu.system)) / 1000 / (b.at - a.at);

interface CheckStats {
  running: number;
  scheduled: number;
  checks: number;
  startDelayMs: { p50: number; p99: number; max: number; samples: number };
}
interface Stats {
  totalCount: number;
  byHealth: Record<string, number>;
  checks: CheckStats;
  cache: { invalidations: number; hits: number; misses: number };
}
async function stats(base: string): Promise<Stats> {
  const res = await fetch(`${base}/v1/stats`);
  if (res.status !== 200) throw new Error(`GET /v1/stats: ${res.status}`);
  return (await res.json()) as Stats;
}

const MIX = opts.mix;

/** The check of instance `id` in slot k: HTTP only, or with --mix the kind of its slot (see the header). */
function checkOf(id: string, k: number, grpcPort: number | undefined): object {
  if (!MIX || k <= 3) return { healthEndpoint: `/health/${id}` };
  if (k <= 5) return { checks: [{ kind: "http", url: `/health/${id}`, headers: { authorization: "Bearer bench-token" }, expectBody: "ok" }] };
  if (k <= 7) return { checks: [{ kind: "tcp" }] };
  if (k === 8) return { checks: [{ kind: "dns", query: `${id}.bench.test`, expect: `127.0.0.${k + 1}` }] };
  return { checks: [{ kind: "grpc", port: grpcPort }] };
}

function inputs(withChecks: boolean, ports: readonly number[], grpcPort?: number): object[] {
  const out: object[] = [];
  for (let i = 0; i < INSTANCES; i++) {
    const s = Math.floor(i / PER_SERVICE);
    const k = i % PER_SERVICE;
    const id = `hc-${s}-${k}`;
    out.push({
      id,
      name: `hc-${s}`,
      version: "1.0.0",
      address: `127.0.0.${k + 1}`,
      port: ports[s % ports.length]!,
      tags: [k < 7 ? "prod" : "staging"],
      metadata: { slot: String(k) },
      ...(withChecks ? { ...checkOf(id, k, grpcPort), healthCheckInterval: INTERVAL } : {}),
    });
  }
  return out;
}

/** Registers through POST /v1/services/bulk (2000 per call keeps the body under the 1 MiB limit). */
async function registerBulk(base: string, list: readonly object[]): Promise<number> {
  const started = now();
  for (let i = 0; i < list.length; i += 2000) {
    const res = await fetch(`${base}/v1/services/bulk`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ register: list.slice(i, i + 2000) }),
    });
    if (res.status !== 200) throw new Error(`bulk register: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  }
  return now() - started;
}

async function startServer(name: string): Promise<{ child: ChildProcess; base: string; dnsPort: number; log: string }> {
  const log = join(work, `${name}.log`);
  const child = forkChild("./health-server.js", [], 1, log);
  const ready = await ask<{ port: number; dnsPort: number }>(child, {}, "ready", 30_000);
  return { child, base: `http://127.0.0.1:${ready.port}`, dnsPort: ready.dnsPort, log };
}

/** CPU per slice of `sliceS` seconds from usage samples taken every second. */
function slices(samples: readonly Usage[], sliceS: number): number[] {
  const out: number[] = [];
  for (let i = sliceS; i < samples.length; i += sliceS) out.push(cpuPct(samples[i - sliceS]!, samples[i]!));
  return out;
}

/** Samples usage every second and stats every 3 s until stop() is called. */
function monitor(server: ChildProcess, base: string | undefined) {
  const samples: Usage[] = [];
  const snapshots: (Stats & { at: number })[] = [];
  let running = true;
  const loop = (async () => {
    const start = now();
    for (let tick = 0; running; tick++) {
      samples.push(await usage(server));
      if (tick % 3 === 0 && base !== undefined) snapshots.push({ ...(await stats(base)), at: now() });
      await sleep(Math.max(0, start + (tick + 1) * 1000 - now()));
    }
    samples.push(await usage(server));
    if (base !== undefined) snapshots.push({ ...(await stats(base)), at: now() });
  })();
  return {
    samples,
    snapshots,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/** The service's A records as a sorted list; a fresh Resolver per query, so no client-side cache can hide a change. */
async function lookup(name: string, dnsPort: number): Promise<string[]> {
  const resolver = new Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([`127.0.0.1:${dnsPort}`]);
  try {
    return (await resolver.resolve4(name)).sort();
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ENOTFOUND" || code === "ENODATA") return [];
    throw err;
  }
}

interface Flip {
  id: string;
  name: string;
  address: string;
  to: 500 | 200;
  ms: number;
  polls: number;
}

/** Flips one instance's endpoint and polls its service's name every 20 ms until its address leaves (or returns). */
async function flip(peer: ChildProcess, dnsPort: number, s: number, k: number, to: 500 | 200): Promise<Flip> {
  const id = `hc-${s}-${k}`;
  const name = `hc-${s}.service.${DOMAIN}`;
  const address = `127.0.0.${k + 1}`;
  const before = await lookup(name, dnsPort);
  if (before.includes(address) !== (to === 500)) throw new Error(`${name}: ${address} ${to === 500 ? "missing" : "present"} before the flip: ${before.join(",")}`);
  const t0 = now();
  await ask(peer, to === 500 ? { fail: id } : { pass: id }, "ack");
  let polls = 0;
  for (;;) {
    polls += 1;
    const answer = await lookup(name, dnsPort);
    if (answer.includes(address) !== (to === 500)) return { id, name, address, to, ms: now() - t0, polls };
    if (now() - t0 > 120_000) throw new Error(`${name}: ${address} did not ${to === 500 ? "leave" : "come back"} within 120 s`);
    await sleep(20);
  }
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const t = (label: string) => console.log(`[${((now() - T0) / 1000).toFixed(1).padStart(6)} s] ${label}`);
  const T0 = now();
  const loadBefore = loadavg();
  t(`load average before: ${loadBefore.map((l) => l.toFixed(2)).join(" ")}`);

  const peer = forkChild("./health-peer.js", ["--addresses", String(PER_SERVICE), "--ports", String(PORTS), ...(MIX ? ["--mix"] : [])], 0, join(work, "peer.log"));
  const peerReady = await ask<{ ports: number[]; listeners: number; grpcPort?: number }>(peer, {}, "ready", 30_000);
  t(`health servers: ${peerReady.listeners} listeners (127.0.0.1-${PER_SERVICE} x ports ${peerReady.ports.join(",")}), pid ${peer.pid}${pin ? ", CPU 0" : ""}`);
  const ports = peerReady.ports;

  // 1. The baseline: the same 10k instances, no checks.
  const idle = await startServer("idle");
  const idleRegMs = await registerBulk(idle.base, inputs(false, ports));
  t(`idle server: pid ${idle.child.pid}${pin ? ", CPU 1" : ""}; ${INSTANCES} instances without checks registered in ${fmt(idleRegMs, 0)} ms`);
  await sleep(3000);
  const idleCore0 = coreBusyMs(1);
  const idleMon = monitor(idle.child, idle.base);
  await sleep(Number(opts.idle) * 1000);
  await idleMon.stop();
  const idleCore = coreBusyMs(1) - idleCore0;
  const idleSamples = idleMon.samples;
  const idleCpu = cpuPct(idleSamples[0]!, idleSamples[idleSamples.length - 1]!);
  t(`idle server: CPU ${fmt(idleCpu, 2)}% of one core over ${fmt((idleSamples[idleSamples.length - 1]!.at - idleSamples[0]!.at) / 1000, 1)} s`);
  await stopChild(idle.child);

  // 2. The control: the same GETs at the same rate from a bare undici loop, evenly spread.
  const bare = forkChild("./health-bare.js", [], 1, join(work, "bare.log"));
  await ask(bare, {}, "ready", 30_000);
  const urls = (inputs(false, ports) as { id: string; address: string; port: number }[]).map((i) => `http://${i.address}:${i.port}/health/${i.id}`);
  await ask(bare, { start: { interval: INTERVAL, urls } }, "started");
  await sleep(Math.min(INTERVAL + 2000, Number(opts.bare) * 500));
  const bareMon = monitor(bare, undefined);
  await sleep(Number(opts.bare) * 1000);
  await bareMon.stop();
  const bs = bareMon.samples as (Usage & { done: number; failed: number })[];
  const bareFirst = bs[0]!;
  const bareLast = bs[bs.length - 1]!;
  const bareCpu = cpuPct(bareFirst, bareLast);
  const bareRate = ((bareLast.done - bareFirst.done) * 1000) / (bareLast.at - bareFirst.at);
  t(`bare undici loop: pid ${bare.pid}; ${fmt(bareRate, 0)} GETs/s, CPU ${fmt(bareCpu, 1)}% of one core (${bareLast.failed} failed)`);
  await stopChild(bare);

  // 3. The same instances with HTTP checks every INTERVAL.
  const srv = await startServer("checked");
  const peerBefore = (await ask<{ requests: number }>(peer, { count: true }, "requests")).requests;
  const regMs = await registerBulk(srv.base, inputs(true, ports, peerReady.grpcPort));
  let allHealthyMs = NaN;
  for (const started = now(); now() - started < 60_000; await sleep(50)) {
    const s = await stats(srv.base);
    if ((s.byHealth.healthy ?? 0) === INSTANCES) {
      allHealthyMs = now() - started + regMs;
      break;
    }
  }
  t(`checked server: pid ${srv.child.pid}; ${INSTANCES} instances with checks every ${INTERVAL} ms registered in ${fmt(regMs, 0)} ms, all healthy ${fmt(allHealthyMs, 0)} ms after the first bulk call`);
  await sleep(Number(opts.warmup) * 1000);
  t(`warm-up of ${opts.warmup} s done; measuring for ${opts.window} s (at least), flipping ${opts.flips} instances meanwhile`);

  const profFile = opts.profile ? join(resultsDir, `health-prof-${startedAt.toISOString().replace(/[:.]/g, "-")}.cpuprofile`) : undefined;
  if (profFile !== undefined) {
    mkdirSync(resultsDir, { recursive: true });
    await ask(srv.child, { profile: "start", file: profFile }, "profiling");
  }
  const peerAtStart = (await ask<{ requests: number }>(peer, { count: true }, "requests")).requests;
  const core0 = coreBusyMs(1);
  const mon = monitor(srv.child, srv.base);
  const windowEnd = now() + Number(opts.window) * 1000;
  const flips: Flip[] = [];
  // With --mix only slots 0-5 are HTTP checks, which a flip (the endpoint answering 500) reaches.
  const targets = MIX
    ? ([[17, 3], [523, 5], [901, 0], [250, 4], [666, 2]] as const)
    : ([[17, 3], [523, 7], [901, 0], [250, 5], [666, 9]] as const);
  for (let i = 0; i < Number(opts.flips); i++) {
    const [s0, k] = targets[i % targets.length]!;
    const s = s0 % SERVICES;
    for (const to of [500, 200] as const) {
      await sleep(500 + Math.random() * 1000);
      const f = await flip(peer, srv.dnsPort, s, k, to);
      flips.push(f);
      t(`flip ${i + 1}: ${f.id} -> ${to}: ${f.address} ${to === 500 ? "left" : "came back to"} ${f.name} after ${fmt(f.ms, 0)} ms (${f.polls} polls)`);
    }
  }
  while (now() < windowEnd) await sleep(200);
  await mon.stop();
  const coreBusy = coreBusyMs(1) - core0;
  const peerAtEnd = (await ask<{ requests: number }>(peer, { count: true }, "requests")).requests;
  if (profFile !== undefined) await ask(srv.child, { profile: "stop" }, "profiled", 30_000);
  const samples = mon.samples;
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  const windowS = (last.at - first.at) / 1000;
  const checkedCpu = cpuPct(first, last);
  // CPU 1 belongs to the server when pinned: whatever else ran there is another process's (a noisy neighbour).
  const othersOnCore = pin ? (100 * coreBusy) / 1000 / windowS - checkedCpu : NaN;
  const idleWindowS = (idleSamples[idleSamples.length - 1]!.at - idleSamples[0]!.at) / 1000;
  const othersOnCoreIdle = pin ? (100 * idleCore) / 1000 / idleWindowS - cpuPct(idleSamples[0]!, idleSamples[idleSamples.length - 1]!) : NaN;
  const slice10 = slices(samples, 10);
  const elu = (last.elu.active - first.elu.active) / (last.elu.active + last.elu.idle - first.elu.active - first.elu.idle);
  const snaps = mon.snapshots;
  const checksDone = snaps[snaps.length - 1]!.checks.checks - snaps[0]!.checks.checks;
  const snapWindowS = (snaps[snaps.length - 1]!.at - snaps[0]!.at) / 1000;
  const p99s = snaps.map((s) => s.checks.startDelayMs.p99);
  const p50s = snaps.map((s) => s.checks.startDelayMs.p50);
  const maxes = snaps.map((s) => s.checks.startDelayMs.max);
  const lateness = {
    snapshots: snaps.length,
    samplesPerSnapshot: snaps[0]!.checks.startDelayMs.samples,
    p50: { median: median(p50s), max: Math.max(...p50s) },
    p99: { median: median(p99s), max: Math.max(...p99s) },
    max: Math.max(...maxes),
  };
  const disappear = flips.filter((f) => f.to === 500).map((f) => f.ms);
  const reappear = flips.filter((f) => f.to === 200).map((f) => f.ms);
  const flipTarget = INTERVAL + Math.min(5000, Math.floor(INTERVAL * 0.9));
  const finalStats = await stats(srv.base);
  await stopChild(srv.child);
  // Status changes the flips did not cause: a healthy endpoint seen as degraded or unhealthy is the checker's own doing.
  const flipped = new Set(flips.map((f) => f.id));
  const transitions: Record<string, number> = {};
  const spurious: { id: string; from: string; to: string; reason: string; time: number }[] = [];
  for (const line of readFileSync(srv.log, "utf8").split("\n")) {
    if (!line.includes('"health changed"')) continue;
    const rec = JSON.parse(line) as { id: string; from: string; to: string; reason: string; time: number };
    transitions[`${rec.from} -> ${rec.to}`] = (transitions[`${rec.from} -> ${rec.to}`] ?? 0) + 1;
    if (!flipped.has(rec.id) && rec.to !== "healthy") spurious.push(rec);
  }
  const slowMs = spurious.map((r) => Number(/after (\d+) ms/.exec(r.reason)?.[1] ?? NaN)).filter(Number.isFinite);
  await stopChild(peer);

  const pct = (n: number) => `${fmt(n, 1)}%`;
  console.log(`\nload average at the end: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  const checksLabel = MIX ? "checks of mixed kinds (4k HTTP, 2k HTTP with header and expectBody, 2k TCP, 1k DNS, 1k gRPC per 10k)" : "HTTP checks";
  console.log(`\n| measure | value | target | met? |\n|---|---|---|---|`);
  console.log(`| server CPU, ${INSTANCES} instances, no checks (${fmt((idleSamples[idleSamples.length - 1]!.at - idleSamples[0]!.at) / 1000, 0)} s) | ${fmt(idleCpu, 2)}% of one core | baseline | |`);
  console.log(
    `| server CPU, ${INSTANCES} ${checksLabel} every ${INTERVAL / 1000} s (${fmt(windowS, 0)} s) | **${fmt(checkedCpu, 1)}% of one core** (10 s slices ${slice10.map((x) => fmt(x, 1)).join(", ")}); event loop busy ${pct(100 * elu)} | | |`,
  );
  if (pin) console.log(`| other processes on the server's CPU 1 (noise) | ${fmt(othersOnCore, 1)}% during the checked window, ${fmt(othersOnCoreIdle, 1)}% during the idle one | ~0 | |`);
  console.log(`| checks done in the window | ${checksDone} in ${fmt(snapWindowS, 1)} s = ${fmt(checksDone / snapWindowS, 0)}/s (health servers saw ${fmt((peerAtEnd - peerAtStart) / windowS, 0)} req/s) | ${fmt(INSTANCES / (INTERVAL / 1000), 0)}/s | |`);
  console.log(`| bare undici loop, same GETs, same rate (${opts.bare} s) | ${fmt(bareCpu, 1)}% of one core at ${fmt(bareRate, 0)} GETs/s | control | |`);
  console.log(`| CPU per check | ours ${fmt(((checkedCpu - idleCpu) / 100) * 1e6 / (checksDone / snapWindowS), 1)} us (checked minus idle); bare undici loop ${fmt((bareCpu / 100) * 1e6 / bareRate, 1)} us per GET | | |`);
  console.log(
    `| check start lateness (${lateness.snapshots} snapshots of the last ${lateness.samplesPerSnapshot} checks) | p50 ${fmt(lateness.p50.median, 0)} ms (worst ${fmt(lateness.p50.max, 0)}), p99 median ${fmt(lateness.p99.median, 0)} ms, **worst p99 ${fmt(lateness.p99.max, 0)} ms**, max ${fmt(lateness.max, 0)} ms | p99 < ${INTERVAL / 10} ms | ${lateness.p99.max < INTERVAL / 10 ? "yes" : "NO"} |`,
  );
  console.log(
    `| flip to 500 -> gone from DNS | ${disappear.map((x) => fmt(x, 0)).join(", ")} ms (max ${fmt(Math.max(...disappear), 0)}) | <= ${flipTarget} ms | ${Math.max(...disappear) <= flipTarget ? "yes" : "NO"} |`,
  );
  console.log(
    `| flip to 200 -> back in DNS | ${reappear.map((x) => fmt(x, 0)).join(", ")} ms (max ${fmt(Math.max(...reappear), 0)}) | <= ${flipTarget} ms | ${Math.max(...reappear) <= flipTarget ? "yes" : "NO"} |`,
  );
  console.log(
    `| healthy endpoints reported degraded/unhealthy (not flipped) | ${spurious.length}${spurious.length > 0 ? ` (${[...new Set(spurious.map((r) => r.reason.replace(/\d+ ms \(/, "N ms (").slice(0, 60)))].slice(0, 3).join("; ")}; "after" ${fmt(Math.min(...slowMs), 0)}-${fmt(Math.max(...slowMs), 0)} ms)` : ""} | 0 | ${spurious.length === 0 ? "yes" : "NO"} |`,
  );
  console.log(`| status changes logged | ${Object.entries(transitions).map(([k, v]) => `${k}: ${v}`).join(", ")} | | |`);
  console.log(`| server RSS / heap at the end | ${fmt(last.rss / 1e6, 1)} / ${fmt(last.heapUsed / 1e6, 1)} MB (idle server: ${fmt(idleSamples[idleSamples.length - 1]!.rss / 1e6, 1)} / ${fmt(idleSamples[idleSamples.length - 1]!.heapUsed / 1e6, 1)} MB) | | |`);
  console.log(`| query cache invalidations during the window | ${finalStats.cache.invalidations} | | |`);
  if (profFile !== undefined) {
    console.log(`\nCPU profile of the checked window (profiling slows the server; the numbers above are not results): ${profFile}\n`);
    for (const line of profileTop(profFile, 25)) console.log(line);
  }

  mkdirSync(resultsDir, { recursive: true });
  const out = join(resultsDir, `health-${startedAt.toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(
    out,
    JSON.stringify(
      {
        node: process.version,
        loadavgBefore: loadBefore,
        loadavg: loadavg(),
        pin,
        profiled: profFile !== undefined,
        settings: { mix: MIX, instances: INSTANCES, interval: INTERVAL, services: SERVICES, ports, addresses: PER_SERVICE, idleS: Number(opts.idle), warmupS: Number(opts.warmup), windowS: Number(opts.window) },
        bare: { cpuPct: bareCpu, getsPerS: bareRate, failed: bareLast.failed, samples: bs },
        idle: { othersOnCorePct: othersOnCoreIdle, cpuPct: idleCpu, registerMs: idleRegMs, samples: idleSamples, snapshots: idleMon.snapshots },
        checked: {
          registerMs: regMs,
          allHealthyMs,
          cpuPct: checkedCpu,
          cpuPct10sSlices: slice10,
          eventLoopUtilization: elu,
          othersOnCorePct: othersOnCore,
          windowS,
          checksDone,
          checksPerS: checksDone / snapWindowS,
          peerRequestsPerS: (peerAtEnd - peerAtStart) / windowS,
          peerRequestsTotal: peerAtEnd - peerBefore,
          lateness,
          samples,
          snapshots: snaps,
          finalStats,
        },
        flips,
        flipTargetMs: flipTarget,
        transitions,
        spurious,
      },
      null,
      2,
    ),
  );
  console.log(`\nraw results: ${out}`);
}

await runMain(main, work, "the children's logs");
