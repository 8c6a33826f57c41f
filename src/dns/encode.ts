// Answer -> wire bytes, with dns2's encoder for every record but SRV (writeSrv). It compresses every owner name
// that equals the question's into a pointer to the question, and suffixes likewise, so patching the question bytes
// with the query's own (same length, other case) makes the whole response echo the client's case: glue names stay
// byte-identical to SRV targets because both point at the same bytes.
import dns2, { type Writer } from "dns2";
import { rcodeOf, type Answer } from "./answer.js";
import type { Rr, SrvRr } from "./records.js";
import { TYPE } from "./wire.js";

const { Packet } = dns2;

/** dns2's writer with the table of the names written so far (suffix -> byte offset), which its name encoder
 * compresses against (Packet.toBuffer sets it up; so does encodeAnswer). */
type NameWriter = Writer & { names: Map<string, number> };

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

/** The message as dns2's Packet.toBuffer writes it (header, question, sections), each SRV record by writeSrv. */
export function encodeAnswer(o: EncodeOptions): Buffer {
  const { kind, answers } = o.answer;
  const authorities = kind === "nxdomain" || kind === "nodata" ? [o.soa] : [];
  const opt = o.edns ? [{ name: "", type: TYPE.OPT, class: o.edns.udpSize, ttl: o.edns.dnssecOk ? 0x8000 : 0, rdata: [] }] : [];
  const additionals = [...o.answer.additionals, ...opt];
  const writer = new Packet.Writer() as NameWriter;
  writer.names = new Map();
  const aa = kind === "refused" ? 0 : 1;
  const ra = o.recursionAvailable ? 1 : 0;
  new Packet.Header({ qr: 1, aa, ra, rcode: rcodeOf(kind), qdcount: 1, ancount: answers.length, nscount: authorities.length, arcount: additionals.length }).toBuffer(writer);
  Packet.Question.encode(new Packet.Question(o.qname, o.qtype, o.qclass), writer);
  for (const section of [answers, authorities, additionals]) {
    for (const record of section) {
      if (record.type === TYPE.SRV) writeSrv(record as SrvRr, writer);
      else Packet.Resource.encode(record as never, writer);
    }
  }
  return writer.toBuffer();
}

/**
 * An SRV record, framed as dns2 frames every record, with its target written out in full: RFC 2782 says an SRV
 * target is never compressed, and the c-ares in Node 22 and later rejects answers where it is (EBADRESP; Node 20's
 * let them pass), yet dns2's SRV encoder compresses it. The target's suffixes are recorded as dns2 records a
 * name's, so the glue records' owner names after it point at the target's own bytes: byte-identical, as HAProxy
 * compares them. Written here rather than by replacing dns2's Packet.Resource.SRV, which every dns2 user shares.
 */
function writeSrv(record: SrvRr, writer: NameWriter): void {
  Packet.Name.encode(record.name, writer);
  writer.write(TYPE.SRV, 16);
  writer.write(record.class, 16);
  writer.write(Math.min(record.ttl >>> 0, 0x7fffffff), 32); // dns2's clamp (RFC 2181 section 8)
  const rdlength = writer.bitLength();
  writer.write(0, 16);
  writer.write(record.priority, 16);
  writer.write(record.weight, 16);
  writer.write(record.port, 16);
  const labels = record.target.split(".").filter(Boolean);
  for (let i = 0; i < labels.length; i++) {
    const suffix = labels.slice(i).join(".").toLowerCase();
    const offset = writer.byteLength();
    if (!writer.names.has(suffix) && offset < 0x4000) writer.names.set(suffix, offset);
    const label = labels[i]!;
    writer.write(label.length, 8);
    for (let j = 0; j < label.length; j++) writer.write(label.charCodeAt(j), 8);
  }
  writer.write(0, 8);
  writer.patch(rdlength, (writer.bitLength() - rdlength - 16) / 8, 16);
}
