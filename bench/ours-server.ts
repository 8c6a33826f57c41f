// The server under test: startServer on 127.0.0.1:0 with --instances instances (default 10k) registered, as a
// user runs it (in-memory store, default cache TTL). Prints {"port":...,"dnsPort":...} on stdout once ready (HTTP
// and DNS, both on 127.0.0.1); SIGTERM stops it.
// --services <n>: register the DNS benchmark's data set instead (n services x 3 instances, bench/dns-fixtures.ts).
// --udp-echo <hex>: a control, not our DNS: the DNS UDP socket answers every query with this one packet (the ID
// patched), as bench/dns-echo.ts does, but inside this process, so the benchmark can tell the cost of our process
// (its heap, modules and timers) from the cost of src/dns.
// --bare-writes: also a bare node:http write handler in this process (bench/bare-writes.ts, on its own port,
// `barePort` in the ready line): the peer of our write path, on the same event loop as our DNS.
// --profile <file>: CPU profile of the serving phase (after registration), written on stop; with --profile-on-signal
// it starts at the first SIGUSR2 instead, so a driver can leave warm-up out of it.
import type { Socket } from "node:dgram";
import { parseArgs } from "node:util";
import pino from "pino";
import { loadConfig } from "../src/app/config.js";
import { startServer } from "../src/app/server.js";
import { serviceInputs } from "./dns-fixtures.js";
import { instanceInputs, registerAll } from "./fixtures.js";
import { startBareWrites } from "./bare-writes.js";
import { startProfiler } from "./profiler.js";

const { values } = parseArgs({
  options: {
    instances: { type: "string", default: "10000" },
    services: { type: "string" },
    "udp-echo": { type: "string" },
    profile: { type: "string" },
    "profile-on-signal": { type: "boolean", default: false },
    "bare-writes": { type: "boolean", default: false },
  },
});
const instances = Number(values.instances);

const command = loadConfig(["--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--in-memory", "--node-id", "bench"], {});
if (command.kind !== "serve") throw new Error("unexpected CLI command");
const logger = pino({ level: "warn" }, pino.destination(2));
const server = await startServer(command.config, { logger });
const inputs = values.services !== undefined ? serviceInputs(Number(values.services)) : instanceInputs(instances);
const registerMs = await registerAll(server.discovery, inputs);
if (values["udp-echo"] !== undefined) {
  const template = Buffer.from(values["udp-echo"], "hex");
  // DnsServer keeps its UDP socket private; reach it for this control only.
  const udp = (server.dns as unknown as { udp?: Socket }).udp;
  if (udp === undefined) throw new Error("--udp-echo: DnsServer has no 'udp' socket field any more; update bench/ours-server.ts");
  udp.removeAllListeners("message");
  udp.on("message", (msg, rinfo) => {
    if (msg.length < 2) return;
    const out = Buffer.allocUnsafe(template.length);
    template.copy(out);
    out[0] = msg[0]!;
    out[1] = msg[1]!;
    udp.send(out, rinfo.port, rinfo.address);
  });
}
const bare = values["bare-writes"] ? await startBareWrites() : undefined;
let stopProfiler: (() => Promise<void>) | undefined;
if (values.profile !== undefined && !values["profile-on-signal"]) stopProfiler = await startProfiler(values.profile);
const profileFile = values.profile;
if (profileFile !== undefined && values["profile-on-signal"]) {
  process.once("SIGUSR2", () => void startProfiler(profileFile).then((stop) => (stopProfiler = stop)));
}

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(1), 5_000).unref();
  void (async () => {
    await stopProfiler?.();
    await server.stop();
    process.exit(0);
  })();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

process.stdout.write(JSON.stringify({ port: server.http.port, dnsPort: server.dnsAddress.port, instances: server.discovery.registry.size, registerMs: Math.round(registerMs), ...(bare ? { barePort: bare.port } : {}) }) + "\n");
