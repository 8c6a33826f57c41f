// The journal store on a real disk: reload, group commit, torn tails, damage, compaction.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { appendFile, chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { serviceEntrySchema, type ServiceEntry } from "../../src/model/schema.js";
import { FileStore, StoreError } from "../../src/store/index.js";
import { formatOwner, ownerOf } from "../../src/store/lock.js";

let dir: string;
/** Every store a test opened: closed after it even when an assertion fails first (no journal handle left to GC). */
const opened: FileStore[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "hd-store-"));
});
afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
  await rm(dir, { recursive: true, force: true });
});

const entry = (id: string, port = 80): ServiceEntry => ({
  id,
  name: "web",
  version: "1.0.0",
  nodeId: "n1",
  address: "10.0.0.1",
  port,
  healthStatus: "healthy",
  metadata: { team: "a" },
  tags: ["prod"],
  registeredAt: "2026-01-01T00:00:00.000Z",
  lastHealthCheck: null,
  healthCheckInterval: 30_000,
});

async function open(opts: { compactAfterBytes?: number } = {}) {
  const store = new FileStore({ dir, ...opts });
  opened.push(store);
  const loaded = await store.load();
  return { store, loaded };
}
const ids = (entries: ServiceEntry[]) => entries.map((e) => `${e.id}:${e.port}`).sort();

describe("the file store", () => {
  it("is one process's at a time: a second store on the directory is refused, a dead owner's lock taken over", async () => {
    const { store } = await open();
    await expect(open()).rejects.toThrow(/already open in this process/);
    await store.close();
    // Another live process holds it (its PID in the lock file), then that process is gone.
    const other = spawn("sleep", ["30"]);
    await writeFile(join(dir, "registry.lock"), `${other.pid}\n`);
    await expect(open()).rejects.toThrow(new RegExp(`is in use by process ${other.pid}`));
    other.kill("SIGKILL");
    await new Promise((resolve) => other.once("exit", resolve));
    const again = await open();
    expect((await readFile(join(dir, "registry.lock"), "utf8")).split("\n")[0]).toBe(String(process.pid));
    await again.store.close();
    await expect(readFile(join(dir, "registry.lock"))).rejects.toThrow(/ENOENT/);
  });

  it("knows a lock's owner by boot and start time: a reboot, a reused PID or a zombie does not hold the directory", async () => {
    // A live process of this boot that holds the lock with its own identity keeps it.
    const other = spawn("sleep", ["30"]);
    try {
      await writeFile(join(dir, "registry.lock"), formatOwner(ownerOf(other.pid!)));
      await expect(open()).rejects.toThrow(new RegExp(`is in use by process ${other.pid}`));
      // After a power cut the PID in the file may be any process's: another boot id means the owner is gone.
      await writeFile(join(dir, "registry.lock"), formatOwner({ ...ownerOf(other.pid!), boot: "00000000-0000-0000-0000-000000000000" }));
      await (await open()).store.close();
      // The same boot, but the PID now names a process that started later than the owner did.
      await writeFile(join(dir, "registry.lock"), formatOwner({ ...ownerOf(other.pid!), start: "1" }));
      await (await open()).store.close();
    } finally {
      other.kill("SIGKILL");
    }
    // A zombie (exited, not yet reaped by its parent) is not alive either: `sleep 0.1` here has a parent that never waits.
    const parent = spawn("sh", ["-c", "sleep 0.1 & echo $!; exec sleep 30"]);
    try {
      const zombie = Number(await new Promise<string>((resolve) => parent.stdout.once("data", (d: Buffer) => resolve(d.toString().trim()))));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(readFileSync(`/proc/${zombie}/stat`, "utf8")).toMatch(/\) Z /);
      await writeFile(join(dir, "registry.lock"), `${zombie}\n`);
      await (await open()).store.close();
    } finally {
      parent.kill("SIGKILL");
    }
  });

  it("brings back exactly what was written", async () => {
    const { store, loaded } = await open();
    expect(loaded).toEqual([]);
    await store.apply([{ op: "put", entry: entry("a") }, { op: "put", entry: entry("b") }]);
    await store.apply([{ op: "put", entry: entry("a", 81) }]);
    await store.apply([{ op: "delete", id: "b" }]);
    await store.close();
    const again = await open();
    expect(ids(again.loaded)).toEqual(["a:81"]);
    expect(again.loaded[0]).toEqual(entry("a", 81));
    expect(serviceEntrySchema.safeParse(again.loaded[0]).error).toBeUndefined();
    await again.store.close();
  });

  it("shares one sync among concurrent writes (group commit)", async () => {
    const { store } = await open();
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.apply([{ op: "put", entry: entry(`s${i}`) }])));
    expect(store.counters.records).toBe(50);
    expect(store.counters.syncs).toBeLessThan(50);
    await store.close();
    const again = await open();
    expect(again.loaded).toHaveLength(50);
    await again.store.close();
  });

  it("recovers a torn tail up to the last whole record, and cuts it off", async () => {
    const { store } = await open();
    await store.apply([{ op: "put", entry: entry("a") }]);
    await store.apply([{ op: "put", entry: entry("b") }]);
    await store.close();
    const journal = join(dir, "registry.journal");
    const whole = await readFile(journal);
    // a crash in the middle of writing the third record
    await appendFile(journal, whole.subarray(0, Math.floor(whole.length / 3)));
    const again = await open();
    expect(ids(again.loaded)).toEqual(["a:80", "b:80"]);
    expect(again.store.loadReport.droppedTailBytes).toBeGreaterThan(0);
    await again.store.apply([{ op: "put", entry: entry("c") }]);
    await again.store.close();
    const third = await open();
    expect(ids(third.loaded)).toEqual(["a:80", "b:80", "c:80"]);
    await third.store.close();
  });

  it("drops a tail record whose checksum does not match", async () => {
    const { store } = await open();
    await store.apply([{ op: "put", entry: entry("a") }]);
    await store.apply([{ op: "put", entry: entry("b") }]);
    await store.close();
    const journal = join(dir, "registry.journal");
    const text = await readFile(journal, "utf8");
    const lines = text.split("\n");
    lines[1] = lines[1]!.replace('"port":80', '"port":99'); // the last record, changed after the fact
    await writeFile(journal, lines.join("\n"));
    const again = await open();
    expect(ids(again.loaded)).toEqual(["a:80"]);
    await again.store.close();
  });

  it("refuses to start over a journal damaged in the middle", async () => {
    const { store } = await open();
    for (const id of ["a", "b", "c"]) await store.apply([{ op: "put", entry: entry(id) }]);
    await store.close();
    const journal = join(dir, "registry.journal");
    const lines = (await readFile(journal, "utf8")).split("\n");
    lines[0] = lines[0]!.replace('"name":"web"', '"name":"wxb"');
    await writeFile(journal, lines.join("\n"));
    await expect(open()).rejects.toThrow(StoreError);
    await expect(open()).rejects.toThrow(/registry\.journal:1: a damaged record with valid records after it/);
  });

  it("compacts into a snapshot and loads it back, with the journal after it", async () => {
    const { store } = await open({ compactAfterBytes: 2_000 });
    for (let i = 0; i < 30; i++) await store.apply([{ op: "put", entry: entry(`c${i}`, 1000 + i) }]);
    await store.compact();
    await store.apply([{ op: "delete", id: "c0" }]);
    await store.close();
    const snapshot = await readFile(join(dir, "registry.snapshot"), "utf8");
    expect(snapshot.split("\n")[0]).toMatch(/"format":"homelab-discovery\/snapshot"/);
    const again = await open();
    expect(again.loaded).toHaveLength(29);
    expect(again.store.loadReport.snapshotEntries).toBe(30);
    await again.store.close();
  });

  it("keeps writes made while a compaction runs (they land in the journal after the snapshot)", async () => {
    const { store } = await open();
    for (let i = 0; i < 5_000; i += 500) {
      await store.apply(Array.from({ length: 500 }, (_, k) => ({ op: "put" as const, entry: entry(`w${i + k}`, 1) })));
    }
    const compaction = store.compact();
    // The compaction yields to the event loop between chunks: these are applied while it writes the snapshot.
    const during = [
      store.apply([{ op: "put", entry: entry("w1", 2) }]),
      store.apply([{ op: "delete", id: "w2" }]),
      store.apply([{ op: "put", entry: entry("late", 3) }]),
    ];
    await Promise.all([compaction, ...during]);
    await store.close();
    const again = await open();
    expect(again.store.loadReport.snapshotEntries).toBe(5_000);
    expect(again.store.loadReport.journalRecords).toBe(3);
    const byId = new Map(again.loaded.map((e) => [e.id, e.port]));
    expect(byId.size).toBe(5_000);
    expect([byId.get("w1"), byId.has("w2"), byId.get("late"), byId.get("w4999")]).toEqual([2, false, 3, 1]);
    await again.store.close();
  });

  it("skips journal records the snapshot already holds (a crash between snapshot and truncation)", async () => {
    const { store } = await open();
    for (const id of ["a", "b"]) await store.apply([{ op: "put", entry: entry(id) }]);
    const journalBefore = await readFile(join(dir, "registry.journal"));
    await store.compact();
    await store.close();
    await writeFile(join(dir, "registry.journal"), journalBefore); // as if the truncation never happened
    const again = await open();
    expect(ids(again.loaded)).toEqual(["a:80", "b:80"]);
    expect(again.store.loadReport.journalRecords).toBe(0);
    await again.store.close();
  });

  it("refuses to start over a damaged snapshot instead of starting empty", async () => {
    const { store } = await open();
    await store.apply([{ op: "put", entry: entry("a") }]);
    await store.compact();
    await store.close();
    const path = join(dir, "registry.snapshot");
    await writeFile(path, (await readFile(path, "utf8")).replace('"id":"a"', '"id":"a b"'));
    await expect(open()).rejects.toThrow(/registry\.snapshot:2: not a valid service entry/);
    await writeFile(path, "garbage\n");
    await expect(open()).rejects.toThrow(/is damaged/);
  });
});

describe("a data directory that cannot be created", () => {
  const reason = async (path: string) => {
    const store = new FileStore({ dir: path });
    opened.push(store);
    return store.load().then(
      () => "loaded",
      (err: Error) => `${err.name}: ${err.message}`,
    );
  };

  it("says why: a path under a file is not a directory (ENOTDIR), as root too", async () => {
    await writeFile(join(dir, "file"), "x");
    expect(await reason(join(dir, "file", "data"))).toBe(`StoreError: cannot create data directory ${join(dir, "file", "data")}: not a directory (ENOTDIR)`);
    expect(await reason(join(dir, "file", "a", "b"))).toBe(`StoreError: cannot create data directory ${join(dir, "file", "a", "b")}: not a directory (ENOTDIR)`);
    expect(await reason(join(dir, "file"))).toMatch(/^StoreError: cannot create data directory .*\/file: .*\/file exists and is not a directory$/);
  });

  it("says why under /proc, where Node's recursive mkdir never returns", async () => {
    expect(await reason("/proc/self/hd-data/x")).toBe("StoreError: cannot create data directory /proc/self/hd-data/x: no such file or directory (ENOENT) (at /proc/self/hd-data)");
  });

  // Read-only is EROFS on a read-only mount, EACCES in a directory the user may not write. Root writes through any
  // mode bits, so as root this mounts a read-only tmpfs (and fails, saying so, if it cannot); otherwise chmod 0555.
  it("says the file system is read-only (EROFS) or the directory not writable (EACCES), not ENOENT", async () => {
    const parent = join(dir, "ro");
    await mkdir(parent);
    const root = process.getuid?.() === 0;
    if (root) {
      const mount = spawnSync("mount", ["-t", "tmpfs", "-o", "ro,size=64k", "hd-test-ro", parent], { encoding: "utf8" });
      expect(mount.status, `as root this test mounts a read-only tmpfs on ${parent}, which failed: ${mount.stderr}`).toBe(0);
    } else await chmod(parent, 0o555);
    try {
      const expected = root ? "read-only file system (EROFS)" : "permission denied (EACCES)";
      expect(await reason(join(parent, "data"))).toBe(`StoreError: cannot create data directory ${join(parent, "data")}: ${expected}`);
      expect(await reason(join(parent, "a", "b"))).toBe(`StoreError: cannot create data directory ${join(parent, "a", "b")}: ${expected} (at ${join(parent, "a")})`);
      // The directory itself exists but cannot be written: the lock says so.
      expect(await reason(parent)).toBe(`StoreError: cannot lock ${join(parent, "registry.lock")}: ${expected}`);
    } finally {
      if (root) spawnSync("umount", [parent]);
      else await chmod(parent, 0o755);
    }
  });
});
