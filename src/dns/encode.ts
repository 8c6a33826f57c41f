// Answer -> wire bytes, with dns2's encoder. It compresses every owner name that equals the question's into a
// pointer to the question, and suffixes likewise, so patching the question bytes with the query's own (same
// length, other case) makes the whole response echo the client's case: glue names stay byte-identical to
// SRV targets because both point at the same bytes.
import dns2 from "dns2";
import { rcodeOf, type Answer } from "./answer.js";
import type { Rr } from "./records.js";
import { TYPE } from "./wire.js";

const { Packet } = dns2;

// RFC 2782: an SRV target is never compressed. dns2 compresses it, and the c-ares in Node 22 and later rejects
// such answers outright (EBADRESP; Node 20's c-ares let it pass). Targets are written literally, and their
// suffixes recorded, so the glue records' owner names after them point at the target's own bytes: byte-identical,
// as HAProxy compares them. This replaces dns2's SRV encoder for the whole process (every dns2 user here wants it).
type NameWriter = { write(value: number, bits: number): void; byteLength(): number; names?: Map<string, number> };
(Packet.Resource as unknown as { SRV: { encode: (record: Record<string, unknown>, writer: NameWriter) => void } }).SRV.encode = (record, writer) => {
  writer.write(record.priority as number, 16);
  writer.write(record.weight as number, 16);
  writer.write(record.port as number, 16);
  const labels = String(record.target).split(".").filter(Boolean);
  for (let i = 0; i < labels.length; i++) {
    const suffix = labels.slice(i).join(".").toLowerCase();
    const offset = writer.byteLength();
    if (writer.names && !writer.names.has(suffix) && offset < 0x4000) writer.names.set(suffix, offset);
    const label = labels[i]!;
    writer.write(label.length, 8);
    for (let j = 0; j < label.length; j++) writer.write(label.charCodeAt(j), 8);
  }
  writer.write(0, 8);
};

export interface EncodeOptions {
  qname: string;
  qtype: number;
  qclass: number;
  answer: Answer;
  /** Added to the authority section of negative answers. */
  soa: Rr;
  /** Present when the query had EDNS: we echo an OPT advertising our size and the client's DO bit. */
  edns: { udpSize: number; dnssecOk: boolean } | undefined;
  recursionAvailable: boolean;
}

export function encodeAnswer(o: EncodeOptions): Buffer {
  const p = new Packet();
  const negative = o.answer.kind === "nxdomain" || o.answer.kind === "nodata";
  p.header.qr = 1;
  p.header.aa = o.answer.kind === "refused" ? 0 : 1;
  p.header.ra = o.recursionAvailable ? 1 : 0;
  p.header.rcode = rcodeOf(o.answer.kind);
  p.questions.push(new Packet.Question(o.qname, o.qtype, o.qclass));
  p.answers = [...o.answer.answers] as unknown as typeof p.answers;
  p.authorities = (negative ? [o.soa] : []) as unknown as typeof p.authorities;
  const additionals: unknown[] = [...o.answer.additionals];
  if (o.edns) additionals.push({ name: "", type: TYPE.OPT, class: o.edns.udpSize, ttl: o.edns.dnssecOk ? 0x8000 : 0, rdata: [] });
  p.additionals = additionals as typeof p.additionals;
  return p.toBuffer();
}
