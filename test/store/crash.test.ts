// kill -9 under load, many times: after every restart each acknowledged write is there and nothing is half
// there. The built server runs as a child with a data dir, as in production.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { closedPort } from "../helpers.js";

const main = fileURLToPath(new URL("../../dist/src/main.js", import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), "hd-crash-"));
const children = new Set<ChildProcess>();
afterAll(() => {
  // A failed assertion leaves the round's server running: never leave it behind.
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
});

async function start(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [main, "--data-dir", dataDir, "--http-listen", `127.0.0.1:${port}`, "--dns-listen", "127.0.0.1:0", "--log-level", "warn", "--zones-dir", dataDir], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  children.add(child);
  const end = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      if ((await fetch(`http://127.0.0.1:${port}/v1/status`)).ok) return child;
    } catch {
      // not listening yet
    }
    if (Date.now() > end) throw new Error("server did not start");
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("crash safety", () => {
  it("keeps every acknowledged write through repeated SIGKILLs", async () => {
    const port = await closedPort();
    const acked = new Map<string, number>(); // id -> port, acknowledged registered
    const ackedGone = new Set<string>(); // acknowledged deregistered
    const maybeGone = new Set<string>(); // deregistration sent, the server died before answering
    const sent = new Map<string, number>(); // every registration sent, acknowledged or not
    let seq = 0;
    for (let round = 0; round < 8; round++) {
      const child = await start(port);
      const base = `http://127.0.0.1:${port}`;

      // What the previous kill left: every acknowledged write, and unacknowledged ones only whole.
      const listed = ((await (await fetch(`${base}/v1/services?name=crash`)).json()) as { services: { id: string; port: number }[] }).services;
      const present = new Map(listed.map((s) => [s.id, s.port]));
      for (const id of maybeGone) {
        acked.delete(id);
        if (!present.has(id)) ackedGone.add(id); // it happened after all: now it must stay gone
      }
      maybeGone.clear();
      for (const [id, p] of acked) expect(present.get(id), `acknowledged ${id} after round ${round}`).toBe(p);
      for (const id of ackedGone) expect(present.has(id), `deregistered ${id} after round ${round}`).toBe(false);
      for (const [id, p] of present) expect(sent.get(id), `unknown or changed ${id}`).toBe(p);
      for (const [id, p] of present) if (!acked.has(id)) acked.set(id, p); // it survived: now it must stay

      let running = true;
      const worker = async () => {
        while (running) {
          const deregister = acked.size > 0 && seq % 5 === 4;
          try {
            if (deregister) {
              const id = [...acked.keys()][seq % acked.size]!;
              seq += 1;
              maybeGone.add(id);
              const r = await fetch(`${base}/v1/services/${id}`, { method: "DELETE" });
              if (r.ok) {
                maybeGone.delete(id);
                acked.delete(id);
                ackedGone.add(id);
              }
            } else {
              const id = `c-${seq}`;
              const p = 1 + (seq % 60_000);
              seq += 1;
              sent.set(id, p);
              const r = await fetch(`${base}/v1/services/${id}`, {
                method: "PUT",
                headers: { "content-type": "application/json" },
                body: JSON.stringify({ name: "crash", address: "10.0.0.1", port: p, metadata: { round: String(round) } }),
              });
              if (r.ok) acked.set(id, p);
            }
          } catch {
            return; // the server died under us
          }
        }
      };
      const workers = Array.from({ length: 8 }, worker);
      // Some writes acknowledged in every round (however slow the machine), then a kill at a random moment.
      const target = seq + 15;
      for (const end = Date.now() + 5_000; seq < target && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, Math.random() * 300));
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
      running = false;
      await Promise.all(workers);
    }
    expect(acked.size + ackedGone.size).toBeGreaterThan(8 * 10);
  }, 60_000);
});
