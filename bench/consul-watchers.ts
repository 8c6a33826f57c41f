// Blocking queries on the Consul routes against ours, same server, same run: N watchers wait on
// GET /v1/health/service/web (Consul's) or GET /v1/services?name=web (ours), one change to web is made, and the
// time from the change until every watcher has its answer is measured. Rounds alternate which route goes first;
// medians are reported. Usage: node dist/bench/consul-watchers.js [--watchers 1000] [--rounds 5]
import { Agent, request } from "node:http";
import { parseArgs } from "node:util";
import { startBenchServer } from "./fixtures.js";
import { fmt, median } from "./stats.js";

const { values: opts } = parseArgs({ options: { watchers: { type: "string", default: "1000" }, rounds: { type: "string", default: "5" } } });
const watchers = Number(opts.watchers);
const rounds = Number(opts.rounds);

const server = await startBenchServer({ maxWatchers: watchers + 16, httpMaxConnections: watchers + 64 });
const { discovery } = server;
const base = new URL(server.url);
const agent = new Agent({ keepAlive: true, maxSockets: watchers + 8 });

function get(path: string): Promise<{ index: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: base.hostname, port: base.port, path, agent }, (res) => {
      let bytes = 0;
      res.on("data", (d: Buffer) => (bytes += d.length));
      res.on("end", () => (res.statusCode === 200 ? resolve({ index: String(res.headers["x-consul-index"] ?? res.headers["x-index"]), bytes }) : reject(new Error(`${path}: ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end();
  });
}

const ROUTES = {
  consul: (index: string) => `/v1/health/service/web?index=${index}&wait=60s`,
  ours: (index: string) => `/v1/services?name=web&index=${index}&wait=60s`,
} as const;
const first = { consul: "/v1/health/service/web", ours: "/v1/services?name=web" } as const;

for (let i = 1; i <= 3; i++) await discovery.registerService({ id: `web-${i}`, name: "web", address: `10.0.0.${i}`, port: 80 });

/** One round: all watchers waiting, one registration, ms until the last one has its whole answer. */
async function round(kind: keyof typeof ROUTES, n: number): Promise<number> {
  const { index } = await get(first[kind]);
  const answered: Promise<unknown>[] = [];
  let last = 0;
  for (let i = 0; i < watchers; i++) answered.push(get(ROUTES[kind](index)).then(() => (last = performance.now())));
  while (discovery.changes.waiters < watchers) await new Promise((r) => setTimeout(r, 5));
  const start = performance.now();
  await discovery.registerService({ id: `web-new-${kind}-${n}`, name: "web", address: "10.0.1.1", port: 80 });
  await Promise.all(answered);
  const ms = last - start;
  await discovery.deregisterService(`web-new-${kind}-${n}`);
  return ms;
}

const results: Record<keyof typeof ROUTES, number[]> = { consul: [], ours: [] };
// A warm-up round of each, not counted.
await round("consul", -1);
await round("ours", -1);
for (let n = 0; n < rounds; n++) {
  const order: (keyof typeof ROUTES)[] = n % 2 === 0 ? ["consul", "ours"] : ["ours", "consul"];
  for (const kind of order) results[kind].push(await round(kind, n));
}
const sizes = { consul: (await get(first.consul)).bytes, ours: (await get(first.ours)).bytes };
for (const kind of ["consul", "ours"] as const) {
  console.log(`${kind.padEnd(6)} ${first[kind].padEnd(24)} ${watchers} watchers, one change: all answered in median ${fmt(median(results[kind]))} ms (rounds: ${results[kind].map(fmt).join(", ")}; answer ${sizes[kind]} bytes)`);
}
console.log(`consul / ours: ${fmt(median(results.consul) / median(results.ours))}x`);
agent.destroy();
await server.stop();
