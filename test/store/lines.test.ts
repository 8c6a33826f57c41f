// The line splitter under the store's reads: the same lines, offsets and torn tail wherever the chunks are cut.
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { eachLine, LineSplitter } from "../../src/store/lines.js";

interface Seen {
  text: string;
  offset: number;
  terminated: boolean;
}

/** What the store's old whole-file read made of the bytes: split on "\n", a last piece without one torn. */
function reference(bytes: Buffer): Seen[] {
  const out: Seen[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const nl = bytes.indexOf(0x0a, offset);
    const end = nl === -1 ? bytes.length : nl;
    out.push({ text: bytes.toString("utf8", offset, end), offset, terminated: nl !== -1 });
    offset = end + 1;
  }
  return out;
}

function split(chunks: Buffer[]): Seen[] {
  const seen: Seen[] = [];
  const splitter = new LineSplitter((line, offset, terminated) => seen.push({ text: line, offset, terminated }));
  for (const chunk of chunks) splitter.push(chunk);
  splitter.end();
  return seen;
}

/** The bytes cut at the given positions (sorted, may repeat: empty chunks too). */
function cut(bytes: Buffer, at: number[]): Buffer[] {
  const points = [0, ...at.map((p) => p % (bytes.length + 1)).sort((a, b) => a - b), bytes.length];
  return points.slice(1).map((end, i) => bytes.subarray(points[i], end));
}

describe("LineSplitter", () => {
  it("gives each line once with its offset, whether a chunk ends before, on or after a newline", () => {
    const bytes = Buffer.from("ab\ncd\n\nef");
    for (let a = 0; a <= bytes.length; a++) {
      for (let b = a; b <= bytes.length; b++) {
        expect(split(cut(bytes, [a, b]))).toEqual([
          { text: "ab", offset: 0, terminated: true },
          { text: "cd", offset: 3, terminated: true },
          { text: "", offset: 6, terminated: true },
          { text: "ef", offset: 7, terminated: false },
        ]);
      }
    }
  });

  it("treats a last line without newline as torn, and a file ending in a newline as having none", () => {
    expect(split([Buffer.from("a\nb")])).toEqual([
      { text: "a", offset: 0, terminated: true },
      { text: "b", offset: 2, terminated: false },
    ]);
    expect(split([Buffer.from("a\n")])).toEqual([{ text: "a", offset: 0, terminated: true }]);
    expect(split([Buffer.from("\n")])).toEqual([{ text: "", offset: 0, terminated: true }]);
  });

  it("gives nothing for an empty file, or for empty chunks", () => {
    expect(split([])).toEqual([]);
    expect(split([Buffer.alloc(0), Buffer.alloc(0)])).toEqual([]);
  });

  it("keeps a carriage return: CRLF is not a line end of its own", () => {
    expect(split([Buffer.from("a\r"), Buffer.from("\nb\rc\n\r")])).toEqual([
      { text: "a\r", offset: 0, terminated: true },
      { text: "b\rc", offset: 3, terminated: true },
      { text: "\r", offset: 7, terminated: false },
    ]);
  });

  it("joins a line cut across many chunks, and a multi-byte character cut in two", () => {
    const line = "é".repeat(1000);
    const bytes = Buffer.from(`${line}\nx`);
    const seen: string[] = [];
    const splitter = new LineSplitter((l) => seen.push(l));
    for (let i = 0; i < bytes.length; i += 7) splitter.push(bytes.subarray(i, i + 7));
    splitter.end();
    expect(seen).toEqual([line, "x"]);
  });

  it("agrees with splitting the whole file at once, for any bytes cut anywhere (property)", () => {
    const byte = fc.constantFrom(0x0a, 0x0d, 0x61, 0x62, 0xc3, 0xa9);
    fc.assert(
      fc.property(fc.array(byte, { maxLength: 64 }), fc.array(fc.nat(), { maxLength: 8 }), (raw, at) => {
        const bytes = Buffer.from(raw);
        expect(split(cut(bytes, at))).toEqual(reference(bytes));
      }),
    );
  });
});

describe("eachLine", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "hd-lines-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function read(content: string | Buffer, chunkBytes: number): Promise<{ seen: Seen[]; length: number }> {
    const path = join(dir, "f");
    await writeFile(path, content);
    const file = await open(path, "r");
    try {
      const seen: Seen[] = [];
      const length = await eachLine(file, (line, offset, terminated) => seen.push({ text: line, offset, terminated }), chunkBytes);
      return { seen, length };
    } finally {
      await file.close();
    }
  }

  it("reads a file in chunks smaller than its lines and returns its length", async () => {
    const content = `${"a".repeat(10)}\n${"b".repeat(25)}\n\nc`;
    for (const chunk of [1, 3, 10, 11, 64]) {
      const { seen, length } = await read(content, chunk);
      expect(seen.map((s) => [s.text, s.offset, s.terminated])).toEqual([
        ["a".repeat(10), 0, true],
        ["b".repeat(25), 11, true],
        ["", 37, true],
        ["c", 38, false],
      ]);
      expect(length).toBe(Buffer.byteLength(content));
    }
  });

  it("reads an empty file as no lines", async () => {
    expect(await read("", 16)).toEqual({ seen: [], length: 0 });
  });
});
