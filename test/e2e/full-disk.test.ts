// The durable store on a disk that fills up: a tmpfs of a few hundred KB, mounted here (root, as in .ci/run).
// A write the disk cannot take is refused (503) and leaves nothing behind; every acknowledged write survives a
// restart; after the restart, with room again, writes go through.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileStore } from "../../src/store/index.js";
import { api, startTestServer } from "../helpers.js";
import type { ServiceEntry } from "../../src/model/schema.js";

let mnt: string;
beforeAll(() => {
  mnt = mkdtempSync(join(tmpdir(), "hd-full-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt]);
});
afterAll(() => {
  execFileSync("umount", ["-l", mnt]); // lazy: a failed test may still hold a file open there
  rmSync(mnt, { recursive: true, force: true });
});

const entry = (id: string): ServiceEntry => ({
  id,
  name: "big",
  version: "1.0.0",
  nodeId: "n1",
  address: "10.0.0.1",
  port: 80,
  healthStatus: "healthy",
  // ~10 KB per record: the disk fills within a few dozen.
  metadata: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, "x".repeat(500)])),
  tags: [],
  registeredAt: "2026-01-01T00:00:00.000Z",
  lastHealthCheck: null,
  healthCheckInterval: 30_000,
});

describe("the server on a full disk", () => {
  it("answers a write that does not fit with 503 and the reason, and says so in /v1/status (503, for health checks)", async () => {
    const dataDir = join(mnt, "server");
    const server = await startTestServer({ inMemory: false, dataDir });
    try {
      const big = { name: "big", address: "10.0.0.1", port: 80, metadata: entry("x").metadata };
      let res;
      for (let i = 0; i < 100; i++) {
        res = await api(server.url, "PUT", `/v1/services/s-${i}`, big);
        if (res.status !== 201) break;
      }
      expect(res!.status).toBe(503);
      expect(res!.body.error.message).toMatch(/the journal could not be written/);
      const status = await api(server.url, "GET", "/v1/status");
      expect(status.status).toBe(503);
      expect(status.body).toMatchObject({ status: "failed", store: { error: expect.stringMatching(/journal could not be written/) } });
    } finally {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("the file store on a full disk", () => {
  it("refuses what does not fit and keeps every acknowledged write: a short write is not a write", async () => {
    const dir = join(mnt, "data");
    const store = new FileStore({ dir, compactAfterBytes: 1024 * 1024 * 1024 });
    await store.load();
    const acked: string[] = [];
    let refused: Error | undefined;
    for (let i = 0; i < 100 && refused === undefined; i++) {
      try {
        await store.apply([{ op: "put", entry: entry(`e-${i}`) }]);
        acked.push(`e-${i}`);
      } catch (err) {
        refused = err as Error;
      }
    }
    expect(acked.length).toBeGreaterThan(5);
    expect(refused?.message).toMatch(/the journal could not be written: .*(ENOSPC|wrote 0)/);
    expect((refused as { kind?: string }).kind).toBe("unavailable"); // the API answers 503

    // Until a restart, it refuses writes with the same reason (its memory still holds the refused one).
    await expect(store.apply([{ op: "put", entry: entry("refused-too") }])).rejects.toThrow(/the journal could not be written/);
    await store.close();

    // A restart has exactly the acknowledged writes: nothing torn, nothing lost. With room again, it writes.
    execFileSync("mount", ["-o", "remount,size=2m", mnt]);
    const again = new FileStore({ dir });
    const loaded = await again.load();
    expect(loaded.map((e) => e.id).sort()).toEqual([...acked].sort());
    await again.apply([{ op: "put", entry: entry("after") }]);
    await again.close();
    expect(readdirSync(dir).sort()).toEqual(["registry.journal"]);
    rmSync(dir, { recursive: true });
  });

  it("a compaction that does not fit leaves the journal, and no temp file, behind", async () => {
    const dir = join(mnt, "compact");
    const store = new FileStore({ dir, compactAfterBytes: 1024 * 1024 * 1024 });
    await store.load();
    // Fill half the disk with the journal: the snapshot (as large again) cannot fit beside it.
    const acked: string[] = [];
    for (let i = 0; acked.length < 10; i++) {
      await store.apply([{ op: "put", entry: entry(`c-${i}`) }]);
      acked.push(`c-${i}`);
    }
    execFileSync("mount", ["-o", `remount,size=${Math.ceil((usedKb(mnt) + 40) / 4) * 4}k`, mnt]);
    await store.compact();
    expect(readdirSync(dir).sort()).toEqual(["registry.journal", "registry.lock"]);
    await store.close();
    const again = new FileStore({ dir });
    expect((await again.load()).map((e) => e.id).sort()).toEqual([...acked].sort());
    await again.close();
  });
});

function usedKb(path: string): number {
  const out = execFileSync("df", ["-k", "--output=used", path]).toString().trim().split("\n");
  return Number(out[out.length - 1]);
}
