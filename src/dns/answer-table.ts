// The encoded-answer cache of DnsServer.respond, in flat memory: an open-addressing table of Int32 slots (hash,
// record) over one growing Buffer of records, each holding a question's key and its answers side by side. A
// lookup compares the question where it sits in the query packet (the name's letters folded to lowercase) with
// the record's key, then copies the answer that follows it: no string is made and no object is visited per
// query, so a query touches one slot and one record. Between real packets the CPU caches are cold, and the Map of
// objects this replaces (a key string per query, then the map's table, the stored key, an entry object, its
// variants array, a Buffer object and its bytes) cost more in cache misses than in instructions: see
// BENCHMARKS.md section 3 for what this changed.

import { fold, u16 } from "./wire.js";

// A record: EDNS state, outside-the-zone flag, variant count, next variant (A and AAAA answers rotate), the key's
// length (2 bytes), the key (name in wire form, letters folded; type; class), then each variant as a 2-byte
// length and its bytes.
const STATE = 0;
const OUTSIDE = 1;
const VARIANTS = 2;
const NEXT = 3;
const KEY_LENGTH = 4;
const KEY = 6;

const INITIAL_RECORD_BYTES = 64 * 1024;
/** clear() lets a record buffer larger than this go (a burst of big answers), and starts again small. */
const KEEP_RECORD_BYTES = 4 * 1024 * 1024;

export class AnswerTable {
  /** Pairs per slot: the question's hash, and its record's offset + 1 (0: empty). */
  private slots: Int32Array = new Int32Array(2 * 1024);
  /** The slot of every entry, so clear() costs what the table held, not its capacity. */
  private used: Int32Array = new Int32Array(512);
  private entries = 0;
  private records: Buffer = Buffer.alloc(INITIAL_RECORD_BYTES);
  private recordsUsed = 0;

  get size(): number {
    return this.entries;
  }

  /** The memory the table holds, bytes: its records' buffer and its slots. */
  get bytes(): number {
    return this.records.length + this.slots.byteLength + this.used.byteLength;
  }

  /**
   * The entry for this question (packet bytes 12..questionEnd: name, type, class) in this EDNS state, or -1.
   * `hash` is parseQuery's hash of the same bytes (Query.hash).
   */
  find(packet: Buffer, questionEnd: number, hash: number, state: number): number {
    const slots = this.slots;
    const mask = (slots.length >> 1) - 1;
    const length = questionEnd - 12;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const record = slots[2 * i + 1]!;
      if (record === 0) return -1;
      if (slots[2 * i] !== hash) continue;
      const at = record - 1;
      if (this.records[at + STATE] === state && u16(this.records, at + KEY_LENGTH) === length && this.sameKey(packet, at + KEY, length)) return at;
    }
  }

  /** Adds an entry (the caller found none) and returns it. */
  insert(packet: Buffer, questionEnd: number, hash: number, state: number, variants: readonly Buffer[], outside: boolean): number {
    if (variants.length > 255) throw new RangeError("at most 255 variants");
    const length = questionEnd - 12;
    let size = KEY + length;
    for (const v of variants) size += 2 + v.length;
    this.records = ensure(this.records, this.recordsUsed + size);
    const r = this.records;
    const at = this.recordsUsed;
    r[at + STATE] = state;
    r[at + OUTSIDE] = outside ? 1 : 0;
    r[at + VARIANTS] = variants.length;
    r[at + NEXT] = 0;
    r.writeUInt16BE(length, at + KEY_LENGTH);
    const nameLength = length - 4; // the type and class bytes are never folded
    for (let i = 0; i < length; i++) r[at + KEY + i] = i < nameLength ? fold(packet[12 + i]!) : packet[12 + i]!;
    let p = at + KEY + length;
    for (const v of variants) {
      r.writeUInt16BE(v.length, p);
      v.copy(r, p + 2);
      p += 2 + v.length;
    }
    this.recordsUsed += size;

    this.entries += 1;
    if (this.entries > this.used.length) this.used = grown(this.used);
    if (this.entries * 2 > this.slots.length >> 1) this.rehash(this.slots.length);
    this.place(this.entries - 1, hash, at);
    return at;
  }

  outside(entry: number): boolean {
    return this.records[entry + OUTSIDE] === 1;
  }

  /** A copy of the entry's next variant, to patch and send; the rotation moves on. */
  next(entry: number): Buffer {
    const r = this.records;
    const k = r[entry + NEXT]!;
    r[entry + NEXT] = k + 1 === r[entry + VARIANTS] ? 0 : k + 1;
    let p = entry + KEY + u16(r, entry + KEY_LENGTH);
    for (let j = 0; j < k; j++) p += 2 + u16(r, p);
    const length = u16(r, p);
    const out = Buffer.allocUnsafe(length);
    r.copy(out, 0, p + 2, p + 2 + length);
    return out;
  }

  /** Empties the table; the memory stays for what is cached next, up to KEEP_RECORD_BYTES of records. */
  clear(): void {
    for (let e = 0; e < this.entries; e++) {
      const slot = this.used[e]!;
      this.slots[2 * slot] = 0;
      this.slots[2 * slot + 1] = 0;
    }
    this.entries = 0;
    this.recordsUsed = 0;
    if (this.records.length > KEEP_RECORD_BYTES) this.records = Buffer.alloc(INITIAL_RECORD_BYTES);
  }

  private sameKey(packet: Buffer, keyAt: number, length: number): boolean {
    const r = this.records;
    const nameLength = length - 4;
    for (let i = 0; i < nameLength; i++) if (fold(packet[12 + i]!) !== r[keyAt + i]) return false;
    for (let i = nameLength; i < length; i++) if (packet[12 + i] !== r[keyAt + i]) return false;
    return true;
  }

  private place(entry: number, hash: number, at: number): void {
    const mask = (this.slots.length >> 1) - 1;
    let i = hash & mask;
    while (this.slots[2 * i + 1] !== 0) i = (i + 1) & mask;
    this.slots[2 * i] = hash;
    this.slots[2 * i + 1] = at + 1;
    this.used[entry] = i;
  }

  /** Twice the slots; every entry but the one being inserted (placed by insert) moves to its new slot. */
  private rehash(pairs: number): void {
    const old = this.slots;
    const oldUsed = this.used.slice(0, this.entries - 1);
    this.slots = new Int32Array(2 * pairs);
    oldUsed.forEach((slot, entry) => this.place(entry, old[2 * slot]!, old[2 * slot + 1]! - 1));
  }
}

function grown(a: Int32Array): Int32Array {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}

function ensure(buf: Buffer, atLeast: number): Buffer {
  if (atLeast <= buf.length) return buf;
  let length = buf.length * 2;
  while (length < atLeast) length *= 2;
  const b = Buffer.alloc(length);
  buf.copy(b, 0, 0, buf.length);
  return b;
}
