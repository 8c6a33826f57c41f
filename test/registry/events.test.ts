// The event feed in-process: a consumer that falls behind loses its backlog for one reset, never the memory.
import { describe, expect, it } from "vitest";
import { startDiscovery } from "../../src/app/index.js";
import { followEvents } from "../../src/registry/events.js";

describe("followEvents", () => {
  it("replaces a backlog past maxQueued with one reset, then goes on", async () => {
    const discovery = await startDiscovery({ nodeId: "test-node" });
    const abort = new AbortController();
    try {
      const events = followEvents(discovery.eventFeed, undefined, { after: discovery.changes.current, maxQueued: 3, signal: abort.signal });
      await discovery.registerService({ id: "q-0", name: "q", address: "10.0.0.1", port: 1 });
      expect((await events.next()).value).toMatchObject({ type: "registered", instance: { id: "q-0" } });
      for (let i = 1; i <= 5; i++) await discovery.registerService({ id: `q-${i}`, name: "q", address: "10.0.0.1", port: 1 });
      const reset = (await events.next()).value;
      expect(reset).toMatchObject({ type: "reset" });
      // The reset stands for everything up to it: what follows is news.
      const next = events.next();
      await discovery.deregisterService("q-5");
      const after = (await next).value;
      expect(after).toMatchObject({ type: "deregistered", instance: { id: "q-5" } });
      expect(after!.index).toBeGreaterThan(reset!.index);
      expect(discovery.eventFeed.subscriberCount).toBe(1);
      abort.abort();
      expect(await events.next()).toEqual({ done: true, value: undefined });
      expect(discovery.eventFeed.subscriberCount).toBe(0);
    } finally {
      abort.abort();
      await discovery.stop();
    }
  });
});
