// Our DNS handler without sockets: DnsServer.handle(packet) per call on cached answers (every question of the
// dnsperf query file answered once beforehand), and parseQuery alone: time per call and heap allocated per call.
// What one query costs src/dns before the kernel and node:dgram add theirs.
// Usage: node dist/bench/dns-handler.js [--services 1000] [--ms 1000]
//   QSET=1000: ask the questions of a 1000-service set whatever --services is (registry size vs working set).
import { parseArgs } from "node:util";
import dns2 from "dns2";
import pino from "pino";
import { loadConfig } from "../src/app/config.js";
import { parseQuery } from "../src/dns/wire.js";
import { startServer } from "../src/app/server.js";
import { questions, serviceInputs } from "./dns-fixtures.js";
import { registerAll } from "./fixtures.js";
import { fmt, median, percentile } from "./stats.js";

const { values: opts } = parseArgs({ options: { services: { type: "string", default: "1000" }, ms: { type: "string", default: "1000" } } });
const services = Number(opts.services);
const ms = Number(opts.ms);

const command = loadConfig(["--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--in-memory", "--node-id", "bench"], {});
if (command.kind !== "serve") throw new Error("unexpected CLI command");
const server = await startServer(command.config, { logger: pino({ level: "warn" }, pino.destination(2)) });
await registerAll(server.discovery, serviceInputs(services));
const { Packet } = dns2;
// The same questions as the dnsperf file, as dnsperf sends them: RD set, no EDNS.
const querySet = Number(process.env.QSET ?? services);
const asked = questions(querySet, Math.max(20_000, querySet * 20));
const packetOf = (q: (typeof asked)[number], i: number) => {
  const p = new Packet();
  p.header.id = i & 0xffff;
  p.header.rd = 1;
  p.questions.push(new Packet.Question(q.name, Packet.TYPE[q.type], Packet.CLASS.IN));
  return p.toBuffer();
};
const packets = asked.map(packetOf);
/** The same packets by kind of question: A (3 instances), SRV (3 instances and their glue), an absent name. */
const byKind = (kind: string) => asked.flatMap((q, i) => (q.kind === kind ? [packets[i]!] : []));
const dns = server.dns;
for (let k = 0; k < 3; k++) for (const p of packets) dns.handle(p, "udp");

const BATCH = 2_000;
function measure(name: string, fn: (p: Buffer) => unknown, set: readonly Buffer[] = packets): void {
  const nsPerCall: number[] = [];
  const bytesPerCall: number[] = [];
  let i = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const heapBefore = process.memoryUsage().heapUsed;
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < BATCH; k++) fn(set[i++ % set.length]!);
    const t1 = process.hrtime.bigint();
    const heapAfter = process.memoryUsage().heapUsed;
    nsPerCall.push(Number(t1 - t0) / BATCH);
    // A batch during which a scavenge ran shows less heap after than before: not counted.
    if (heapAfter > heapBefore) bytesPerCall.push((heapAfter - heapBefore) / BATCH);
  }
  console.log(
    `| ${name} | ${fmt(median(nsPerCall), 0)} | ${fmt(percentile(nsPerCall, 99), 0)} | ${fmt(median(bytesPerCall), 0)} | ${nsPerCall.length} x ${BATCH} |`,
  );
}

const stats0 = dns.stats();
console.log(`${services} services x 3, ${packets.length} query packets (70% A, 25% SRV, 5% absent), Node ${process.version}\n`);
console.log("| call | ns per call (median of batches) | p99 of batches | heap bytes per call | batches |\n|---|---|---|---|---|");
measure("DnsServer.handle (cached answer)", (p) => dns.handle(p, "udp"));
// Uncached: the answer table emptied before each call, so every call builds its answer (issue 18: an uncached
// answer should cost at most 3x a cached one). Emptying a table of one entry is measured alone beside it.
const table = (dns as unknown as { answers: { clear(): void } }).answers;
measure("DnsServer.handle (uncached: table emptied before each call)", (p) => {
  table.clear();
  return dns.handle(p, "udp");
});
for (const [kind, label] of [["A", "an A question, 3 instances"], ["SRV", "an SRV question, 3 instances and glue"], ["NX", "an absent name"]] as const) {
  measure(`  uncached, ${label}`, (p) => {
    table.clear();
    return dns.handle(p, "udp");
  }, byKind(kind));
}
measure("control: emptying the table alone", () => table.clear());
for (let k = 0; k < 3; k++) for (const p of packets) dns.handle(p, "udp"); // cached again for what follows
measure("parseQuery only", (p) => parseQuery(p));
measure("control: allocUnsafe + copy of 100 bytes", (p) => {
  const out = Buffer.allocUnsafe(100);
  p.copy(out);
  return out;
});
const stats1 = dns.stats();
console.log(`\ncache misses while measuring (the uncached rows are all misses): ${stats1.cacheMisses - stats0.cacheMisses}`);
await server.stop();
