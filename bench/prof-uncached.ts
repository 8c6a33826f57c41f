// A loop of uncached answers (the answer table emptied before each DnsServer.handle) for `node --cpu-prof`: where
// an uncached answer's time goes (issue 18). Usage: node --cpu-prof dist/bench/prof-uncached.js [--kind A|SRV|NX|all] [--ms 3000]
import { parseArgs } from "node:util";
import dns2 from "dns2";
import pino from "pino";
import { loadConfig } from "../src/app/config.js";
import { startServer } from "../src/app/server.js";
import { questions, serviceInputs } from "./dns-fixtures.js";
import { registerAll } from "./fixtures.js";

const { values: opts } = parseArgs({ options: { kind: { type: "string", default: "all" }, ms: { type: "string", default: "3000" }, services: { type: "string", default: "1000" } } });
const services = Number(opts.services);
const command = loadConfig(["--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--in-memory", "--node-id", "bench"], {});
if (command.kind !== "serve") throw new Error("unexpected CLI command");
const server = await startServer(command.config, { logger: pino({ level: "warn" }, pino.destination(2)) });
await registerAll(server.discovery, serviceInputs(services));
const { Packet } = dns2;
const asked = questions(services, Math.max(20_000, services * 20)).filter((q) => opts.kind === "all" || q.kind === opts.kind);
const packets = asked.map((q, i) => {
  const p = new Packet();
  p.header.id = i & 0xffff;
  p.header.rd = 1;
  p.questions.push(new Packet.Question(q.name, Packet.TYPE[q.type], Packet.CLASS.IN));
  return p.toBuffer();
});
const dns = server.dns;
const table = (dns as unknown as { answers: { clear(): void } }).answers;
const end = performance.now() + Number(opts.ms);
let calls = 0;
const t0 = performance.now();
while (performance.now() < end) {
  for (let k = 0; k < 1000; k++) {
    table.clear();
    dns.handle(packets[calls++ % packets.length]!, "udp");
  }
}
console.log(`${opts.kind}: ${calls} uncached calls, ${(((performance.now() - t0) * 1000) / calls).toFixed(2)} us each (clear included)`);
await server.stop();
