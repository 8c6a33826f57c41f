import { describe, expect, it } from "vitest";
import { ManualClock } from "../../src/lib/clock.js";
import { startDiscovery } from "../../src/app/index.js";

const svc = (id: string, name = "web") => ({ id, name, address: "10.0.0.1", port: 80 });

async function start() {
  const clock = new ManualClock();
  const d = await startDiscovery({ nodeId: "n1", clock });
  return { d, clock };
}

/** Settles the promise's state into a value the test can read without awaiting it. */
function track(p: Promise<void>): { done: boolean } {
  const state = { done: false };
  void p.then(() => (state.done = true));
  return state;
}
const tick = () => new Promise((r) => setImmediate(r));

describe("blocking queries (ChangeWaiters)", () => {
  it("wakes a query on a name when that name changes, not when another does", async () => {
    const { d } = await start();
    const index = d.changes.current;
    const waiting = track(d.changes.wait("web", index, 60_000));
    await d.registerService(svc("db-1", "db"));
    await tick();
    expect(waiting.done).toBe(false);
    expect(d.changes.current).toBeGreaterThan(index);
    await d.registerService(svc("web-1"));
    await tick();
    expect(waiting.done).toBe(true);
    expect(d.changes.waiters).toBe(0);
  });

  it("answers at once when the name changed after the index, or the index is not one of this process's", async () => {
    const { d } = await start();
    const before = d.changes.current;
    await d.registerService(svc("web-1"));
    const now = d.changes.current;
    const stale = track(d.changes.wait("web", before, 60_000));
    const future = track(d.changes.wait("web", now + 1, 60_000));
    const other = track(d.changes.wait("web", 1, 60_000)); // an index from an earlier process
    await tick();
    expect([stale.done, future.done, other.done]).toEqual([true, true, true]);
    const current = track(d.changes.wait("web", now, 60_000));
    await tick();
    expect(current.done).toBe(false);
    expect(d.changes.waiters).toBe(1);
  });

  it("a query on any name wakes on any change; health and maintenance changes wake, a check that changes nothing does not", async () => {
    const { d } = await start();
    await d.registerService(svc("web-1"));
    const any = track(d.changes.wait(null, d.changes.current, 60_000));
    await d.registerService(svc("db-1", "db"));
    await tick();
    expect(any.done).toBe(true);

    let index = d.changes.current;
    const unchanged = track(d.changes.wait("web", index, 60_000));
    d.registry.setHealth("web-1", "healthy"); // status as it was: only lastHealthCheck moves
    await tick();
    expect(d.changes.current).toBeGreaterThan(index);
    expect(unchanged.done).toBe(false);
    d.registry.setHealth("web-1", "unhealthy");
    await tick();
    expect(unchanged.done).toBe(true);

    index = d.changes.current;
    const maintenance = track(d.changes.wait("web", index, 60_000));
    await d.setMaintenance("web-1", { enable: true, reason: "disk swap" });
    await tick();
    expect(maintenance.done).toBe(true);
  });

  it("the last instance of a name leaving wakes its waiters, and a later query from before still sees it", async () => {
    const { d } = await start();
    await d.registerService(svc("web-1"));
    const index = d.changes.current;
    const waiting = track(d.changes.wait("web", index, 60_000));
    await d.deregisterService("web-1");
    await tick();
    expect(waiting.done).toBe(true);
    expect(d.registry.hasName("web")).toBe(false);
    // The name is gone from the per-name map; its change is still newer than the index.
    expect(d.changes.changedAt("web")).toBeGreaterThan(index);
    const late = track(d.changes.wait("web", index, 60_000));
    await tick();
    expect(late.done).toBe(true);
  });

  it("gives up after its wait, on the injected clock, and when its signal aborts", async () => {
    const { d, clock } = await start();
    const timed = track(d.changes.wait("web", d.changes.current, 5_000));
    clock.advance(4_999);
    await tick();
    expect(timed.done).toBe(false);
    clock.advance(1);
    await tick();
    expect(timed.done).toBe(true);

    const abort = new AbortController();
    const aborted = track(d.changes.wait("web", d.changes.current, 60_000, abort.signal));
    await tick();
    expect(d.changes.waiters).toBe(1);
    abort.abort();
    await tick();
    expect(aborted.done).toBe(true);
    expect(d.changes.waiters).toBe(0);
  });

  it("indexes differ between processes started at different times", async () => {
    const a = await startDiscovery({ nodeId: "n1" });
    await new Promise((r) => setTimeout(r, 2));
    const b = await startDiscovery({ nodeId: "n1" });
    expect(b.changes.current).toBeGreaterThan(a.changes.current);
    await Promise.all([a.stop(), b.stop()]);
  });
});
