// A snapshot over V8's longest string (~512 MiB) loads: the built server restarts on it with every entry
// (issue 16, defect 9: a 654 MB snapshot failed every restart with "Invalid string length"). The file is written
// here directly in the store's format (CRC per line), then the server is started on it as a user would, and its
// load time and peak RSS are printed for BENCHMARKS.md.
import { spawn } from "node:child_process";
import { open, mkdtemp, readFile, rm, statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { crc32 } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { serviceEntrySchema, type ServiceEntry } from "../../src/model/schema.js";
import { root } from "./built-server.js";

const MIB = 1024 * 1024;
/** Over the longest string V8 makes (2^29 - 24 characters), with a margin. */
const TARGET_BYTES = 560 * MIB;
/** The snapshot plus room for the journal, lock and a filesystem's own overhead. */
const NEEDED_FREE = 1.5 * 1024 * MIB;
const PAD = "x".repeat(320);

const withCrc = (body: string) => `${crc32(body).toString(16).padStart(8, "0")} ${body}\n`;

function entry(i: number): ServiceEntry {
  return {
    id: `big-${i}`,
    name: `svc-${i % 1000}`,
    version: "1.0.0",
    nodeId: "n1",
    address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    port: 1024 + (i % 50_000),
    healthStatus: "healthy",
    // ~1 KB per line, so the file passes 512 MiB with ~580k entries (the had 3.5M of ~190 bytes).
    metadata: { team: `t${i % 7}`, note: PAD, more: PAD },
    tags: ["prod", `shard-${i % 16}`],
    registeredAt: "2026-12-03T00:00:00.000Z",
    lastHealthCheck: null,
    healthCheckInterval: 30_000,
  };
}

/** Writes <dir>/registry.snapshot with `count` entries, in 8 MiB writes; returns its size. */
async function writeSnapshot(dir: string, count: number): Promise<number> {
  const file = await open(join(dir, "registry.snapshot"), "w");
  let bytes = 0;
  try {
    let chunk = withCrc(JSON.stringify({ format: "homelab-discovery/snapshot", version: 1, seq: 1, count }));
    for (let i = 0; i < count; i++) {
      chunk += withCrc(JSON.stringify(entry(i)));
      if (chunk.length > 8 * MIB || i === count - 1) {
        const buf = Buffer.from(chunk);
        await file.write(buf, 0, buf.length, bytes);
        bytes += buf.length;
        chunk = "";
      }
    }
  } finally {
    await file.close();
  }
  return bytes;
}

let dir: string | undefined;
afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("a snapshot over 512 MiB", () => {
  it("is loaded whole by the built server on restart", { timeout: 300_000 }, async () => {
    dir = await mkdtemp(join(tmpdir(), "hd-big-snapshot-"));
    const fs = await statfs(dir);
    const free = fs.bavail * fs.bsize;
    if (free < NEEDED_FREE) {
      throw new Error(`this test writes a ${TARGET_BYTES / MIB} MiB snapshot and needs ${NEEDED_FREE / MIB} MiB free under ${tmpdir()}, which has ${Math.floor(free / MIB)} MiB: free some space or point TMPDIR elsewhere`);
    }
    expect(serviceEntrySchema.safeParse(entry(0)).error).toBeUndefined();
    const lineBytes = Buffer.byteLength(withCrc(JSON.stringify(entry(123_456))));
    const count = Math.ceil(TARGET_BYTES / lineBytes);
    const written = performance.now();
    const bytes = await writeSnapshot(dir, count);
    const writeMs = performance.now() - written;
    expect(bytes).toBeGreaterThan(512 * MIB);

    const t0 = performance.now();
    const child = spawn(process.execPath, [join(root, "dist/src/main.js"), "--node-id", "big", "--data-dir", dir, "--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0"], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      const seen = { readyMs: NaN, restored: NaN, url: "" };
      const lines = createInterface({ input: child.stdout! });
      const log: string[] = [];
      const listening = new Promise<void>((resolve, reject) => {
        lines.on("line", (line) => {
          log.push(line);
          const rec = JSON.parse(line) as { msg?: string; restored?: number; url?: string };
          if (rec.msg === "registry ready") {
            seen.readyMs = performance.now() - t0;
            seen.restored = rec.restored ?? NaN;
          } else if (rec.msg === "HTTP API listening") {
            seen.url = rec.url ?? "";
            resolve();
          }
        });
        void exited.then((code) => reject(new Error(`the server exited (${code}) before listening:\n${log.join("\n")}\n${stderr}`)));
      });
      await listening;
      const listeningMs = performance.now() - t0;
      const status = await readFile(`/proc/${child.pid}/status`, "utf8");
      const peakRssMib = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]) / 1024;
      const total = ((await (await fetch(`${seen.url}/v1/stats`)).json()) as { totalCount: number }).totalCount;
      console.log(
        `big snapshot: ${count} entries, ${(bytes / MIB).toFixed(1)} MiB written in ${(writeMs / 1000).toFixed(1)} s; ` +
          `spawn -> "registry ready" ${(seen.readyMs / 1000).toFixed(1)} s, -> HTTP listening ${(listeningMs / 1000).toFixed(1)} s; peak RSS (VmHWM) ${peakRssMib.toFixed(0)} MiB`,
      );
      expect(seen.restored).toBe(count);
      expect(total).toBe(count);
    } finally {
      child.kill("SIGTERM");
      await exited;
    }
  });
});
