// Reads a file line by line in chunks, as bytes: a snapshot or journal may be larger than V8's longest string
// (~512 MiB), so neither is ever read or decoded whole (a 654 MB snapshot failed with "Invalid string length").
import type { FileHandle } from "node:fs/promises";

/**
 * Called once per line with its text (without the "\n"; a "\r" before it is kept), the line's byte offset in
 * the file, and whether a "\n" ended it (false only for a last line the file ends inside: a torn tail).
 */
export type OnLine = (line: string, offset: number, terminated: boolean) => void;

/**
 * Splits chunks on "\n" and hands over whole lines, a line cut across chunks joined once it is complete. Each
 * chunk is decoded in one piece up to its last "\n" (a byte never inside a UTF-8 sequence) and split as a string:
 * ~10% faster on a 100k-entry load than decoding line by line.
 */
export class LineSplitter {
  private pieces: Buffer[] = [];
  private offset = 0;

  constructor(private readonly onLine: OnLine) {}

  push(chunk: Buffer): void {
    let last = chunk.lastIndexOf(0x0a);
    if (last === -1) {
      if (chunk.length > 0) this.pieces.push(chunk);
      return;
    }
    if (this.pieces.length > 0) {
      last += this.pieces.reduce((n, p) => n + p.length, 0);
      chunk = Buffer.concat([...this.pieces, chunk]);
      this.pieces = [];
    }
    const text = chunk.toString("utf8", 0, last);
    // Offsets are counted in the bytes (a line's characters are not its bytes once it holds other than ASCII).
    let byteStart = 0;
    for (let start = 0; start <= text.length; ) {
      let nl = text.indexOf("\n", start);
      if (nl === -1) nl = text.length;
      const byteEnd = chunk.indexOf(0x0a, byteStart);
      this.onLine(text.slice(start, nl), this.offset + byteStart, true);
      byteStart = byteEnd + 1;
      start = nl + 1;
    }
    this.offset += last + 1;
    if (last + 1 < chunk.length) this.pieces.push(chunk.subarray(last + 1));
  }

  /** The end of the file: what follows the last "\n", if anything, is a line without its end. */
  end(): void {
    if (this.pieces.length === 0) return;
    const line = Buffer.concat(this.pieces);
    this.pieces = [];
    this.onLine(line.toString("utf8"), this.offset, false);
    this.offset += line.length;
  }
}

/** 1 MiB: big enough that a read costs little per line, small enough that memory does not follow the file. */
const CHUNK_BYTES = 1 << 20;

/** Calls onLine for every line of the file from its start; returns the bytes read (the file's length). */
export async function eachLine(file: FileHandle, onLine: OnLine, chunkBytes = CHUNK_BYTES): Promise<number> {
  const splitter = new LineSplitter(onLine);
  let position = 0;
  for (;;) {
    // A fresh buffer each time: the previous one may still be referenced by a partial line.
    const buf = Buffer.allocUnsafe(chunkBytes);
    const { bytesRead } = await file.read(buf, 0, chunkBytes, position);
    if (bytesRead === 0) break;
    position += bytesRead;
    splitter.push(buf.subarray(0, bytesRead));
  }
  splitter.end();
  return position;
}
