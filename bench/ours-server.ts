// The server under test: startServer on 127.0.0.1:0 with --instances instances (default 10k) registered, as a
// user runs it (in-memory store, default cache TTL). Prints {"port":...} on stdout once ready; SIGTERM stops it.
// --profile <file>: CPU profile of the serving phase (after registration), written on stop.
import { parseArgs } from "node:util";
import pino from "pino";
import { loadConfig } from "../src/config.js";
import { startServer } from "../src/server.js";
import { instanceInputs, registerAll } from "./fixtures.js";
import { startProfiler } from "./profiler.js";

const { values } = parseArgs({ options: { instances: { type: "string", default: "10000" }, profile: { type: "string" } } });
const instances = Number(values.instances);

const command = loadConfig(["--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--in-memory", "--node-id", "bench"], {});
if (command.kind !== "serve") throw new Error("unexpected CLI command");
const logger = pino({ level: "warn" }, pino.destination(2));
const server = await startServer(command.config, { logger });
const registerMs = await registerAll(server.discovery, instanceInputs(instances));
const stopProfiler = values.profile ? await startProfiler(values.profile) : undefined;

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

process.stdout.write(JSON.stringify({ port: server.http.port, instances: server.discovery.registry.size, registerMs: Math.round(registerMs) }) + "\n");
