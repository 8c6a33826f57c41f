// Containers registering themselves (issue 19): the time from `podman run` returning to the container's name
// answering in our DNS, over --containers containers started one after another, against the same time for
// Podman's own answer (its Docker API listing the container as running, the floor: what any engine client
// waits for). Podman's Docker-compatible API (`podman system service`) on a socket in a temp dir; containers
// with host networking from an image made offline (a static busybox), each serving a loopback port.
//   npm run build && bench/run.sh docker [--containers 50]
import { execFile, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseArgs } from "node:util";
import { BUSYBOX_IMAGE, podmanArgs as podmanFlags, podmanImage, removePodmanStore, RUN_FLAGS } from "../test/e2e/podman.js";
import { decode, Packet, query, udp } from "../test/dns/helpers.js";
import { children, sleep, stopChild } from "./children.js";
import { fmt, median } from "./stats.js";

const { values } = parseArgs({ options: { containers: { type: "string", default: "50" } } });
const count = Number(values.containers);
const run = promisify(execFile);

const dir = mkdtempSync(join(tmpdir(), "hd-bench-docker-"));
const socket = join(dir, "engine.sock");
const podmanArgs = podmanFlags(dir);
const podman = (...args: string[]) => run("podman", [...podmanArgs, ...args]);

/** GET on the engine's socket, the body as text. */
function engine(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path, method: "GET" }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve(body));
    });
    req.on("error", reject);
    req.end();
  });
}

/** One A query; the number of answers (0 on no reply within 200 ms). */
async function answers(port: number, name: string): Promise<number> {
  const reply = await udp(port, query(name, Packet.TYPE.A), 200);
  return reply === undefined ? 0 : decode(reply).answers.length;
}

async function main(): Promise<void> {
  podmanImage(dir);
  const service = spawn("podman", [...podmanArgs, "system", "service", "--time=0", `unix://${socket}`], { stdio: "ignore" });
  children.push(service);
  for (let i = 0; i < 100; i++) {
    try {
      await engine("/v1.41/_ping");
      break;
    } catch {
      await sleep(100);
    }
  }
  const server = spawn(process.execPath, ["dist/src/main.js", "--in-memory", "--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--docker-socket", `unix://${socket}`, "--log-level", "info"], { stdio: ["ignore", "pipe", "inherit"] });
  children.push(server);
  let log = "";
  server.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  while (!log.includes("container engine connected")) await sleep(50);
  const dnsLine = log.split("\n").filter((l) => l.includes('"DNS listening"')).map((l) => JSON.parse(l) as { address: string })[0]!;
  const dnsPort = Number(dnsLine.address.split(":").pop());

  // The engine's event stream, as our source reads it: when each container's start event arrives.
  const startEvents = new Map<string, number>();
  const events = request({ agent: false, timeout: 0, socketPath: socket, path: `/v1.41/events?filters=${encodeURIComponent(JSON.stringify({ type: ["container"], event: ["start"] }))}`, method: "GET" }, (res) => {
    let pending = "";
    res.on("data", (d: Buffer) => {
      pending += d.toString();
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        const name = (JSON.parse(line) as { Actor?: { Attributes?: { name?: string } } }).Actor?.Attributes?.name;
        if (name !== undefined && !startEvents.has(name)) startEvents.set(name, performance.now());
      }
    });
  });
  events.on("error", () => undefined);
  events.end();
  await sleep(500);
  const ours: number[] = [];
  const engineSees: number[] = [];
  const eventSeen: number[] = [];
  for (let i = 0; i < count; i++) {
    const port = 20_000 + i;
    await podman("run", "-d", "--name", `b${i}`, ...RUN_FLAGS, "--label", `homelab.service=b${i}`, "--label", `homelab.port=${port}`, BUSYBOX_IMAGE, "/bin/httpd", "-f", "-p", `127.0.0.1:${port}`, "-h", "/www");
    const returned = performance.now();
    // Both watched at once from the moment `podman run` returns: our DNS, and the engine's own list.
    let inDns: number | undefined;
    let inList: number | undefined;
    while (inDns === undefined || inList === undefined) {
      const [a, list] = await Promise.all([inDns === undefined ? answers(dnsPort, `b${i}.service.home.arpa`) : 1, inList === undefined ? engine(`/v1.41/containers/json?filters=${encodeURIComponent(JSON.stringify({ name: [`b${i}`] }))}`) : "[1]"]);
      if (inDns === undefined && a > 0) inDns = performance.now() - returned;
      if (inList === undefined && list.includes(`"/b${i}"`)) inList = performance.now() - returned;
      if (performance.now() - returned > 10_000) throw new Error(`b${i} never answered`);
    }
    ours.push(inDns);
    engineSees.push(inList);
    const event = startEvents.get(`b${i}`);
    if (event !== undefined) eventSeen.push(event - returned);
  }
  const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(xs.length * 0.99) - 1)]!;
  console.log(`${count} containers, one after another: from \`podman run\` returning`);
  console.log(`| until | p50 ms | p99 ms | max ms |`);
  console.log(`|---|---|---|---|`);
  console.log(`| the name answers in our DNS | ${fmt(median(ours))} | ${fmt(p99(ours))} | ${fmt(Math.max(...ours))} |`);
  console.log(`| the engine's event stream delivers its start (${eventSeen.length} seen) | ${fmt(median(eventSeen))} | ${fmt(p99(eventSeen))} | ${fmt(Math.max(...eventSeen))} |`);
  console.log(`| the engine's API lists it (floor) | ${fmt(median(engineSees))} | ${fmt(p99(engineSees))} | ${fmt(Math.max(...engineSees))} |`);
  events.destroy();
  await podman("rm", "-af", "-t", "0");
  await stopChild(server);
  await stopChild(service);
}

try {
  await main();
} finally {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  removePodmanStore(dir);
}
