// The encoded-answer cache of DnsServer.respond, in flat memory: an open-addressing table of Int32 slots, and
// the question keys and answers packed into growing Buffers. A lookup compares the question where it sits in the
// query packet (ASCII letters folded to lowercase) with the stored key, then copies the answer out: no string is
// made and no object is visited per query, so a query touches a slot, one entry's fields, its key and its answer
// bytes. Between real packets the CPU caches are cold, and the Map of objects this replaces (a key string per
// query, then the map's table, the stored key, an entry object, its variants array, a Buffer object and its
// bytes) cost more in cache misses than in instructions: see BENCHMARKS.md section 3 for what this changed.

/** FNV-1a, the hash parseQuery computes over the folded question (see wire.ts). */
export const HASH_SEED = 0x811c9dc5 | 0;
export function hashByte(hash: number, byte: number): number {
  return Math.imul(hash ^ byte, 16777619);
}

// Per entry in `meta`: the hash, the EDNS state, the slot it sits in, where its key and variants are, the next
// variant to send (A and AAAA answers rotate), and whether the name is outside our zones (forwardable).
const HASH = 0;
const STATE = 1;
const SLOT = 2;
const KEY_AT = 3;
const KEY_LENGTH = 4;
const FIRST_VARIANT = 5;
const VARIANTS = 6;
const NEXT = 7;
const OUTSIDE = 8;
const FIELDS = 9;

export class AnswerTable {
  private slots: Int32Array = new Int32Array(1024);
  private meta: Int32Array = new Int32Array(512 * FIELDS);
  private keys: Buffer = Buffer.alloc(16 * 1024);
  private keysUsed = 0;
  private data: Buffer = Buffer.alloc(64 * 1024);
  private dataUsed = 0;
  /** Where each variant's bytes are in `data`: offset, length. */
  private variantAt: Int32Array = new Int32Array(1024);
  private variantsUsed = 0;
  private entries = 0;

  get size(): number {
    return this.entries;
  }

  /**
   * The entry for this question (packet bytes 12..questionEnd: name, type, class) in this EDNS state, or -1.
   * `hash` is parseQuery's hash of the same bytes, letters folded.
   */
  find(packet: Buffer, questionEnd: number, hash: number, state: number): number {
    const mask = this.slots.length - 1;
    const length = questionEnd - 12;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const slot = this.slots[i]!;
      if (slot === 0) return -1;
      const m = (slot - 1) * FIELDS;
      if (this.meta[m + HASH] !== hash || this.meta[m + STATE] !== state || this.meta[m + KEY_LENGTH] !== length) continue;
      if (this.sameKey(packet, this.meta[m + KEY_AT]!, length)) return slot - 1;
    }
  }

  /** Adds an entry (the caller found none) and returns it. */
  insert(packet: Buffer, questionEnd: number, hash: number, state: number, variants: readonly Buffer[], outside: boolean): number {
    const entry = this.entries++;
    if ((entry + 1) * FIELDS > this.meta.length) this.meta = grown(this.meta, (entry + 1) * FIELDS);
    if (this.entries * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    const length = questionEnd - 12;
    this.keys = ensure(this.keys, this.keysUsed + length);
    const keyAt = this.keysUsed;
    const nameLength = length - 4; // the type and class bytes are never folded
    for (let i = 0; i < length; i++) this.keys[keyAt + i] = i < nameLength ? fold(packet[12 + i]!) : packet[12 + i]!;
    this.keysUsed += length;
    if (this.variantsUsed + variants.length * 2 > this.variantAt.length) this.variantAt = grown(this.variantAt, this.variantsUsed + variants.length * 2);
    const first = this.variantsUsed;
    for (const v of variants) {
      this.data = ensure(this.data, this.dataUsed + v.length);
      v.copy(this.data, this.dataUsed);
      this.variantAt[this.variantsUsed++] = this.dataUsed;
      this.variantAt[this.variantsUsed++] = v.length;
      this.dataUsed += v.length;
    }
    const m = entry * FIELDS;
    this.meta[m + HASH] = hash;
    this.meta[m + STATE] = state;
    this.meta[m + KEY_AT] = keyAt;
    this.meta[m + KEY_LENGTH] = length;
    this.meta[m + FIRST_VARIANT] = first;
    this.meta[m + VARIANTS] = variants.length;
    this.meta[m + NEXT] = 0;
    this.meta[m + OUTSIDE] = outside ? 1 : 0;
    this.place(entry);
    return entry;
  }

  outside(entry: number): boolean {
    return this.meta[entry * FIELDS + OUTSIDE] === 1;
  }

  /** A copy of the entry's next variant, to patch and send; the rotation moves on. */
  next(entry: number): Buffer {
    const m = entry * FIELDS;
    const k = this.meta[m + NEXT]!;
    this.meta[m + NEXT] = k + 1 === this.meta[m + VARIANTS] ? 0 : k + 1;
    const v = this.meta[m + FIRST_VARIANT]! + 2 * k;
    const at = this.variantAt[v]!;
    const length = this.variantAt[v + 1]!;
    const out = Buffer.allocUnsafe(length);
    this.data.copy(out, 0, at, at + length);
    return out;
  }

  /** Empties the table; the memory stays for what is cached next. Costs what it held, not its capacity. */
  clear(): void {
    for (let e = 0; e < this.entries; e++) this.slots[this.meta[e * FIELDS + SLOT]!] = 0;
    this.entries = 0;
    this.keysUsed = 0;
    this.dataUsed = 0;
    this.variantsUsed = 0;
  }

  private sameKey(packet: Buffer, keyAt: number, length: number): boolean {
    const keys = this.keys;
    const nameLength = length - 4;
    for (let i = 0; i < nameLength; i++) if (fold(packet[12 + i]!) !== keys[keyAt + i]) return false;
    for (let i = nameLength; i < length; i++) if (packet[12 + i] !== keys[keyAt + i]) return false;
    return true;
  }

  private place(entry: number): void {
    const mask = this.slots.length - 1;
    let i = this.meta[entry * FIELDS + HASH]! & mask;
    while (this.slots[i] !== 0) i = (i + 1) & mask;
    this.slots[i] = entry + 1;
    this.meta[entry * FIELDS + SLOT] = i;
  }

  private rehash(capacity: number): void {
    this.slots = new Int32Array(capacity);
    // The entry being inserted is placed by insert() itself.
    for (let e = 0; e < this.entries - 1; e++) this.place(e);
  }
}

/** ASCII uppercase to lowercase, every other byte as it is: DNS's case folding of names (RFC 4343). */
export function fold(byte: number): number {
  return byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte;
}

function grown(a: Int32Array, atLeast: number): Int32Array {
  let length = a.length * 2;
  while (length < atLeast) length *= 2;
  const b = new Int32Array(length);
  b.set(a);
  return b;
}

function ensure(buf: Buffer, atLeast: number): Buffer {
  if (atLeast <= buf.length) return buf;
  let length = buf.length * 2;
  while (length < atLeast) length *= 2;
  const b = Buffer.alloc(length);
  buf.copy(b);
  return b;
}
