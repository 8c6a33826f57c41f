// Rollouts (issue 21) on a clock moved by hand: the request's rules, the steps on schedule, the wait for a verdict,
// the rollback at once when the canary fails (at a step, or between them), cancel, a policy set by hand, and the
// schedule picked up after a restart from routing.json.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startDiscovery } from "../../src/app/index.js";
import { ManualClock } from "../../src/lib/clock.js";
import { FileStore } from "../../src/store/index.js";
import { rolloutRequestSchema } from "../../src/model/index.js";
import { compileQuery, passes, serviceEventSchema } from "../../src/registry/index.js";

const svc = (id: string, version: string) => ({ id, name: "web", version, address: "10.0.0.1", port: 80 });
const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

async function start(clock = new ManualClock(), dataDir?: string) {
  const d = await startDiscovery({ nodeId: "n1", clock, ...(dataDir ? { store: new FileStore({ dir: dataDir }) } : {}) });
  return { d, clock };
}
/** Waits for file writes (routing.json is fsynced: more than a few turns of the loop). */
async function eventually(check: () => void): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      return check();
    } catch (err) {
      if (i > 200) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
const weights = (d: Awaited<ReturnType<typeof start>>["d"]) => d.routing.get("web")?.split.map((s) => `${s.version}=${s.weight}`);

describe("a rollout request", () => {
  const issues = (input: unknown) => {
    const r = rolloutRequestSchema.safeParse(input);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };
  it("takes from, to, rising steps ending at 100 and a pause, and says what is wrong otherwise", () => {
    expect(issues({ from: "^2", to: "^3", pauseMs: 1000 })).toEqual([]);
    expect(rolloutRequestSchema.parse({ from: "^2", to: "^3", pauseMs: 1000 })).toMatchObject({ steps: [10, 25, 50, 100], minHealthyPercent: 100 });
    expect(issues({ from: "^2", to: "^3", pauseMs: 1000, steps: [10, 10, 100] })).toEqual(["steps.1: must be above the step before it (10)"]);
    expect(issues({ from: "^2", to: "^3", pauseMs: 1000, steps: [10, 50] })).toEqual(["steps: must end at 100 (the canary takes all the traffic)"]);
    expect(issues({ from: "^2", to: "2.1.x", pauseMs: 1000 })).toEqual(['to: "2.1.x" overlaps "^2": no version may be both']);
    expect(issues({ from: "^2", to: "^3", pauseMs: 5 })).toEqual(["pauseMs: must be at least 100 ms"]);
    expect(issues({ from: "^2", to: "^3" })).toHaveLength(1);
  });
});

describe("a rollout", () => {
  it("is refused while no instance of the canary is healthy, and changes nothing", async () => {
    const { d } = await start();
    await d.registerService(svc("web-2", "2.0.0"));
    await expect(d.rollouts.start("web", { from: "^2", to: "^3", pauseMs: 1000 })).rejects.toThrow(/no healthy instance of web has a version matching "\^3" \(0 registered\)/);
    expect(d.routing.get("web")).toBeUndefined();
  });

  it("advances a step each pause while the canary is healthy, and completes at 100", async () => {
    const { d, clock } = await start();
    await d.registerService(svc("web-2", "2.0.0"));
    await d.registerService(svc("web-3", "3.0.0"));
    const r = await d.rollouts.start("web", { from: "^2", to: "^3", pauseMs: 1000, steps: [10, 50, 100] });
    expect(r).toMatchObject({ state: "running", step: 0 });
    expect(weights(d)).toEqual(["^2=90", "^3=10"]);
    clock.advance(999);
    await settle();
    expect(weights(d)).toEqual(["^2=90", "^3=10"]);
    clock.advance(1);
    await settle();
    expect(weights(d)).toEqual(["^2=50", "^3=50"]);
    expect(d.status()).toMatchObject({ rollouts: [{ service: "web", from: "^2", to: "^3", percent: 50, step: 2, of: 3 }] });
    clock.advance(1000);
    await settle();
    expect(weights(d)).toEqual(["^2=0", "^3=100"]);
    expect(d.routing.get("web")?.rollout).toMatchObject({ state: "completed", step: 2 });
    expect((await d.getRegistryStats()).rollouts).toEqual({ started: 1, steps: 2, completed: 1, rolledBack: 0, cancelled: 0, running: 0 });
    expect(d.status().rollouts).toBeUndefined();
    await d.stop();
  });

  it("rolls back to 0 at once when a canary instance turns unhealthy between steps", async () => {
    const { d, clock } = await start();
    await d.registerService(svc("web-2", "2.0.0"));
    await d.registerService(svc("web-3a", "3.0.0"));
    await d.registerService(svc("web-3b", "3.1.0"));
    await d.rollouts.start("web", { from: "^2", to: "^3", pauseMs: 1000, minHealthyPercent: 60 });
    clock.advance(1000);
    await settle();
    expect(weights(d)).toEqual(["^2=75", "^3=25"]);
    d.registry.setHealth("web-3a", "unhealthy"); // 1 of 2: 50%, below 60%
    await settle();
    expect(weights(d)).toEqual(["^2=100", "^3=0"]);
    expect(d.routing.get("web")?.rollout).toMatchObject({ state: "rolled-back", step: 1, reason: '1 of 2 checked instances of "^3" are healthy (50%, below 60%)' });
    clock.advance(10_000); // no timer left: the split stays
    await settle();
    expect(weights(d)).toEqual(["^2=100", "^3=0"]);
    expect((await d.getRegistryStats()).rollouts).toMatchObject({ rolledBack: 1, running: 0 });
    await d.stop();
  });

  it("rolls back when the canary is deregistered; waits, without a step, while it is unknown", async () => {
    const { d, clock } = await start();
    await d.registerService(svc("web-2", "2.0.0"));
    await d.registerService(svc("web-3", "3.0.0"));
    await d.rollouts.start("web", { from: "^2", to: "^3", pauseMs: 1000 });
    d.registry.setHealth("web-3", "unknown");
    clock.advance(1000);
    await settle();
    expect(weights(d)).toEqual(["^2=90", "^3=10"]); // no verdict, no step
    expect(d.routing.get("web")?.rollout).toMatchObject({ state: "running", step: 0 });
    d.registry.setHealth("web-3", "healthy");
    clock.advance(1000);
    await settle();
    expect(weights(d)).toEqual(["^2=75", "^3=25"]);
    await d.deregisterService("web-3");
    await settle();
    expect(weights(d)).toEqual(["^2=100", "^3=0"]);
    expect(d.routing.get("web")?.rollout?.reason).toBe('no instance of version "^3" is registered and in service');
    await d.stop();
  });

  it("stops where it is when cancelled, and when a policy is set by hand; one at a time per service", async () => {
    const { d, clock } = await start();
    await d.registerService(svc("web-2", "2.0.0"));
    await d.registerService(svc("web-3", "3.0.0"));
    await d.rollouts.start("web", { from: "^2", to: "^3", pauseMs: 1000 });
    await expect(d.rollouts.start("web", { from: "^2", to: "^3", pauseMs: 1000 })).rejects.toThrow(/a rollout of web to "\^3" is running \(step 1 of 4\)/);
    clock.advance(1000);
    await settle();
    await d.rollouts.cancel("web");
    clock.advance(5000);
    await settle();
    expect(weights(d)).toEqual(["^2=75", "^3=25"]);
    expect(d.routing.get("web")?.rollout).toMatchObject({ state: "cancelled", step: 1 });
    await expect(d.rollouts.cancel("web")).rejects.toThrow("no rollout of web is running");

    await d.rollouts.start("web", { from: "^2", to: "^3", pauseMs: 1000 });
    await d.routing.set("web", { split: [{ version: "^2", weight: 100 }] });
    clock.advance(5000);
    await settle();
    expect(weights(d)).toEqual(["^2=100"]);
    expect(d.routing.get("web")?.rollout).toMatchObject({ state: "cancelled", reason: "the policy was set by hand" });
    await d.stop();
  });

  it("survives a restart: the next step when it was due, and the rollback still armed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hd-rollout-"));
    const clock = new ManualClock();
    const a = await start(clock, dir);
    await a.d.registerService(svc("web-2", "2.0.0"));
    await a.d.registerService(svc("web-3", "3.0.0"));
    await a.d.rollouts.start("web", { from: "^2", to: "^3", pauseMs: 1000 });
    clock.advance(400);
    await a.d.stop();

    const b = await start(clock, dir);
    expect(weights(b.d)).toEqual(["^2=90", "^3=10"]);
    expect(b.d.status()).toMatchObject({ rollouts: [{ service: "web", percent: 10, step: 1 }] });
    clock.advance(599);
    await settle();
    expect(weights(b.d)).toEqual(["^2=90", "^3=10"]);
    clock.advance(1); // due as it was before the restart
    await eventually(() => expect(weights(b.d)).toEqual(["^2=75", "^3=25"]));
    b.d.registry.setHealth("web-3", "unhealthy");
    await eventually(() => expect(weights(b.d)).toEqual(["^2=100", "^3=0"]));
    await b.d.stop();
  });
});

describe("a routing change", () => {
  it("is a routing event on the feed (for watchers of its name or of none), a new index, and wakes blocking queries on the name only", async () => {
    const { d } = await start();
    await d.registerService(svc("web-2", "2.0.0"));
    await d.registerService(svc("web-3", "3.0.0"));
    await d.registerService({ ...svc("db-1", "1.0.0"), name: "db" });
    const seen = { web: [] as unknown[], db: [] as unknown[], all: [] as unknown[] };
    for (const [key, filter] of [["web", compileQuery({ name: "web" })], ["db", compileQuery({ name: "db" })], ["all", undefined]] as const) {
      d.eventFeed.subscribe({ onEvent: (e) => passes(e, filter) && seen[key].push(e.event), onClose: () => undefined }, undefined, filter);
    }
    const before = d.changes.current;
    let webWoke = false;
    let dbWoke = false;
    void d.changes.wait("web", before, 60_000).then(() => (webWoke = true));
    void d.changes.wait("db", before, 60_000).then(() => (dbWoke = true));

    await d.routing.set("web", { split: [{ version: "^2", weight: 90 }, { version: "^3", weight: 10 }] });
    await settle();
    expect(webWoke).toBe(true);
    expect(dbWoke).toBe(false);
    expect(d.changes.current).toBeGreaterThan(before);
    const event = { type: "routing", index: d.changes.current, name: "web", split: [{ version: "^2", weight: 90 }, { version: "^3", weight: 10 }] };
    expect(seen.web).toEqual([event]);
    expect(seen.all).toEqual([event]);
    expect(seen.db).toEqual([]);
    // Replayed to a client that reconnects from before it; valid against the published schema.
    expect(d.eventFeed.since(before, compileQuery({ name: "web" })).map((e) => e.event)).toEqual([event]);
    expect(serviceEventSchema.safeParse(event).success).toBe(true);

    // A rollout's rollback is one too, with the reason.
    await d.routing.set("web", undefined);
    await d.rollouts.start("web", { from: "^2", to: "^3", pauseMs: 1000 });
    d.registry.setHealth("web-3", "unhealthy");
    await settle();
    const routing = seen.web.filter((e) => (e as { type: string }).type === "routing") as { split: unknown; rollout?: unknown }[];
    expect(seen.web.map((e) => (e as { type: string }).type)).toEqual(["routing", "routing", "routing", "health", "routing"]);
    expect(routing.map((e) => e.split)).toEqual([
      event.split,
      null,
      [{ version: "^2", weight: 90 }, { version: "^3", weight: 10 }],
      [{ version: "^2", weight: 100 }, { version: "^3", weight: 0 }],
    ]);
    expect(routing[2]!.rollout).toEqual({ from: "^2", to: "^3", state: "running", percent: 10 });
    expect(routing.at(-1)!.rollout).toEqual({ from: "^2", to: "^3", state: "rolled-back", percent: 0, reason: '0 of 1 checked instances of "^3" are healthy (0%, below 100%)' });
    expect(seen.db).toEqual([]);
    await d.stop();
  });
});
