// The server for bench/events.ts, in a process of its own so its CPU is its own: startServer in memory with
// --names x --per-name instances, limits raised for the benchmark's connections. Over IPC: {cmd:"churn", rate,
// seconds} re-registers one instance at a time round robin at `rate` per second, each carrying the wall-clock
// time of the change in metadata.t (what the clients measure delivery from), answering {done, changes, cpuMs};
// {cmd:"stop"} stops it. Prints {"port":...} once ready.
import { parseArgs } from "node:util";
import { startBenchServer } from "./fixtures.js";

const { values } = parseArgs({ options: { names: { type: "string", default: "10" }, "per-name": { type: "string", default: "5" }, clients: { type: "string", default: "2000" } } });
const names = Number(values.names);
const perName = Number(values["per-name"]);
const clients = Number(values.clients);

const server = await startBenchServer({ maxWatchers: clients + 64, maxEventStreams: clients + 64, httpMaxConnections: clients * 2 + 64 }, "warn");
const { discovery } = server;
const input = (name: number, i: number, t: number) => ({ id: `svc${name}-${i}`, name: `svc${name}`, address: `10.1.${name}.${i + 1}`, port: 80, metadata: { t: String(t) } });
for (let n = 0; n < names; n++) for (let i = 0; i < perName; i++) await discovery.registerService(input(n, i, 0));

const now = () => performance.timeOrigin + performance.now();
const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

process.on("message", (msg: { cmd: string; rate?: number; seconds?: number }) => {
  if (msg.cmd === "stop") {
    void server.stop().then(() => process.exit(0));
    return;
  }
  if (msg.cmd !== "churn") return;
  const rate = msg.rate!;
  const total = Math.round(rate * msg.seconds!);
  const cpu0 = cpuMs();
  const start = performance.now();
  let made = 0;
  // Paced by the clock, not by a timer per change: 100/s is one change every 10 ms, made in small steps.
  const tick = setInterval(() => {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
    for (; made < due; made++) {
      const n = made % names;
      const i = Math.floor(made / names) % perName;
      void discovery.registerService(input(n, i, now()));
    }
    if (made >= total) {
      clearInterval(tick);
      // A moment for the last deliveries before CPU is read.
      setTimeout(() => process.send!({ done: true, changes: made, cpuMs: cpuMs() - cpu0, wallMs: performance.now() - start }), 500);
    }
  }, 2);
});

process.stdout.write(JSON.stringify({ port: server.http.port, instances: discovery.registry.size }) + "\n");
