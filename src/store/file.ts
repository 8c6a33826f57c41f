// The durable embedded store: an append-only journal, one line per acknowledged batch, each line carrying a
// CRC-32 so a torn or corrupt tail is recognised; fdatasync before a write is acknowledged, with concurrent
// writes sharing one sync (group commit); compaction into a snapshot written beside it and renamed into place.
//
//   <dir>/registry.snapshot   <crc32 hex> {"format":"homelab-discovery/snapshot","version":1,"seq":N,"count":C}\n
//                             then <crc32 hex> <entry JSON>\n per entry
//   <dir>/registry.journal    <crc32 hex> {"seq":N,"m":[mutations]}\n ...
//   <dir>/registry.lock       who has the store open: PID, boot id, start time (one writer per directory; lock.ts)
//
// Every line carries the CRC of what was written, and only validated entries are ever written, so loading
// checks the CRC and the shape, not the whole schema again (that took a third of a 100k-entry restart).
//
// Chosen over SQLite (better-sqlite3) on evidence: both are bound by the same fsync (measured here: ~350-870
// single-record and ~3-7k batched records per second each), and a journal needs no native module, which
// would have to be rebuilt for every Node version and CPU a homelab runs.
import { constants } from "node:fs";
import { crc32 as zlibCrc32 } from "node:zlib";
import { mkdir, open, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Logger } from "pino";
import { errnoOf, reasonText } from "../lib/errno.js";
import { parseJsonOrUndefined } from "../lib/json.js";
import { storedEntry, type ServiceEntry } from "../model/index.js";
import { eachLine } from "./lines.js";
import { DirLock } from "./lock.js";
import { StoreError, type Store, type StoreMutation } from "./types.js";

const SNAPSHOT = "registry.snapshot";
/** Where a compaction writes the snapshot before renaming it into place. */
const SNAPSHOT_TMP = `${SNAPSHOT}.tmp`;
const JOURNAL = "registry.journal";
const LOCK = "registry.lock";
const FORMAT = "homelab-discovery/snapshot";

export interface FileStoreOptions {
  dir: string;
  logger?: Logger;
  /** Compact when the journal is larger than this many bytes (and larger than the snapshot). */
  compactAfterBytes?: number;
}

interface Waiter {
  readonly line: string;
  resolve(): void;
  reject(err: Error): void;
}

/** Entries serialised between two turns of the event loop during a compaction (~10 ms of work). */
const COMPACT_CHUNK = 2_000;

export class FileStore implements Store {
  readonly kind = "file";
  private readonly entries = new Map<string, ServiceEntry>();
  private journal: FileHandle | undefined;
  private journalBytes = 0;
  private snapshotBytes = 0;
  private seq = 0;
  private queue: Waiter[] = [];
  private flushing: Promise<void> | undefined;
  private compacting = false;
  private failed: Error | undefined;
  /** One server per directory (lock.ts). */
  private readonly lock: DirLock;

  get failure(): Error | undefined {
    return this.failed;
  }

  constructor(private readonly opts: FileStoreOptions) {
    this.lock = new DirLock(join(opts.dir, LOCK), opts.logger);
  }

  get dir(): string {
    return this.opts.dir;
  }

  /** Journal records written and fdatasyncs done: with group commit, syncs < records under concurrency. */
  readonly counters = { records: 0, syncs: 0 };

  /** What the last load found, for the startup log. */
  loadReport = { snapshotEntries: 0, journalRecords: 0, droppedTailBytes: 0 };

  async load(): Promise<ServiceEntry[]> {
    await createDir(this.opts.dir);
    await this.lock.acquire(this.opts.dir);
    try {
      // A compaction that a crash cut short: the snapshot it was writing never replaced the real one.
      await rm(join(this.opts.dir, SNAPSHOT_TMP), { force: true });
      await this.readSnapshot();
      const keep = await this.replayJournal();
      this.journal = await open(join(this.opts.dir, JOURNAL), constants.O_RDWR | constants.O_CREAT);
      if (keep !== undefined) {
        // A torn tail: cut the journal back to its last whole record, durably, before appending after it.
        await this.journal.truncate(keep);
        await this.journal.datasync();
      }
      this.journalBytes = (await this.journal.stat()).size;
      await syncDir(this.opts.dir);
    } catch (err) {
      await this.journal?.close();
      this.journal = undefined;
      await this.lock.release();
      throw err;
    }
    return [...this.entries.values()];
  }

  apply(mutations: readonly StoreMutation[]): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.journal === undefined) return Promise.reject(new StoreError("the store is not open"));
    this.seq += 1;
    const line = `${withCrc(JSON.stringify({ seq: this.seq, m: mutations }))}\n`;
    // Memory follows the order of apply calls, which is the order of the lines in the journal.
    for (const m of mutations) {
      if (m.op === "put") this.entries.set(m.entry.id, m.entry);
      else this.entries.delete(m.id);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ line, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    await this.journal?.close();
    this.journal = undefined;
    await this.lock.release();
  }

  /** Writes every queued record in one write and one fdatasync, then acknowledges them all (group commit). */
  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        const data = Buffer.from(batch.map((w) => w.line).join(""));
        try {
          await writeAll(this.journal!, data, this.journalBytes);
          await this.journal!.datasync();
          this.journalBytes += data.length;
          this.counters.records += batch.length;
          this.counters.syncs += 1;
          for (const w of batch) w.resolve();
        } catch (err) {
          // Memory already holds these writes (and compaction would keep them): refuse every further write, with
          // this reason, until a restart reads the journal again.
          this.failed = new StoreError(`the journal could not be written: ${(err as Error).message}; restart the server once the cause is fixed`);
          for (const w of [...batch, ...this.queue]) w.reject(this.failed);
          this.queue = [];
          // Cut off whatever part of the batch reached the file, so the journal ends with the last acknowledged write.
          const cut = await this.journal!.truncate(this.journalBytes).then(() => this.journal!.datasync()).then(() => "done", (e: Error) => e.message);
          this.opts.logger?.error({ err, truncated: cut }, "store write failed; refusing further writes until a restart");
          return;
        }
      }
    } finally {
      this.flushing = undefined;
    }
    const limit = this.opts.compactAfterBytes ?? 4 * 1024 * 1024;
    if (!this.compacting && this.journalBytes > limit && this.journalBytes > this.snapshotBytes) void this.compact();
  }

  /**
   * Writes the whole state as a snapshot (temp file, fsync, rename, fsync dir), then empties the journal.
   * Writes wait meanwhile (they queue and go out in one group after). A crash in between leaves a snapshot
   * at seq N and a journal whose records up to N are skipped on load.
   */
  async compact(): Promise<void> {
    if (this.compacting || this.journal === undefined || this.failed) return;
    this.compacting = true;
    while (this.flushing) await this.flushing;
    const run = (async () => {
      // Entries are immutable, so this array is the state at `seq` whatever is applied meanwhile (those records
      // wait in the queue and go to the emptied journal after). Written in chunks, the event loop running between
      // them: serialised and written in one piece it stalled DNS and the API for ~480 ms per 100k entries.
      const seq = this.seq;
      const all = [...this.entries.values()];
      const tmp = join(this.opts.dir, SNAPSHOT_TMP);
      const file = await open(tmp, "w");
      let bytes = 0;
      try {
        const write = async (text: string) => {
          const buf = Buffer.from(text);
          await writeAll(file, buf, bytes);
          bytes += buf.length;
        };
        await write(`${withCrc(JSON.stringify({ format: FORMAT, version: 1, seq, count: all.length }))}\n`);
        for (let i = 0; i < all.length; i += COMPACT_CHUNK) {
          let text = "";
          for (const entry of all.slice(i, i + COMPACT_CHUNK)) text += `${withCrc(JSON.stringify(entry))}\n`;
          await write(text);
        }
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(tmp, join(this.opts.dir, SNAPSHOT));
      await syncDir(this.opts.dir);
      this.snapshotBytes = bytes;
      await this.journal!.truncate(0);
      await this.journal!.datasync();
      this.journalBytes = 0;
      this.opts.logger?.info({ entries: all.length, seq, bytes }, "store compacted");
    })();
    this.flushing = run.catch(async (err: unknown) => {
      await rm(join(this.opts.dir, SNAPSHOT_TMP), { force: true }).catch(() => undefined); // not left to fill the disk
      this.opts.logger?.error({ err }, "store compaction failed; the journal keeps growing and stays valid");
    });
    try {
      await this.flushing;
    } finally {
      this.compacting = false;
      this.flushing = this.queue.length > 0 ? this.flush() : undefined;
    }
  }

  private async readSnapshot(): Promise<void> {
    const path = join(this.opts.dir, SNAPSHOT);
    const file = await openToRead(path);
    if (file === undefined) return;
    // Read line by line (lines.ts); the checks are those of the whole file: a header that names the number of
    // entries that follow, then every entry whole. After the first fault the rest is only counted, so the
    // error says the same as when the file was checked in one piece.
    let header: { format?: string; version?: number; seq?: number; count?: number } | undefined;
    let lines = 0;
    let badLine: number | undefined;
    try {
      this.snapshotBytes = await eachLine(file, (line) => {
        lines += 1;
        if (lines === 1) {
          const body = checked(line);
          header = body === undefined ? undefined : (parseJsonOrUndefined(body) as typeof header);
          return;
        }
        if (badLine !== undefined || header?.format !== FORMAT) return;
        const body = checked(line);
        const entry = body === undefined ? undefined : storedEntry(parseJsonOrUndefined(body));
        if (entry === undefined) badLine = lines;
        else this.entries.set(entry.id, entry);
      });
    } catch (err) {
      throw new StoreError(`cannot read ${path}: ${(err as Error).message}`);
    } finally {
      await file.close();
    }
    if (header?.format !== FORMAT || header.version !== 1 || typeof header.seq !== "number" || header.count !== lines - 1) {
      // Snapshots are renamed into place whole, so a bad one is damage, not a crash: never start without it.
      throw new StoreError(`${path} is damaged (bad header or ${lines - 1} entries where the header says ${header?.count}); the server will not start without its data`);
    }
    if (badLine !== undefined) throw new StoreError(`${path}:${badLine}: not a valid service entry; the server will not start without its data`);
    this.seq = header.seq;
    this.loadReport.snapshotEntries = this.entries.size;
  }

  /** Replays the journal; returns the length to cut it back to when its tail is torn. */
  private async replayJournal(): Promise<number | undefined> {
    const path = join(this.opts.dir, JOURNAL);
    const file = await openToRead(path);
    if (file === undefined) return undefined;
    let records = 0;
    /** The first record that did not check, and where it starts: a torn tail only if nothing valid follows it. */
    let bad: { line: number; offset: number } | undefined;
    let length: number;
    try {
      length = await eachLine(file, (line, offset, terminated) => {
        // A record without its "\n" was cut short by a crash, whatever its bytes say.
        const record = terminated ? parseRecord(line) : undefined;
        if (bad !== undefined) {
          if (record !== undefined) throw new StoreError(`${path}:${bad.line}: a damaged record with valid records after it; the server will not start without its data`);
          return;
        }
        if (record === undefined) {
          bad = { line: records + 1, offset };
          return;
        }
        records += 1;
        if (record.seq > this.seq) {
          for (const m of record.m) {
            if (m.op === "put") this.entries.set(m.entry.id, m.entry);
            else this.entries.delete(m.id);
          }
          this.seq = record.seq;
          this.loadReport.journalRecords += 1;
        }
      });
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError(`cannot read ${path}: ${(err as Error).message}`);
    } finally {
      await file.close();
    }
    if (bad === undefined) return undefined;
    this.loadReport.droppedTailBytes = length - bad.offset;
    this.opts.logger?.warn({ file: path, keptRecords: records, droppedBytes: length - bad.offset }, "journal tail was torn (a crash while writing): recovered up to the last whole record");
    return bad.offset;
  }
}

/** The file open for reading, undefined when it does not exist. */
async function openToRead(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, "r");
  } catch (err) {
    if (errnoOf(err) === "ENOENT") return undefined;
    throw new StoreError(`cannot read ${path}: ${(err as Error).message}`);
  }
}

function withCrc(body: string): string {
  return `${crc32(body).toString(16).padStart(8, "0")} ${body}`;
}

/** The body of a "<crc> <body>" line, or undefined when the CRC does not match. */
function checked(line: string): string | undefined {
  if (line.length < 9 || line[8] !== " ") return undefined;
  const body = line.slice(9);
  return crc32(body).toString(16).padStart(8, "0") === line.slice(0, 8) ? body : undefined;
}

function parseRecord(line: string): { seq: number; m: StoreMutation[] } | undefined {
  const body = checked(line);
  if (body === undefined) return undefined;
  const data = parseJsonOrUndefined(body) as { seq?: unknown; m?: unknown } | undefined;
  if (typeof data?.seq !== "number" || !Array.isArray(data.m)) return undefined;
  const mutations: StoreMutation[] = [];
  for (const m of data.m as { op?: unknown; id?: unknown; entry?: unknown }[]) {
    if (m.op === "delete" && typeof m.id === "string") mutations.push({ op: "delete", id: m.id });
    else if (m.op === "put") {
      const entry = storedEntry(m.entry);
      if (entry === undefined) return undefined;
      mutations.push({ op: "put", entry });
    } else return undefined;
  }
  return { seq: data.seq, m: mutations };
}

/**
 * Writes all of `buf` at `position`: a write may take only part (a disk that fills up), and what it did not take
 * must not count as written. The next write after a short one reports why (ENOSPC).
 */
async function writeAll(file: FileHandle, buf: Buffer, position: number): Promise<void> {
  for (let done = 0; done < buf.length; ) {
    const { bytesWritten } = await file.write(buf, done, buf.length - done, position + done);
    if (bytesWritten === 0) throw new StoreError(`wrote 0 of ${buf.length - done} bytes`);
    done += bytesWritten;
  }
}

/**
 * Creates the data directory and its missing parents, or says why not. Not mkdir's { recursive: true }: Node's
 * reports a read-only file system as ENOENT (it stats the path after EROFS and reports the stat's error), and it
 * never returns on a directory of /proc (mkdir ENOENT there, the parent exists, so it tries again forever).
 */
async function createDir(dir: string): Promise<void> {
  const make = async (path: string): Promise<void> => {
    try {
      await mkdir(path);
      return;
    } catch (err) {
      const code = errnoOf(err);
      if (code === "EEXIST") {
        if ((await stat(path)).isDirectory()) return;
        throw Object.assign(new Error(`${path} exists and is not a directory`), { path });
      }
      if (code !== "ENOENT" || dirname(path) === path) throw err;
    }
    await make(dirname(path));
    // Once: the parent is there now, so whatever this says is the reason.
    await mkdir(path).catch(async (err: unknown) => {
      if (errnoOf(err) !== "EEXIST" || !(await stat(path)).isDirectory()) throw err;
    });
  };
  try {
    await make(dir);
  } catch (err) {
    const at = (err as { path?: unknown }).path;
    const where = typeof at === "string" && at !== dir ? ` (at ${at})` : "";
    throw new StoreError(`cannot create data directory ${dir}: ${reasonText(err)}${where}`);
  }
}

/** fsync a directory so a file created or renamed in it survives a power cut. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** CRC-32 (IEEE) of a string's UTF-8 bytes. */
export function crc32(text: string): number {
  return zlibCrc32(text);
}

export async function removeStore(dir: string): Promise<void> {
  await rm(join(dir, JOURNAL), { force: true });
  await rm(join(dir, SNAPSHOT), { force: true });
}
