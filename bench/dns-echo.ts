// The ceiling for one Node process serving DNS over UDP: a node:dgram socket that answers every datagram with
// one precomputed response (--packet <hex>), copied and patched with the query's 2-byte ID, nothing else. It
// parses nothing, so it is not a DNS server: only a measure of what the socket, the event loop and a Buffer copy
// cost. Prints {"port":...} once bound on 127.0.0.1; SIGTERM stops it. --profile <file> [--profile-on-signal]: as
// ours-server.ts. --sync-lookup: give the socket a lookup function that calls back at once for IP literals (all a
// server ever sends to), instead of dns.lookup, which defers every send by a process.nextTick.
import { createSocket, type SocketOptions } from "node:dgram";
import { lookup as dnsLookup } from "node:dns";
import { isIP } from "node:net";
import { parseArgs } from "node:util";
import { startProfiler } from "./profiler.js";

const { values } = parseArgs({ options: { packet: { type: "string" }, "sync-lookup": { type: "boolean", default: false }, profile: { type: "string" }, "profile-on-signal": { type: "boolean", default: false } } });
if (values.packet === undefined) throw new Error("--packet <hex> is required");
const template = Buffer.from(values.packet, "hex");

const syncLookup: SocketOptions["lookup"] = (hostname, options, callback) => {
  const family = isIP(hostname);
  if (family !== 0) return callback(null, hostname, family);
  return dnsLookup(hostname, options, callback);
};
const socket = createSocket(values["sync-lookup"] ? { type: "udp4", lookup: syncLookup } : { type: "udp4" });
socket.on("message", (msg, rinfo) => {
  if (msg.length < 2) return;
  const out = Buffer.allocUnsafe(template.length);
  template.copy(out);
  out[0] = msg[0]!;
  out[1] = msg[1]!;
  socket.send(out, rinfo.port, rinfo.address);
});
await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
let stopProfiler: (() => Promise<void>) | undefined;
const profileFile = values.profile;
if (profileFile !== undefined && !values["profile-on-signal"]) stopProfiler = await startProfiler(profileFile);
if (profileFile !== undefined && values["profile-on-signal"]) {
  process.once("SIGUSR2", () => void startProfiler(profileFile).then((stop) => (stopProfiler = stop)));
}

const stop = () => {
  setTimeout(() => process.exit(1), 5_000).unref();
  void (async () => {
    await stopProfiler?.();
    socket.close(() => process.exit(0));
  })();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdout.write(JSON.stringify({ port: socket.address().port }) + "\n");
