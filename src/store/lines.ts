// Reads a file line by line in chunks, as bytes: a snapshot or journal may be larger than V8's longest string
// (~512 MiB), so neither is ever read or decoded whole (a 654 MB snapshot failed with "Invalid string length").
import type { FileHandle } from "node:fs/promises";

/**
 * Called once per line with its bytes (without the "\n"; a "\r" before it is kept), the line's byte offset in
 * the file, and whether a "\n" ended it (false only for a last line the file ends inside: a torn tail).
 */
export type OnLine = (line: Buffer, offset: number, terminated: boolean) => void;

/** Splits chunks on "\n" and hands over whole lines, a line cut across chunks joined once it is complete. */
export class LineSplitter {
  private pieces: Buffer[] = [];
  private offset = 0;

  constructor(private readonly onLine: OnLine) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      let line = chunk.subarray(start, nl);
      if (this.pieces.length > 0) {
        line = Buffer.concat([...this.pieces, line]);
        this.pieces = [];
      }
      this.onLine(line, this.offset, true);
      this.offset += line.length + 1;
      start = nl + 1;
    }
    if (start < chunk.length) this.pieces.push(chunk.subarray(start));
  }

  /** The end of the file: what follows the last "\n", if anything, is a line without its end. */
  end(): void {
    if (this.pieces.length === 0) return;
    const line = Buffer.concat(this.pieces);
    this.pieces = [];
    this.onLine(line, this.offset, false);
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
