// The answer encoder as it was, on dns2's Packet (with SRV records written out): the reference the hand-written
// encoder is held to byte for byte (encode.test.ts), and the peer bench/dns-big.ts measures it against.
import dns2, { type Writer } from "dns2";
import { rcodeOf } from "../../src/dns/answer.js";
import type { encodeAnswer } from "../../src/dns/encode.js";
import type { SrvRr } from "../../src/dns/records.js";
import { TYPE } from "../../src/dns/wire.js";

const { Packet } = dns2;

export function viaDns2(o: Parameters<typeof encodeAnswer>[0]): Buffer {
  const { kind, answers } = o.answer;
  const authorities = kind === "nxdomain" || kind === "nodata" ? [o.soa] : [];
  const opt = o.edns ? [{ name: "", type: TYPE.OPT, class: o.edns.udpSize, ttl: o.edns.dnssecOk ? 0x8000 : 0, rdata: [] }] : [];
  const additionals = [...o.answer.additionals, ...opt];
  const writer = new Packet.Writer() as Writer & { names: Map<string, number> };
  writer.names = new Map();
  const aa = kind === "refused" ? 0 : 1;
  new Packet.Header({ qr: 1, aa, ra: o.recursionAvailable ? 1 : 0, rcode: rcodeOf(kind), qdcount: 1, ancount: answers.length, nscount: authorities.length, arcount: additionals.length }).toBuffer(writer);
  Packet.Question.encode(new Packet.Question(o.qname, o.qtype, o.qclass), writer);
  for (const record of [...answers, ...authorities, ...additionals]) {
    if (record.type !== TYPE.SRV) {
      Packet.Resource.encode(record as never, writer);
      continue;
    }
    const r = record as SrvRr;
    Packet.Name.encode(r.name, writer);
    writer.write(TYPE.SRV, 16);
    writer.write(r.class, 16);
    writer.write(Math.min(r.ttl >>> 0, 0x7fffffff), 32);
    const rdlength = writer.bitLength();
    writer.write(0, 16);
    writer.write(r.priority, 16);
    writer.write(r.weight, 16);
    writer.write(r.port, 16);
    const labels = r.target.split(".").filter(Boolean);
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join(".").toLowerCase();
      if (!writer.names.has(suffix) && writer.byteLength() < 0x4000) writer.names.set(suffix, writer.byteLength());
      writer.write(labels[i]!.length, 8);
      for (const ch of labels[i]!) writer.write(ch.charCodeAt(0), 8);
    }
    writer.write(0, 8);
    writer.patch(rdlength, (writer.bitLength() - rdlength - 16) / 8, 16);
  }
  return writer.toBuffer();
}

