// The event stream against blocking queries, same server, same run: --clients SSE subscribers (GET /v1/events)
// and then as many blocking-query watchers (GET /v1/services?index=&wait=), each following one of --names names,
// while the server changes --rate instances a second. Measured per phase: delivery latency (the change's time,
// carried in the instance's metadata, to the client holding the answer) p50/p99, the server's CPU (its own
// process), and how many changes reached clients. The clients run in this process; the server in a child.
// Usage: node dist/bench/events.js [--clients 1000] [--rate 100] [--seconds 20] [--names 10]
import { fork } from "node:child_process";
import { Agent, request } from "node:http";
import { parseArgs } from "node:util";
import { SseParser } from "../src/client/events.js";
import { fmt, percentile, readyLine } from "./stats.js";

const { values } = parseArgs({
  options: { clients: { type: "string", default: "1000" }, rate: { type: "string", default: "100" }, seconds: { type: "string", default: "20" }, names: { type: "string", default: "10" } },
});
const clients = Number(values.clients);
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const names = Number(values.names);

const child = fork(new URL("./events-server.js", import.meta.url).pathname, ["--names", String(names), "--clients", String(clients)], { stdio: ["ignore", "pipe", "inherit", "ipc"] });
const { port } = await readyLine<{ port: number }>(child);
const agent = new Agent({ keepAlive: true, maxSockets: clients * 2 + 16 });
const now = () => performance.timeOrigin + performance.now();

interface Entry {
  id: string;
  metadata: { t: string };
}

let latencies: number[] = [];
let delivered = 0;
let measuring = false;
const sample = (t: number) => {
  if (!measuring || t === 0) return;
  latencies.push(now() - t);
  delivered += 1;
};

/** An SSE subscriber on one name: every event's instance carries the time of its change. */
function subscribe(name: string): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: `/v1/events?name=${name}`, agent, headers: { accept: "text/event-stream" } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`events: ${res.statusCode}`));
      const parser = new SseParser();
      res.setEncoding("utf8");
      res.on("data", (text: string) => {
        for (const m of parser.push(text)) if (m.event === "registered") sample(Number((JSON.parse(m.data) as { instance: Entry }).instance.metadata.t));
      });
      res.on("error", () => undefined);
      resolve(() => req.destroy());
    });
    req.on("error", () => undefined);
    req.end();
  });
}

function get(path: string): Promise<{ index: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => (res.statusCode === 200 ? resolve({ index: String(res.headers["x-index"]), body }) : reject(new Error(`${path}: ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end();
  });
}

/** A blocking-query watcher on one name: each answer's instances newer than the last seen are deliveries. */
function watch(name: string, stop: { stopped: boolean }): Promise<void> {
  const seen = new Map<string, number>();
  return (async () => {
    let { index, body } = await get(`/v1/services?name=${name}`);
    for (const s of (JSON.parse(body) as { services: Entry[] }).services) seen.set(s.id, Number(s.metadata.t));
    while (!stop.stopped) {
      ({ index, body } = await get(`/v1/services?name=${name}&index=${index}&wait=10s`));
      for (const s of (JSON.parse(body) as { services: Entry[] }).services) {
        const t = Number(s.metadata.t);
        if (t > (seen.get(s.id) ?? 0)) {
          seen.set(s.id, t);
          sample(t);
        }
      }
    }
  })();
}

function churn(): Promise<{ changes: number; cpuMs: number; wallMs: number }> {
  return new Promise((resolve) => {
    child.once("message", (m) => resolve(m as { changes: number; cpuMs: number; wallMs: number }));
    child.send({ cmd: "churn", rate, seconds });
  });
}

async function phase(kind: "sse" | "blocking") {
  const stop = { stopped: false };
  const closers: (() => void)[] = [];
  const loops: Promise<void>[] = [];
  for (let i = 0; i < clients; i++) {
    const name = `svc${i % names}`;
    if (kind === "sse") closers.push(await subscribe(name));
    else loops.push(watch(name, stop).catch(() => undefined));
  }
  await new Promise((r) => setTimeout(r, 1_000)); // every client settled
  latencies = [];
  delivered = 0;
  measuring = true;
  const own0 = process.cpuUsage();
  const server = await churn();
  const own = process.cpuUsage(own0);
  measuring = false;
  const expected = server.changes * (clients / names);
  const result = {
    kind,
    clients,
    changes: server.changes,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: percentile(latencies, 100),
    delivered,
    expected,
    serverCpuPct: (server.cpuMs / server.wallMs) * 100,
    clientCpuPct: ((own.user + own.system) / 1000 / server.wallMs) * 100,
  };
  stop.stopped = true;
  for (const close of closers) close();
  // Blocking watchers end on their next answer; one more change to each name wakes them all.
  await new Promise((r) => setTimeout(r, 200));
  return { result, loops };
}

const sse = await phase("sse");
const blocking = await phase("blocking");
child.send({ cmd: "stop" });
await Promise.race([Promise.all(blocking.loops), new Promise((r) => setTimeout(r, 2_000))]);
for (const { result: r } of [sse, blocking]) {
  console.log(
    `${r.kind.padEnd(8)} ${r.clients} clients, ${r.changes} changes at ${rate}/s: delivery p50 ${fmt(r.p50)} ms, p99 ${fmt(r.p99)} ms, max ${fmt(r.max)} ms; ` +
      `delivered ${r.delivered} of ${r.expected} (${fmt((r.delivered / r.expected) * 100)}%); server CPU ${fmt(r.serverCpuPct)}% of a core (the clients' process: ${fmt(r.clientCpuPct)}%)`,
  );
}
console.log(`blocking / sse: p50 ${fmt(blocking.result.p50 / sse.result.p50)}x, p99 ${fmt(blocking.result.p99 / sse.result.p99)}x, server CPU ${fmt(blocking.result.serverCpuPct / sse.result.serverCpuPct)}x`);
agent.destroy();
process.exit(0);
