// The server under test in the health benchmark: startServer as the CLI starts it (--in-memory, HTTP and DNS on
// 127.0.0.1:0, the info logger writing JSON lines to stdout, which the driver sends to a file). Forked with IPC:
// sends {ready, port, dnsPort} once listening, answers {usage: true} with its own process.cpuUsage(), event-loop
// utilisation and memory, and {profile: "start", file} / {profile: "stop"} with a CPU profile of the window.
import { loadConfig } from "../src/app/config.js";
import { createLogger } from "../src/app/log.js";
import { startServer } from "../src/app/server.js";
import { ownUsage } from "./procstat.js";
import { startProfiler } from "./profiler.js";

const command = loadConfig(["--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--in-memory", "--node-id", "bench"], {});
if (command.kind !== "serve") throw new Error("unexpected CLI command");
const logger = createLogger("info", false);
const server = await startServer(command.config, { logger });

let stopProfiler: (() => Promise<void>) | undefined;
process.on("message", (msg: { usage?: boolean; profile?: "start" | "stop"; file?: string }) => {
  if (msg.usage) {
    process.send!({ usage: ownUsage() });
  } else if (msg.profile === "start" && msg.file !== undefined) {
    void startProfiler(msg.file).then((stop) => {
      stopProfiler = stop;
      process.send!({ profiling: true });
    });
  } else if (msg.profile === "stop") {
    void (stopProfiler?.() ?? Promise.resolve()).then(() => process.send!({ profiled: true }));
  }
});

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(1), 5_000).unref();
  void server.stop().then(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("disconnect", stop);
process.send!({ ready: true, port: server.http.port, dnsPort: server.dnsAddress.port });
