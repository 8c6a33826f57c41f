// The encoded-answer cache of DnsServer.respond, in flat memory: an open-addressing table of Int32 slots (hash,
// record) over one growing Buffer of records, each holding a question's key and its answers side by side. A
// lookup compares the question where it sits in the query packet (the name's letters folded to lowercase) with
// the record's key, then copies the answer that follows it: no string is made and no object is visited per
// query, so a query touches one slot and one record. Between real packets the CPU caches are cold, and the Map of
// objects this replaces (a key string per query, then the map's table, the stored key, an entry object, its
// variants array, a Buffer object and its bytes) cost more in cache misses than in instructions: see
// BENCHMARKS.md section 3 for what this changed.
//
// Each entry may depend on one key (dependencies.ts): invalidate(key) drops the entries under it and leaves the
// rest, so a registry change costs the answers it can affect, not the whole table. The index is kept off the hit
// path: a lookup reads the slots and the record as before, and only insert and invalidate touch the index. A
// dropped record's bytes stay in the buffer until insert compacts it (over 1 MB of them, and half the buffer).

import { fold, u16 } from "./wire.js";

// A record: EDNS state, outside-the-zone flag, variant count, next turn (A and AAAA answers rotate), the key's
// length (2 bytes), the question's hash and the record's size (4 bytes each: removal finds the slot, and counts
// what it leaves behind), the order's length, whether it was sent since it was built (invalidate reports those:
// DnsServer builds them again at the change), the key (name in wire form, letters folded; type; class), the order
// (a variant's index per turn; none: each variant in turn), then each variant as a 2-byte length and its bytes.
// A routed split (answer.ts) cycles 100 turns over a few distinct answers: stored once each, with their order.
const STATE = 0;
const OUTSIDE = 1;
const VARIANTS = 2;
const NEXT = 3;
const KEY_LENGTH = 4;
const HASH = 6;
const SIZE = 10;
const ORDER_LENGTH = 14;
const SENT = 15;
const KEY = 16;

const INITIAL_RECORD_BYTES = 64 * 1024;
/** clear() lets a record buffer larger than this go (a burst of big answers), and starts again small. */
const KEEP_RECORD_BYTES = 4 * 1024 * 1024;
/** Records dropped by invalidate() stay in the buffer; past this much (and half the buffer), insert compacts it. */
const MAX_DEAD_BYTES = 1024 * 1024;
/** clear() zeroes the slots written since the last clear when there were at most this many, else all of them. */
const LOGGED_SLOTS = 64;
/** A small clear() keeps the dependency index's keys (with empty lists) while it holds at most this many. */
const KEPT_KEYS = 4096;
/** What a slot of AnswerTable.listed holds once cleared (no list kept alive by it). */
const NO_LIST: number[] = [];

/** A question whose answer invalidate() dropped: its key (the question as cached: name folded, type, class) and EDNS state. */
export interface DroppedQuestion {
  question: Buffer;
  state: number;
}

export class AnswerTable {
  /** Pairs per slot: the question's hash, and its record's offset + 1 (0: empty). */
  private slots: Int32Array = new Int32Array(2 * 1024);
  private entries = 0;
  private records: Buffer = Buffer.alloc(INITIAL_RECORD_BYTES);
  private recordsUsed = 0;
  /** Bytes of records removed by invalidate(), still in the buffer. */
  private deadBytes = 0;
  /** The entries (record offsets) under each dependency key. Every entry has one key at most, so a list holds only
   * live entries: it goes when its key is invalidated, and with everything on clear(). */
  private readonly dependents = new Map<string, number[]>();
  /** The slots place() wrote since the last clear() or rehash, while there are LOGGED_SLOTS or fewer: clearing a
   * table that held a few entries (a bench emptying it per query, a small registry) zeroes those, not a memset of
   * every slot (64 KB of them at 3,000 answers, and the CPU caches it evicts). */
  private readonly written = new Int32Array(LOGGED_SLOTS);
  /** How many slots place() wrote since; past LOGGED_SLOTS the log is incomplete and clear() zeroes them all. */
  private writes = 0;
  /** The dependency lists insert() added to since the last clear, while there are LOGGED_SLOTS or fewer: a small
   * clear() empties them and keeps their keys, up to KEPT_KEYS of them (V8's Map.clear allocates a new table). */
  private readonly listed: number[][] = new Array<number[]>(LOGGED_SLOTS);
  /** How many of `listed` are set (a count, not the array's length: emptying an array frees its backing store). */
  private lists = 0;

  constructor(private readonly maxDeadBytes = MAX_DEAD_BYTES) {}

  get size(): number {
    return this.entries;
  }

  /** The memory the table holds, bytes: its records' buffer, its slots, and about 8 bytes an entry of index. */
  get bytes(): number {
    return this.records.length + this.slots.byteLength + 8 * this.entries;
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

  /**
   * Adds an entry (the caller found none) and returns it. `key`: what it depends on (dependencies.ts), undefined
   * for an answer only clear() drops. `order`: which variant each turn sends (indices into variants), when not
   * each in turn.
   */
  insert(packet: Buffer, questionEnd: number, hash: number, state: number, variants: readonly Buffer[], outside: boolean, key?: string, order?: readonly number[]): number {
    if (variants.length > 255) throw new RangeError("at most 255 variants");
    if (order !== undefined && (order.length > 255 || order.some((i) => i >= variants.length))) throw new RangeError("an order is at most 255 turns of the variants given");
    let body = 0;
    for (const v of variants) body += 2 + v.length;
    const at = this.open(packet, questionEnd, hash, state, variants.length, outside, order, body);
    const r = this.records;
    let p = at + KEY + (questionEnd - 12) + (order?.length ?? 0);
    for (const v of variants) {
      r[p] = v.length >> 8;
      r[p + 1] = v.length & 0xff;
      v.copy(r, p + 2);
      p += 2 + v.length;
    }
    return this.close(hash, at, key);
  }

  /**
   * insert() of the rotations of one message, written here rather than built first: rotation `shift` holds the
   * bytes before starts[0], the records between starts[i] and starts[i + 1] from i = shift on and then those
   * before it, and the bytes from starts[n] on (encode.ts, rotatable). An uncached A or AAAA answer costs one
   * encoding and no buffer per rotation.
   */
  insertRotations(packet: Buffer, questionEnd: number, hash: number, state: number, message: Buffer, starts: readonly number[], shifts: readonly number[], key?: string): number {
    if (shifts.length > 255) throw new RangeError("at most 255 variants");
    const length = message.length;
    const at = this.open(packet, questionEnd, hash, state, shifts.length, false, undefined, shifts.length * (2 + length));
    const r = this.records;
    const n = starts.length - 1;
    const head = starts[0]!;
    const tail = starts[n]!;
    let p = at + KEY + (questionEnd - 12);
    // Byte loops: the pieces are a few dozen bytes, and a copy of part of a Buffer makes a view of it first.
    for (const shift of shifts) {
      r[p++] = length >> 8;
      r[p++] = length & 0xff;
      for (let i = 0; i < head; i++) r[p++] = message[i]!;
      for (let k = 0; k < n; k++) {
        const j = shift + k < n ? shift + k : shift + k - n;
        for (let i = starts[j]!, end = starts[j + 1]!; i < end; i++) r[p++] = message[i]!;
      }
      for (let i = tail; i < length; i++) r[p++] = message[i]!;
    }
    return this.close(hash, at, key);
  }

  /** The record's head and key, room for `body` bytes of variants after them (the caller writes those); its offset. */
  private open(packet: Buffer, questionEnd: number, hash: number, state: number, variants: number, outside: boolean, order: readonly number[] | undefined, body: number): number {
    if (this.deadBytes > this.maxDeadBytes && this.deadBytes * 2 > this.recordsUsed) this.compact();
    const length = questionEnd - 12;
    const turns = order?.length ?? 0;
    const size = KEY + length + turns + body;
    this.records = ensure(this.records, this.recordsUsed + size);
    const r = this.records;
    const at = this.recordsUsed;
    r[at + STATE] = state;
    r[at + OUTSIDE] = outside ? 1 : 0;
    r[at + VARIANTS] = variants;
    r[at + NEXT] = 0;
    r[at + KEY_LENGTH] = length >> 8;
    r[at + KEY_LENGTH + 1] = length & 0xff;
    r.writeInt32BE(hash, at + HASH);
    r.writeUInt32BE(size, at + SIZE);
    r[at + ORDER_LENGTH] = turns;
    r[at + SENT] = 0;
    const nameLength = length - 4; // the type and class bytes are never folded
    for (let i = 0; i < length; i++) r[at + KEY + i] = i < nameLength ? fold(packet[12 + i]!) : packet[12 + i]!;
    let p = at + KEY + length;
    for (let i = 0; i < turns; i++) r[p++] = order![i]!;
    this.recordsUsed += size;
    return at;
  }

  /** The record at `at` (open() wrote it) into the slots and under its key. */
  private close(hash: number, at: number, key: string | undefined): number {
    this.entries += 1;
    if (this.entries * 2 > this.slots.length >> 1) this.rehash(this.slots.length);
    this.place(hash, at);
    if (key !== undefined) {
      let list = this.dependents.get(key);
      if (list === undefined) this.dependents.set(key, (list = [at]));
      else list.push(at);
      if (this.lists < LOGGED_SLOTS) this.listed[this.lists++] = list;
    }
    return at;
  }

  /**
   * Drops every entry that depends on this key; returns how many. With `sent`, the questions of those that were
   * sent since they were built go there (their key bytes, copied, and EDNS state), so they can be built again.
   */
  invalidate(key: string, sent?: DroppedQuestion[]): number {
    const list = this.dependents.get(key);
    if (list === undefined) return 0;
    this.dependents.delete(key);
    const r = this.records;
    for (const at of list) {
      if (sent !== undefined && r[at + SENT] === 1) sent.push({ question: Buffer.from(r.subarray(at + KEY, at + KEY + u16(r, at + KEY_LENGTH))), state: r[at + STATE]! });
      this.remove(at);
    }
    return list.length;
  }

  /** Frees the entry's slot, shifting back the entries that probed past it, so find() needs no tombstones. */
  private remove(at: number): void {
    const slots = this.slots;
    const mask = (slots.length >> 1) - 1;
    let i = this.records.readInt32BE(at + HASH) & mask;
    while (slots[2 * i + 1] !== at + 1) {
      if (slots[2 * i + 1] === 0) return; // not in the table (cannot happen: the index lists live entries only)
      i = (i + 1) & mask;
    }
    for (let j = (i + 1) & mask; slots[2 * j + 1] !== 0; j = (j + 1) & mask) {
      // The entry at j may fill the hole at i when i lies between its home slot and j (cyclically).
      if (((j - (slots[2 * j]! & mask)) & mask) >= ((j - i) & mask)) {
        slots[2 * i] = slots[2 * j]!;
        slots[2 * i + 1] = slots[2 * j + 1]!;
        i = j;
      }
    }
    slots[2 * i] = 0;
    slots[2 * i + 1] = 0;
    this.entries -= 1;
    this.deadBytes += this.records.readUInt32BE(at + SIZE);
  }

  outside(entry: number): boolean {
    return this.records[entry + OUTSIDE] === 1;
  }

  /** A copy of the entry's next variant, to patch and send; the rotation moves on. */
  next(entry: number): Buffer {
    const r = this.records;
    const turn = r[entry + NEXT]!;
    const turns = r[entry + ORDER_LENGTH]!;
    r[entry + NEXT] = turn + 1 === (turns === 0 ? r[entry + VARIANTS] : turns) ? 0 : turn + 1;
    r[entry + SENT] = 1;
    let p = entry + KEY + u16(r, entry + KEY_LENGTH);
    const k = turns === 0 ? turn : r[p + turn]!;
    p += turns;
    for (let j = 0; j < k; j++) p += 2 + u16(r, p);
    const length = u16(r, p);
    const out = Buffer.allocUnsafe(length);
    r.copy(out, 0, p + 2, p + 2 + length);
    return out;
  }

  /** Empties the table; the memory stays for what is cached next, up to KEEP_RECORD_BYTES of records. */
  clear(): void {
    // Every occupied slot was written by place() since the last clear (removal only moves entries into slots
    // that were occupied), so when the log is complete, zeroing what it names empties the table.
    const small = this.writes <= LOGGED_SLOTS;
    if (small) {
      for (let k = 0; k < this.writes; k++) {
        const i = this.written[k]!;
        this.slots[2 * i] = 0;
        this.slots[2 * i + 1] = 0;
      }
    } else {
      this.slots.fill(0); // a memset: a full clear is rare (zone reloads, a full table, big batches of changes)
    }
    // Every list holding an entry was added to since the last clear (invalidate deletes the lists it empties).
    if (small && this.dependents.size <= KEPT_KEYS) {
      for (let k = 0; k < this.lists; k++) this.listed[k]!.length = 0;
    } else if (this.dependents.size > 0) {
      this.dependents.clear();
    }
    this.listed.fill(NO_LIST, 0, this.lists);
    this.lists = 0;
    this.writes = 0;
    this.entries = 0;
    this.recordsUsed = 0;
    this.deadBytes = 0;
    if (this.records.length > KEEP_RECORD_BYTES) this.records = Buffer.alloc(INITIAL_RECORD_BYTES);
  }

  /**
   * Moves the live records to a new buffer, end to end, leaving the dropped ones behind; slots and index follow.
   * Entries (record offsets) change: callers hold one only between a find or insert and its next().
   */
  private compact(): void {
    const old = this.records;
    const live = this.recordsUsed - this.deadBytes;
    let length = INITIAL_RECORD_BYTES;
    while (length < 2 * live) length *= 2;
    const fresh = Buffer.alloc(length);
    const moved = new Map<number, number>();
    const slots = this.slots;
    let p = 0;
    for (let i = 1; i < slots.length; i += 2) {
      if (slots[i] === 0) continue;
      const at = slots[i]! - 1;
      const size = old.readUInt32BE(at + SIZE);
      old.copy(fresh, p, at, at + size);
      moved.set(at, p);
      slots[i] = p + 1;
      p += size;
    }
    for (const list of this.dependents.values()) for (let j = 0; j < list.length; j++) list[j] = moved.get(list[j]!)!;
    this.records = fresh;
    this.recordsUsed = p;
    this.deadBytes = 0;
  }

  private sameKey(packet: Buffer, keyAt: number, length: number): boolean {
    const r = this.records;
    const nameLength = length - 4;
    for (let i = 0; i < nameLength; i++) if (fold(packet[12 + i]!) !== r[keyAt + i]) return false;
    for (let i = nameLength; i < length; i++) if (packet[12 + i] !== r[keyAt + i]) return false;
    return true;
  }

  private place(hash: number, at: number): void {
    const mask = (this.slots.length >> 1) - 1;
    let i = hash & mask;
    while (this.slots[2 * i + 1] !== 0) i = (i + 1) & mask;
    this.slots[2 * i] = hash;
    this.slots[2 * i + 1] = at + 1;
    if (this.writes < LOGGED_SLOTS) this.written[this.writes] = i;
    if (this.writes <= LOGGED_SLOTS) this.writes += 1; // stops one past: "incomplete"
  }

  /** Twice the slots; every entry already in the table moves to its new slot (insert places the new one). */
  private rehash(pairs: number): void {
    const old = this.slots;
    this.slots = new Int32Array(2 * pairs);
    this.writes = 0; // a new array: only what is placed in it from here on is occupied
    for (let i = 0; i < old.length; i += 2) if (old[i + 1] !== 0) this.place(old[i]!, old[i + 1]! - 1);
  }
}

function ensure(buf: Buffer, atLeast: number): Buffer {
  if (atLeast <= buf.length) return buf;
  let length = buf.length * 2;
  while (length < atLeast) length *= 2;
  const b = Buffer.alloc(length);
  buf.copy(b, 0, 0, buf.length);
  return b;
}
