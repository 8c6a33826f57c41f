// Answer -> wire bytes, written by hand into one growing buffer. Every owner name that equals the question's is a
// pointer to the question, and suffixes likewise (RFC 1035 4.1.4), so patching the question bytes with the query's
// own (same length, other case) makes the whole response echo the client's case: glue names stay byte-identical
// to SRV targets because both point at the same bytes. dns2's encoder, used here before, materialised the whole
// message after every record (quadratic: 2,000 SRV records took 6 s) and cost ~10x a cached answer; this writes
// the same bytes (test/dns/encode.test.ts compares the two) in time linear in the answer.
import { ipv6Words } from "../lib/ip.js";
import { rcodeOf, type Answer } from "./answer.js";
import type { Rr, SrvRr, ZoneRr } from "./records.js";
import { TYPE_CAA } from "./records.js";
import { CLASS_ANY, TYPE } from "./wire.js";

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

/** Compression pointers hold 14 bits of offset: names further in are written in full (as dns2 did). */
const POINTER_REACH = 0x4000;
const MAX_TTL = 0x7fffffff; // RFC 2181 section 8

export function encodeAnswer(o: EncodeOptions): Buffer {
  const { kind } = o.answer;
  const { answers, additionals } = capped(o.answer);
  const authorities = kind === "nxdomain" || kind === "nodata" ? 1 : 0;
  const w = new MessageWriter(512);
  // An answer to QCLASS ANY is never authoritative (RFC 6895 3.2); neither is a refusal.
  const aa = kind === "refused" || o.qclass === CLASS_ANY ? 0 : 1;
  w.u16(0); // the id: the server writes the query's
  w.u16(0x8000 | (aa << 10) | ((o.recursionAvailable ? 1 : 0) << 7) | rcodeOf(kind));
  w.u16(1);
  w.u16(answers.length);
  w.u16(authorities);
  w.u16(additionals.length + (o.edns ? 1 : 0));
  w.name(o.qname);
  w.u16(o.qtype);
  w.u16(o.qclass);
  for (const record of answers) w.record(record);
  if (authorities) w.record(o.soa);
  for (const record of additionals) w.record(record);
  if (o.edns) {
    w.u8(0); // the root
    w.u16(TYPE.OPT);
    w.u16(o.edns.udpSize);
    w.u32(o.edns.dnssecOk ? 0x8000 : 0);
    w.u16(0);
  }
  return w.done();
}

/**
 * The records an answer is sent with: at most `answer.limit` of them (a set that big would not fit a message,
 * and no client wants it), with the glue of the SRV targets still in it. Callers rotate the full set before
 * encoding, so each rotation sends another window of it.
 */
function capped(answer: Answer): { answers: readonly ZoneRr[]; additionals: readonly ZoneRr[] } {
  const { limit } = answer;
  if (limit === undefined || answer.answers.length <= limit) return answer;
  const answers = answer.answers.slice(0, limit);
  const targets = new Set<string>();
  for (const r of answers) if (r.type === TYPE.SRV) targets.add(r.target.toLowerCase());
  const additionals = answer.additionals.filter((r) => (r.type !== TYPE.A && r.type !== TYPE.AAAA) || targets.has(r.name.toLowerCase()));
  return { answers, additionals };
}

/** A DNS message being written: big-endian fields, names compressed against every suffix written so far. */
class MessageWriter {
  private buf: Buffer;
  private at = 0;
  /** Lowercase name suffix -> the offset of its first label. */
  private readonly names = new Map<string, number>();

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.at++] = v & 0xff;
  }
  u16(v: number): void {
    this.room(2);
    this.buf.writeUInt16BE(v & 0xffff, this.at);
    this.at += 2;
  }
  u32(v: number): void {
    this.room(4);
    this.buf.writeUInt32BE(v >>> 0, this.at);
    this.at += 4;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  /** A name: a pointer at the first suffix already written; the suffixes before it are recorded as written. */
  name(domain: string, compress = true): void {
    const labels = domain.split(".").filter(Boolean);
    let length = 1;
    for (const label of labels) {
      if (label.length > 63) throw new Error(`label "${label}" is ${label.length} octets (at most 63)`);
      length += label.length + 1;
    }
    if (length > 255) throw new Error(`name "${domain}" is ${length} octets (at most 255)`);
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).join(".").toLowerCase();
      const seen = compress ? this.names.get(suffix) : undefined;
      if (seen !== undefined) return this.u16(0xc000 | seen);
      if (!this.names.has(suffix) && this.at < POINTER_REACH) this.names.set(suffix, this.at);
      const label = labels[i]!;
      this.u8(label.length);
      this.room(label.length);
      for (let j = 0; j < label.length; j++) this.buf[this.at++] = label.charCodeAt(j) & 0xff;
    }
    this.u8(0);
  }

  record(r: ZoneRr): void {
    this.name(r.name);
    this.u16(r.type);
    this.u16(r.class);
    this.u32(Math.min(r.ttl >>> 0, MAX_TTL));
    const lengthAt = this.at;
    this.u16(0);
    this.rdata(r);
    this.buf.writeUInt16BE(this.at - lengthAt - 2, lengthAt);
  }

  private rdata(r: ZoneRr): void {
    switch (r.type) {
      case TYPE.A:
        for (const part of r.address.split(".")) this.u8(Number(part));
        return;
      case TYPE.AAAA: {
        const words = ipv6Words(r.address);
        if (words === undefined) throw new Error(`AAAA record with a bad address ${JSON.stringify(r.address)}`);
        for (const word of words) this.u16(word);
        return;
      }
      case TYPE.NS:
        return this.name(r.ns ?? r.domain);
      case TYPE.CNAME:
      case TYPE.PTR:
        return this.name(r.domain);
      case TYPE.MX:
        this.u16(r.priority);
        return this.name(r.exchange);
      case TYPE.TXT:
        for (const text of r.data) {
          const bytes = Buffer.from(text, "utf8");
          this.u8(bytes.length);
          this.bytes(bytes);
        }
        return;
      case TYPE.SOA:
        this.name(r.primary);
        this.name(r.admin);
        this.u32(r.serial);
        this.u32(r.refresh);
        this.u32(r.retry);
        this.u32(r.expiration);
        this.u32(Math.min(r.minimum >>> 0, MAX_TTL));
        return;
      case TYPE.SRV:
        return this.srv(r);
      case TYPE_CAA:
        this.u8(r.flags);
        this.u8(r.tag.length);
        this.bytes(Buffer.from(r.tag + r.value, "utf8"));
        return;
    }
  }

  /**
   * RFC 2782: an SRV target is never compressed (the c-ares in Node 22 and later rejects answers where it is), but
   * its suffixes are recorded, so the glue records' owner names after it point at the target's own bytes:
   * byte-identical, as HAProxy compares them.
   */
  private srv(r: SrvRr): void {
    this.u16(r.priority);
    this.u16(r.weight);
    this.u16(r.port);
    this.name(r.target, false);
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(bigger, 0, 0, this.at);
    this.buf = bigger;
  }

  /** The message; over 65,535 bytes it cannot be sent at all (the answer's limit keeps it far below). */
  done(): Buffer {
    if (this.at > 0xffff) throw new RangeError(`a DNS message of ${this.at} bytes: at most 65535`);
    return this.buf.subarray(0, this.at);
  }
}
