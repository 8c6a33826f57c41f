// One service with many instances: how long building its uncached answer takes, by size. Ours (answer plus the
// hand-written encoder, and the whole DnsServer.handle) against dns2's encoder, the one used before, on the same
// answers in the same run. Linear means the cost per record stays flat as the set grows.
//   bench/run.sh dns-big [--sizes 50,250,1000,2000,9000] [--runs 15]
import { parseArgs } from "node:util";
import dns2 from "dns2";
import pino from "pino";
import { loadConfig } from "../src/app/config.js";
import { startServer } from "../src/app/server.js";
import { encodeAnswer } from "../src/dns/encode.js";
import { TYPE } from "../src/dns/wire.js";
import { viaDns2 } from "../test/dns/dns2-reference.js";
import { fmt, median } from "./stats.js";

const { values } = parseArgs({ options: { sizes: { type: "string", default: "50,250,1000,2000,9000" }, runs: { type: "string", default: "15" } } });
const sizes = values.sizes.split(",").map(Number);
const runs = Number(values.runs);
const { Packet } = dns2;

const command = loadConfig(["--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--in-memory", "--node-id", "bench", "--max-instances-per-name", "100000"], {});
if (command.kind !== "serve") throw new Error("unexpected CLI command");
const server = await startServer(command.config, { logger: pino({ level: "warn" }, pino.destination(2)) });
const qname = "_big._tcp.service.home.arpa";
const query = (() => {
  const p = new Packet();
  p.questions.push(new Packet.Question(qname, TYPE.SRV, 1));
  return p.toBuffer();
})();

/** Milliseconds of fn, median of `runs`. */
function time(fn: () => unknown): number {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    fn();
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return median(samples);
}

const rows: string[] = [];
let registered = 0;
for (const n of sizes) {
  const register = [];
  for (; registered < n; registered++) register.push({ id: `big-${registered}`, name: "big", address: `10.${(registered >> 16) & 255}.${(registered >> 8) & 255}.${registered & 255}`, port: 1000 + (registered % 60000) });
  await server.discovery.bulk({ register });
  const zone = server.dns.zone;
  const labels = qname.split(".");
  const answer = zone.answer(qname, labels, TYPE.SRV, server.discovery.registry);
  const soa = zone.soa(server.discovery.registry, 5);
  const options = { qname, qtype: TYPE.SRV, qclass: 1, answer, soa, edns: undefined, recursionAvailable: false };
  const ours = time(() => encodeAnswer(options));
  const build = time(() => zone.answer(qname, labels, TYPE.SRV, server.discovery.registry));
  // The whole query path with the answer table emptied first, as any registry change empties it today.
  const handle = time(() => {
    server.dns.setStaticZones(server.dns.zone.statics);
    server.dns.handle(query, "tcp");
  });
  // dns2 on the same answer, capped as ours sends it; on the whole set only while it is small enough to finish.
  const dns2Capped = time(() => viaDns2({ ...options, answer: { ...answer, answers: answer.answers.slice(0, answer.limit), additionals: answer.additionals.slice(0, answer.limit) } }));
  const whole = { ...options, answer: { ...answer, limit: undefined } };
  const dns2Whole = n <= 2000 ? time(() => viaDns2(whole)) : NaN;
  const oursWhole = n <= 1000 ? time(() => encodeAnswer(whole)) : NaN;
  rows.push(
    `| ${n} | ${fmt(build, 3)} | ${fmt(ours, 3)} | ${fmt(handle, 3)} | ${fmt(dns2Capped, 3)} | ${Number.isNaN(oursWhole) ? "(over 64 KB)" : `${fmt(oursWhole, 3)} (${fmt((oursWhole * 1000) / n, 2)} µs/record)`} | ${Number.isNaN(dns2Whole) ? "(not run)" : `${fmt(dns2Whole, 1)} (${fmt((dns2Whole * 1000) / n, 1)} µs/record)`} |`,
  );
}
await server.stop();
console.log(`one service, SRV answer, median of ${runs} runs, ms (Node ${process.version})`);
console.log("| instances | answer (select, sort, records) | encode, ours | whole query, uncached | encode, dns2, same capped answer | encode, ours, every record | encode, dns2, every record |");
console.log("|---|---|---|---|---|---|---|");
for (const row of rows) console.log(row);
