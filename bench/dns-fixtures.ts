// The DNS benchmark's data set, in every form the servers under test take: registration inputs for ours, a zone
// file for NSD, a config file for dnsmasq, the dnsperf query file, and the answers every server must give.
// N services `svc-0` ... x 3 instances, addresses 10.x.y.z (never contacted: no healthEndpoint, no ttl).
import { SRV_WEIGHT } from "../src/dns/answer.js";
import { hexOfAddress } from "../src/dns/names.js";
import type { ServiceInput } from "../src/model/schema.js";

export const DOMAIN = "home.arpa";
export const PER_SERVICE = 3;
/** Our default --dns-ttl (service records) and --dns-negative-ttl; the peers get the same. */
export const SERVICE_TTL = 5;
export const NEGATIVE_TTL = 5;

export interface Instance {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  /** The SRV target our server uses for this address: <hex>.addr.<domain>. */
  readonly target: string;
}

/** Instance k of service s: index i = s * 3 + k + 1, address 10.(i>>16).(i>>8).(i), port 8080 + k. */
export function instancesOf(service: number): Instance[] {
  return Array.from({ length: PER_SERVICE }, (_, k) => {
    const i = service * PER_SERVICE + k + 1;
    const address = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    return { id: `svc-${service}-${k}`, address, port: 8080 + k, target: `${hexOfAddress(address)}.addr.${DOMAIN}` };
  });
}

export const serviceName = (s: number) => `svc-${s}`;
export const aName = (s: number) => `svc-${s}.service.${DOMAIN}`;
export const srvName = (s: number) => `_svc-${s}._tcp.service.${DOMAIN}`;

export function serviceInputs(services: number): ServiceInput[] {
  const out: ServiceInput[] = [];
  for (let s = 0; s < services; s++) {
    for (const inst of instancesOf(s)) out.push({ id: inst.id, name: serviceName(s), address: inst.address, port: inst.port });
  }
  return out;
}

/** NSD's zone: SOA and NS like ours, then per service the A set, the SRV set and each target's A record. */
export function zoneFile(services: number): string {
  const lines = [
    `$ORIGIN ${DOMAIN}.`,
    `$TTL ${SERVICE_TTL}`,
    `@ 60 IN SOA ns.${DOMAIN}. hostmaster.${DOMAIN}. 1 3600 600 86400 ${NEGATIVE_TTL}`,
    `@ 60 IN NS ns.${DOMAIN}.`,
    `ns 60 IN A 127.0.0.1`,
  ];
  for (let s = 0; s < services; s++) {
    const insts = instancesOf(s);
    for (const i of insts) lines.push(`svc-${s}.service IN A ${i.address}`);
    for (const i of insts) lines.push(`_svc-${s}._tcp.service IN SRV 1 ${SRV_WEIGHT.healthy} ${i.port} ${i.target}.`);
    for (const i of insts) lines.push(`${i.target}. IN A ${i.address}`);
  }
  return lines.join("\n") + "\n";
}

/** dnsmasq's records, one option a line (a --conf-file); host-record also makes PTRs, which no query asks for. */
export function dnsmasqRecords(services: number): string {
  const lines: string[] = [];
  for (let s = 0; s < services; s++) {
    const insts = instancesOf(s);
    for (const i of insts) lines.push(`host-record=${aName(s)},${i.address},${SERVICE_TTL}`);
    for (const i of insts) lines.push(`srv-host=${srvName(s)},${i.target},${i.port},1,${SRV_WEIGHT.healthy}`);
    for (const i of insts) lines.push(`host-record=${i.target},${i.address},${SERVICE_TTL}`);
  }
  return lines.join("\n") + "\n";
}

export type QueryKind = "A" | "SRV" | "NX";
export interface Question {
  readonly kind: QueryKind;
  readonly name: string;
  readonly type: "A" | "SRV";
  readonly service: number;
}

/** Deterministic PRNG (mulberry32), so every run and every server gets the very same query file. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The query mix: 70% `<name>.service A`, 25% `_<name>._tcp.service SRV`, 5% names that do not exist (half A, half SRV). */
export const MIX = { A: 0.7, SRV: 0.25, NX: 0.05 } as const;

export function questions(services: number, count: number, seed = 42): Question[] {
  const rand = rng(seed);
  const out: Question[] = [];
  for (let n = 0; n < count; n++) {
    const r = rand();
    const s = Math.floor(rand() * services);
    if (r < MIX.A) out.push({ kind: "A", name: aName(s), type: "A", service: s });
    else if (r < MIX.A + MIX.SRV) out.push({ kind: "SRV", name: srvName(s), type: "SRV", service: s });
    else if (n % 2 === 0) out.push({ kind: "NX", name: `nx-${s}.service.${DOMAIN}`, type: "A", service: s });
    else out.push({ kind: "NX", name: `_nx-${s}._tcp.service.${DOMAIN}`, type: "SRV", service: s });
  }
  return out;
}

/** dnsperf's input: `name type` per line. */
export const queryFile = (qs: readonly Question[]) => qs.map((q) => `${q.name} ${q.type}`).join("\n") + "\n";
