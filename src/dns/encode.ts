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
import { CLASS_ANY, fold, TYPE } from "./wire.js";

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
/** Where the question's name starts in a message. */
const HEADER_LENGTH = 12;
const MAX_TTL = 0x7fffffff; // RFC 2181 section 8

export function encodeAnswer(o: EncodeOptions): Buffer {
  return write(o, undefined);
}

/**
 * The answer once per rotation: rotation `shift` sends the answer records from `shift` on, then those before it.
 * An A or AAAA set is encoded once and its records reordered (each is the same bytes wherever it sits: its owner
 * is a pointer to the question, and its data holds no name); anything else is encoded once per rotation.
 */
export function encodeRotations(o: EncodeOptions, shifts: readonly number[]): Buffer[] {
  const one = rotatable(o);
  if (one === undefined) return perRotation(o, shifts);
  const { message, starts } = one;
  const n = o.answer.answers.length;
  const head = starts[0]!;
  const tail = starts[n]!;
  const out: Buffer[] = [];
  for (const shift of shifts) {
    if (shift === 0) {
      out.push(message);
      continue;
    }
    // Byte loops: the records are 16 or 28 bytes, less than a copy() call costs.
    const b = Buffer.allocUnsafe(message.length);
    for (let i = 0; i < head; i++) b[i] = message[i]!;
    let p = head;
    for (let k = 0; k < n; k++) {
      const r = (shift + k) % n;
      for (let i = starts[r]!, end = starts[r + 1]!; i < end; i++) b[p++] = message[i]!;
    }
    for (let i = tail; i < message.length; i++) b[p++] = message[i]!;
    out.push(b);
  }
  return out;
}

/**
 * The answer encoded once, with the offset of each answer record and the end of the last (`starts`), when its
 * rotations are reorderings of those records: an A or AAAA set within the limit, each record owned by the
 * question (a pointer to it). Undefined otherwise: each rotation must be encoded (perRotation).
 */
export function rotatable(o: EncodeOptions): { message: Buffer; starts: number[] } | undefined {
  const all = o.answer.answers;
  if (o.answer.limit !== undefined && all.length > o.answer.limit) return undefined;
  const starts: number[] = [];
  const message = write(o, starts);
  for (let i = 0; i < all.length; i++) {
    const t = all[i]!.type;
    if ((t !== TYPE.A && t !== TYPE.AAAA) || message[starts[i]!] !== 0xc0 || message[starts[i]! + 1] !== 12) return undefined;
  }
  return { message, starts };
}

/** Each rotation encoded in full (a window of a set over the limit, or records that hold names). */
function perRotation(o: EncodeOptions, shifts: readonly number[]): Buffer[] {
  const all = o.answer.answers;
  return shifts.map((shift) => write({ ...o, answer: { ...o.answer, answers: [...all.slice(shift), ...all.slice(0, shift)] } }, undefined));
}

/** The message; `starts`, when given, gets the offset of each answer record and the end of the last. */
function write(o: EncodeOptions, starts: number[] | undefined): Buffer {
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
  if (w.length > HEADER_LENGTH + 1) w.question = o.qname; // not the root, a single 0
  w.u16(o.qtype);
  w.u16(o.qclass);
  for (const record of answers) {
    starts?.push(w.length);
    w.record(record);
  }
  starts?.push(w.length);
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

// The labels of the name being written: where each starts and ends in its string, and the hash of the suffix
// from it on. A name has at most 127 labels (255 octets); encoding is synchronous, so one set serves every writer.
const LABEL_START = new Int32Array(128);
const LABEL_END = new Int32Array(128);
const SUFFIX_HASH = new Int32Array(128);

/**
 * The suffixes written so far in the message being written: an open-addressing table of (hash, offset) stamped
 * with the message's number, so starting a message costs nothing. A Map here, cleared per message, was the largest
 * cost of an uncached answer (issue 18): V8's Map.clear allocates a new table, which then grew by rehashing as the
 * message's suffixes went in. Encoding is synchronous, so one table serves every writer.
 */
class SuffixTable {
  private hashes = new Int32Array(256);
  private offsets = new Int32Array(256);
  /** The message each slot was written for (0: never). */
  private stamps = new Int32Array(256);
  private message = 0;
  private used = 0;

  /** Forgets every suffix: a new message. */
  reset(): void {
    this.used = 0;
    if (++this.message === 0x7fffffff) {
      this.stamps.fill(0);
      this.message = 1;
    }
  }

  /** The offset the suffix with this hash was first written at, or -1. */
  get(hash: number): number {
    const mask = this.hashes.length - 1;
    for (let i = hash & mask; this.stamps[i] === this.message; i = (i + 1) & mask) if (this.hashes[i] === hash) return this.offsets[i]!;
    return -1;
  }

  /** Records a suffix the caller found absent (get: -1). */
  set(hash: number, offset: number): void {
    if (2 * (this.used + 1) > this.hashes.length) this.grow();
    const mask = this.hashes.length - 1;
    let i = hash & mask;
    while (this.stamps[i] === this.message) i = (i + 1) & mask;
    this.hashes[i] = hash;
    this.offsets[i] = offset;
    this.stamps[i] = this.message;
    this.used += 1;
  }

  /** Twice the slots (a message with many distinct names); kept for the messages after it. */
  private grow(): void {
    const { hashes, offsets, stamps, message } = this;
    this.hashes = new Int32Array(2 * hashes.length);
    this.offsets = new Int32Array(2 * hashes.length);
    this.stamps = new Int32Array(2 * hashes.length);
    this.used = 0;
    for (let i = 0; i < hashes.length; i++) if (stamps[i] === message) this.set(hashes[i]!, offsets[i]!);
  }
}
const SUFFIXES = new SuffixTable();

/**
 * Finds the labels of a dotted name (empty labels skipped, as "a..b." is "a.b") into LABEL_START and LABEL_END;
 * returns how many. Throws on a label over 63 octets or a name over 255.
 */
function splitLabels(domain: string): number {
  let n = 0;
  let wire = 1;
  const length = domain.length;
  for (let start = 0; start <= length; ) {
    // A loop rather than indexOf: a runtime call per label cost more than the label's few characters.
    let end = start;
    while (end < length && domain.charCodeAt(end) !== 0x2e) end++;
    if (end > start) {
      const length = end - start;
      if (length > 63) throw new Error(`label "${domain.slice(start, end)}" is ${length} octets (at most 63)`);
      wire += length + 1;
      if (n < LABEL_START.length) {
        LABEL_START[n] = start;
        LABEL_END[n] = end;
      }
      n += 1;
    }
    start = end + 1;
  }
  if (wire > 255) throw new Error(`name "${domain}" is ${wire} octets (at most 255)`);
  return n;
}

/** FNV-1a over a label's octets (letters folded) and its length, continuing the hash of the suffix after it. */
function labelHash(domain: string, start: number, end: number, next: number): number {
  let h = (next ^ 0x811c9dc5) >>> 0;
  h = Math.imul(h ^ (end - start), 0x01000193);
  for (let i = start; i < end; i++) h = Math.imul(h ^ fold(domain.charCodeAt(i) & 0xff), 0x01000193);
  return h | 0;
}

/** A DNS message being written: big-endian fields, names compressed against every suffix written so far. */
class MessageWriter {
  private buf: Buffer;
  private at = 0;
  /** A name suffix's hash (labelHash) -> the offset of its first label, the first time it was written. One table
   * for every message: encoding is synchronous, and a writer resets it when it starts. */
  private readonly names = SUFFIXES;
  /** The question's name once it is written at HEADER_LENGTH (and not empty: the root is written as a 0). */
  question: string | undefined;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
    SUFFIXES.reset();
  }

  get length(): number {
    return this.at;
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.at++] = v & 0xff;
  }
  // Byte stores rather than Buffer's writeUInt16BE and writeUInt32BE, whose argument checks cost more than these.
  u16(v: number): void {
    this.room(2);
    const buf = this.buf;
    buf[this.at] = (v >> 8) & 0xff;
    buf[this.at + 1] = v & 0xff;
    this.at += 2;
  }
  u32(v: number): void {
    this.room(4);
    const buf = this.buf;
    buf[this.at] = (v >>> 24) & 0xff;
    buf[this.at + 1] = (v >>> 16) & 0xff;
    buf[this.at + 2] = (v >>> 8) & 0xff;
    buf[this.at + 3] = v & 0xff;
    this.at += 4;
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }

  /**
   * A name: a pointer at the first suffix already written; the suffixes before it are recorded as written. No
   * string is made: the suffixes are found by a hash of their letters (folded to lowercase) and confirmed against
   * the bytes written, so a collision costs a few bytes of compression, never a wrong name.
   */
  name(domain: string, compress = true): void {
    // The question's own name, the owner of most records: the pointer the suffix search would find (the
    // question's suffixes are the first written), without hashing and comparing it again.
    if (compress && domain === this.question) return this.u16(0xc000 | HEADER_LENGTH);
    const n = splitLabels(domain);
    for (let i = n - 1, h = 0; i >= 0; i--) SUFFIX_HASH[i] = h = labelHash(domain, LABEL_START[i]!, LABEL_END[i]!, h);
    for (let i = 0; i < n; i++) {
      const hash = SUFFIX_HASH[i]!;
      const seen = this.names.get(hash);
      if (seen >= 0) {
        if (compress && this.sameSuffix(seen, domain, i, n)) return this.u16(0xc000 | seen);
      } else if (this.at < POINTER_REACH) this.names.set(hash, this.at);
      const start = LABEL_START[i]!;
      const length = LABEL_END[i]! - start;
      this.room(length + 1);
      const buf = this.buf;
      let at = this.at;
      buf[at++] = length;
      for (let j = 0; j < length; j++) buf[at++] = domain.charCodeAt(start + j) & 0xff;
      this.at = at;
    }
    this.u8(0);
  }

  /** Whether the name written at `offset` is the domain's labels from `from` on (n labels), letters folded. */
  private sameSuffix(offset: number, domain: string, from: number, n: number): boolean {
    const buf = this.buf;
    let p = offset;
    for (let i = from; i < n; i++) {
      // Follow pointers: a name written earlier may end in one. Each points backwards, so this ends.
      while ((buf[p]! & 0xc0) === 0xc0) p = ((buf[p]! & 0x3f) << 8) | buf[p + 1]!;
      const start = LABEL_START[i]!;
      const length = LABEL_END[i]! - start;
      if (buf[p] !== length) return false;
      for (let j = 0; j < length; j++) if (fold(buf[p + 1 + j]!) !== fold(domain.charCodeAt(start + j) & 0xff)) return false;
      p += 1 + length;
    }
    while ((buf[p]! & 0xc0) === 0xc0) p = ((buf[p]! & 0x3f) << 8) | buf[p + 1]!;
    return buf[p] === 0;
  }

  record(r: ZoneRr): void {
    this.name(r.name);
    this.u16(r.type);
    this.u16(r.class);
    this.u32(Math.min(r.ttl >>> 0, MAX_TTL));
    const lengthAt = this.at;
    this.u16(0);
    this.rdata(r);
    const rdlength = this.at - lengthAt - 2;
    this.buf[lengthAt] = rdlength >> 8;
    this.buf[lengthAt + 1] = rdlength & 0xff;
  }

  private rdata(r: ZoneRr): void {
    switch (r.type) {
      case TYPE.A:
        return this.ipv4(r.address);
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

  /** A dotted-quad address's four octets (the registry and zone files hold only valid ones). */
  private ipv4(address: string): void {
    this.room(4);
    let octet = 0;
    for (let i = 0; i < address.length; i++) {
      const c = address.charCodeAt(i);
      if (c === 0x2e) {
        this.buf[this.at++] = octet;
        octet = 0;
      } else octet = octet * 10 + c - 0x30;
    }
    this.buf[this.at++] = octet;
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
