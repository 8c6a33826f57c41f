// The query side of the wire, by hand: one pass over the header, the question and an OPT record, with no
// allocation beyond the result. dns2's parser costs ~3 us a packet and answers responses (QR=1); this is the
// hot path, so it reads only what an answer depends on. Answers are encoded by hand (encode.ts).

export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
} as const;

export const CLASS_IN = 1;
export const CLASS_ANY = 255;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 } as const;

export interface Edns {
  /** The requestor's UDP payload size (the OPT class). */
  readonly udpSize: number;
  readonly version: number;
  /** DNSSEC OK: copied into the response's OPT (RFC 3225). */
  readonly dnssecOk: boolean;
}

export interface Query {
  readonly id: number;
  readonly opcode: number;
  /** The flags the response copies: RD (0x0100) and CD (0x0010). */
  readonly copiedFlags: number;
  /** Every label is printable ASCII without '.': a name we can hold (anything else is not ours). */
  readonly printable: boolean;
  /** The answer cache's hash of the question (name in wire form with letters folded, type, class): see answer-table.ts. */
  readonly hash: number;
  /** The name had uppercase letters: the question echoed back must be copied from the packet. */
  readonly folded: boolean;
  /** The packet the query came in. Its bytes 12..questionEnd are the question exactly as it came (name, type,
   * class), echoed into the response; no Buffer is made for it on the hot path (see questionOf). */
  readonly packet: Buffer;
  readonly questionEnd: number;
  readonly qtype: number;
  readonly qclass: number;
  readonly edns: Edns | undefined;
}

export type ParseResult =
  | (Query & { readonly ok: true })
  /** Not answered at all: too short to hold a header, or a response (QR=1), which would start reflection loops. */
  | { readonly ok: false; readonly drop: true }
  /** Answered with this rcode and the header only (plus the question when it could be read). */
  | {
      readonly ok: false;
      readonly drop: false;
      readonly id: number;
      readonly opcode: number;
      readonly copiedFlags: number;
      readonly rcode: number;
      readonly question: Buffer | undefined;
      /** The query's EDNS, when it got that far (the answer then carries an OPT, RFC 6891 7). */
      readonly edns: Edns | undefined;
    };

const HEADER = 12;
/** FNV-1a, step by step: the question's hash (Query.hash) over the name's folded bytes, then type and class. */
const HASH_SEED = 0x811c9dc5 | 0;
function hashByte(hash: number, byte: number): number {
  return Math.imul(hash ^ byte, 16777619);
}

export function parseQuery(buf: Buffer): ParseResult {
  if (buf.length < HEADER) return { ok: false, drop: true };
  const id = u16(buf, 0);
  const flags = u16(buf, 2);
  if (flags & 0x8000) return { ok: false, drop: true };
  const opcode = (flags >> 11) & 0xf;
  const copiedFlags = flags & 0x0110;
  const qdcount = u16(buf, 4);
  const ancount = u16(buf, 6);
  const nscount = u16(buf, 8);
  const arcount = u16(buf, 10);
  if (qdcount !== 1) return failure(id, opcode, copiedFlags, RCODE.FORMERR, undefined);

  // The question name: labels only (a compression pointer in a question is not something resolvers send).
  // Validated and hashed in one pass, without building strings.
  let off = HEADER;
  let printable = true;
  let upper = false;
  let nameLength = 0;
  let hash = HASH_SEED;
  for (;;) {
    if (off >= buf.length) return failure(id, opcode, copiedFlags, RCODE.FORMERR, undefined);
    const len = buf[off]!;
    hash = hashByte(hash, len);
    if (len === 0) {
      off += 1;
      break;
    }
    if (len > 63 || off + 1 + len > buf.length) return failure(id, opcode, copiedFlags, RCODE.FORMERR, undefined);
    nameLength += len + 1;
    if (nameLength > 254) return failure(id, opcode, copiedFlags, RCODE.FORMERR, undefined);
    for (let i = off + 1; i <= off + len; i++) {
      let c = buf[i]!;
      if (c <= 0x20 || c >= 0x7f || c === 0x2e) printable = false;
      else if (c >= 0x41 && c <= 0x5a) {
        upper = true;
        c |= 0x20;
      }
      hash = hashByte(hash, c);
    }
    off += 1 + len;
  }
  if (off + 4 > buf.length) return failure(id, opcode, copiedFlags, RCODE.FORMERR, undefined);
  for (let i = off; i < off + 4; i++) hash = hashByte(hash, buf[i]!);
  const qtype = u16(buf, off);
  const qclass = u16(buf, off + 2);
  off += 4;
  const question = off;

  // Skip any answer and authority records, then look for OPT among the additional records.
  let edns: Edns | undefined;
  for (let i = 0; i < ancount + nscount + arcount; i++) {
    const nameEnd = skipName(buf, off);
    if (nameEnd < 0 || nameEnd + 10 > buf.length) return failure(id, opcode, copiedFlags, RCODE.FORMERR, buf.subarray(HEADER, question));
    const type = u16(buf, nameEnd);
    const rdlength = u16(buf, nameEnd + 8);
    if (nameEnd + 10 + rdlength > buf.length) return failure(id, opcode, copiedFlags, RCODE.FORMERR, buf.subarray(HEADER, question));
    if (i >= ancount + nscount && type === TYPE.OPT) {
      // RFC 6891 6.1.1: one OPT, owned by the root.
      if (edns !== undefined || nameEnd !== off + 1) return failure(id, opcode, copiedFlags, RCODE.FORMERR, buf.subarray(HEADER, question));
      const ttl = buf.readUInt32BE(nameEnd + 4);
      edns = { udpSize: u16(buf, nameEnd + 2), version: (ttl >>> 16) & 0xff, dnssecOk: (ttl & 0x8000) !== 0 };
    }
    off = nameEnd + 10 + rdlength;
  }

  // Another opcode (NOTIFY, UPDATE, ...): read as far as a query, answered NOTIMP with its question and an OPT.
  if (opcode !== 0) return failure(id, opcode, copiedFlags, RCODE.NOTIMP, buf.subarray(HEADER, question), edns);
  // 30 bits: a small integer to V8, never a heap number in the result.
  return { ok: true, id, opcode, copiedFlags, printable, hash: hash & 0x3fffffff, folded: upper, packet: buf, questionEnd: question, qtype, qclass, edns };
}

/** The question's name as labels, as asked (for logs), or lowercased (what names are matched by: a cache miss). */
export function nameLabels(q: Query, asAsked = false): string[] {
  // ASCII only (printable names), so toLowerCase is exactly DNS's case folding.
  const wire = q.packet.toString("latin1", HEADER, q.questionEnd - 4);
  return labelsOf(q.folded && !asAsked ? wire.toLowerCase() : wire);
}

/** A big-endian 16-bit read at an offset the caller has bounds-checked (Buffer's readUInt16BE checks again, and
 * its call showed as 12% of the handler's time). */
export function u16(buf: Buffer, off: number): number {
  return (buf[off]! << 8) | buf[off + 1]!;
}

/** ASCII uppercase to lowercase, every other byte as it is: DNS's case folding of names (RFC 4343). */
export function fold(byte: number): number {
  return byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte;
}


/** Any failure of a message with another opcode is NOTIMP: we implement none of them, whatever their shape. */
function failure(id: number, opcode: number, copiedFlags: number, rcode: number, question: Buffer | undefined, edns?: Edns): ParseResult {
  return { ok: false, drop: false, id, opcode, copiedFlags, rcode: opcode === 0 ? rcode : RCODE.NOTIMP, question, edns };
}

/** The question section as it came (a view into the packet). */
export function questionOf(q: Query): Buffer {
  return q.packet.subarray(HEADER, q.questionEnd);
}

/** The labels of a wire-form name read as latin1: "\x03web\x07service...\0" -> ["web", "service", ...]. */
function labelsOf(name: string): string[] {
  const labels: string[] = [];
  for (let i = 0; i < name.length; ) {
    const len = name.charCodeAt(i);
    if (len === 0) break; // the root label ends the name
    labels.push(name.slice(i + 1, i + 1 + len));
    i += 1 + len;
  }
  return labels;
}

/** The offset just past a (possibly compressed) name, or -1 if it runs off the packet. */
function skipName(buf: Buffer, off: number): number {
  for (;;) {
    if (off >= buf.length) return -1;
    const len = buf[off]!;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2 <= buf.length ? off + 2 : -1;
    if (len > 63) return -1;
    off += 1 + len;
  }
}

/**
 * A response with no answers: header, the question if there was one, an authority record if given (the SOA of
 * a negative answer), and an OPT of `optSize` bytes (0: none) when the query had EDNS. Positional arguments and
 * one pooled buffer written byte by byte: malformed packets all take this way, as fast as a fuzzer sends them,
 * and an options object per call (spread from the query) was most of what the process allocated under a fuzzer.
 */
export function bareResponse(
  header: { readonly id: number; readonly opcode: number; readonly copiedFlags: number },
  rcode: number,
  aa: boolean,
  ra: boolean,
  question: Uint8Array | undefined,
  optSize: number,
  dnssecOk: boolean,
  authority?: Uint8Array,
): Buffer {
  const qLength = question?.length ?? 0;
  const nsLength = authority?.length ?? 0;
  const opt = optSize > 0;
  const out = Buffer.allocUnsafe(HEADER + qLength + nsLength + (opt ? 11 : 0));
  const flags = 0x8000 | (header.opcode << 11) | (aa ? 0x0400 : 0) | header.copiedFlags | (ra ? 0x0080 : 0) | (rcode & 0xf);
  out[0] = header.id >> 8;
  out[1] = header.id & 0xff;
  out[2] = flags >> 8;
  out[3] = flags & 0xff;
  out[4] = 0;
  out[5] = qLength > 0 ? 1 : 0;
  out[6] = 0;
  out[7] = 0;
  out[8] = 0;
  out[9] = nsLength > 0 ? 1 : 0;
  out[10] = 0;
  out[11] = opt ? 1 : 0;
  let p = HEADER;
  for (let i = 0; i < qLength; i++) out[p++] = question![i]!;
  for (let i = 0; i < nsLength; i++) out[p++] = authority![i]!;
  if (opt) writeOpt(out, p, optSize, rcode >> 4, dnssecOk);
  return out;
}

/** An SOA record in wire form, every name written out in full (it may follow a question dns2 cannot encode). */
export function soaRecord(soa: { name: string; ttl: number; primary: string; admin: string; serial: number; refresh: number; retry: number; expiration: number; minimum: number }): Buffer {
  const owner = wireName(soa.name);
  const rdata = Buffer.concat([wireName(soa.primary), wireName(soa.admin), Buffer.alloc(20)]);
  [soa.serial, soa.refresh, soa.retry, soa.expiration, soa.minimum].forEach((v, i) => rdata.writeUInt32BE(v >>> 0, rdata.length - 20 + 4 * i));
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(TYPE.SOA, 0);
  fixed.writeUInt16BE(1, 2); // IN
  fixed.writeUInt32BE(soa.ttl >>> 0, 4);
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([owner, fixed, rdata]);
}

/** A dotted ASCII name in wire form: length-prefixed labels and the root. */
function wireName(name: string): Buffer {
  const labels = name.split(".").filter(Boolean);
  return Buffer.concat([...labels.flatMap((l) => [Buffer.from([l.length]), Buffer.from(l, "latin1")]), Buffer.from([0])]);
}

/** An OPT pseudo-record (RFC 6891) advertising our payload size, version 0, with no options. */
export function optRecord(udpSize: number, extendedRcode: number, dnssecOk: boolean): Buffer {
  const b = Buffer.allocUnsafe(11);
  writeOpt(b, 0, udpSize, extendedRcode, dnssecOk);
  return b;
}

/** The 11 bytes of optRecord's OPT, written at `at`. */
function writeOpt(b: Buffer, at: number, udpSize: number, extendedRcode: number, dnssecOk: boolean): void {
  b[at] = 0; // root
  b[at + 1] = 0;
  b[at + 2] = TYPE.OPT;
  b[at + 3] = udpSize >> 8;
  b[at + 4] = udpSize & 0xff;
  b[at + 5] = extendedRcode & 0xff;
  b[at + 6] = 0; // version
  b[at + 7] = dnssecOk ? 0x80 : 0;
  b[at + 8] = 0;
  b[at + 9] = 0; // no options
  b[at + 10] = 0;
}

/** Marks a full response as truncated and cuts it to header, question and OPT: the client retries over TCP. */
export function truncated(full: Buffer, questionLength: number, opt: Buffer | undefined): Buffer {
  const end = HEADER + questionLength;
  const out = Buffer.alloc(end + (opt?.length ?? 0));
  full.copy(out, 0, 0, end);
  out[2] = out[2]! | 0x02; // TC
  out.writeUInt16BE(0, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(opt ? 1 : 0, 10);
  opt?.copy(out, end);
  return out;
}

/** The two-byte length DNS over TCP sends before a message (RFC 1035 4.2.2). */
export function tcpLength(message: Buffer): Buffer {
  const b = Buffer.allocUnsafe(2);
  b[0] = message.length >> 8;
  b[1] = message.length & 0xff;
  return b;
}

/** A message as DNS over TCP carries it: a two-byte length, then the message (RFC 1035 4.2.2). */
export function tcpFrame(message: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(2 + message.length);
  frame.writeUInt16BE(message.length, 0);
  message.copy(frame, 2);
  return frame;
}
