// Liveness without etcd: the states of docs/cluster-design.md ("etcd unreachable: detect, surface, recover") and
// the watch echo probe, driven by the times a test passes in.
import { describe, expect, it } from "vitest";
import { DEGRADED_AFTER_MS, keepalivePlan, Liveness, nextRetryDelay, PROBE_EVERY_MS, PROBE_WAIT_MS } from "../../src/cluster/liveness.js";
import { captureLog } from "./log.js";

const T0 = Date.parse("2026-01-01T00:00:00Z");
const TTL_S = 10;
const ctx = { nodeId: "a", pendingPublish: 0, revision: 7 };

function setup() {
  const { log, msgs } = captureLog();
  const live = new Liveness(TTL_S, T0, log);
  /** Moves to the state of `at` (as the 250 ms tick does) and returns it. */
  const at = (ms: number) => live.update(T0 + ms, ctx);
  return { live, at, msgs };
}

describe("liveness: the cluster state", () => {
  it("is starting until etcd first answers, then ok", () => {
    const { live, at } = setup();
    expect(at(0)).toBe("starting");
    expect(live.staleForMs(T0 + 400)).toBe(400); // stale since the node started
    live.contact(T0 + 500, true);
    expect(at(500)).toBe("ok");
    expect(live.staleForMs(T0 + 600)).toBe(0);
    expect(live.lastKeepaliveAgoMs(T0 + 600)).toBe(100);
  });

  it("is unreachable when etcd failed before it ever answered", () => {
    const { live, at } = setup();
    live.failure(T0, "etcd call failed", new Error("connect ECONNREFUSED"));
    expect(at(1)).toBe("unreachable");
    expect(live.lastError).toBe("connect ECONNREFUSED");
    expect(live.lastKeepaliveAgoMs(T0 + 1)).toBeNull();
  });

  it("etcd gone: ok for a failover's length, degraded after 3 s, unreachable after TTL/2 without contact; back to ok once caught up", () => {
    const { live, at, msgs } = setup();
    live.contact(T0, true);
    at(0);
    live.failure(T0 + 100, "etcd lease keepalive failed", new Error("deadline exceeded"));
    expect(at(100 + DEGRADED_AFTER_MS)).toBe("ok"); // an election alone does not flip it
    expect(at(101 + DEGRADED_AFTER_MS)).toBe("degraded");
    expect(live.staleForMs(T0 + 101 + DEGRADED_AFTER_MS)).toBe(1 + DEGRADED_AFTER_MS);
    expect(at((TTL_S * 1000) / 2)).toBe("degraded");
    expect(at((TTL_S * 1000) / 2 + 1)).toBe("unreachable");
    // A keepalive answers while the loop still has work: catching up, still stale.
    live.contact(T0 + 6_000, false);
    expect(at(6_000)).toBe("degraded");
    expect(live.lastError).toBe("deadline exceeded");
    // Lease held, replica synced, nothing pending: the failure is forgotten.
    live.contact(T0 + 6_100, true);
    expect(at(6_100)).toBe("ok");
    expect(live.lastError).toBeUndefined();
    expect(msgs("warn")).toEqual(["etcd lease keepalive failed", "cluster replica stale: etcd not reachable; answering from the last replica", "cluster replica stale: etcd not reachable; answering from the last replica"]);
    expect(msgs("info")).toEqual(["cluster replica in sync with etcd", "etcd answers again: catching up", "cluster replica in sync with etcd"]);
  });

  it("logs each distinct error once per outage, and again in the next", () => {
    const { live, msgs } = setup();
    for (let i = 0; i < 5; i++) live.failure(T0 + i * 250, "etcd call failed", new Error("unavailable"));
    live.failure(T0 + 2_000, "etcd call failed", new Error("no leader"));
    expect(msgs("warn")).toEqual(["etcd call failed", "etcd call failed"]);
    live.contact(T0 + 3_000, true);
    live.failure(T0 + 4_000, "etcd call failed", new Error("unavailable"));
    expect(msgs("warn")).toHaveLength(3);
  });

  it("a failing publish loop backs off 250 ms doubling to 5 s, and stays stale until a pass goes through", () => {
    const { live, at } = setup();
    live.contact(T0, true);
    const delays = [1, 2, 3, 4, 5, 6, 7].map((i) => live.passFailed(T0 + i, new Error("unavailable"), false));
    expect(delays).toEqual([250, 500, 1_000, 2_000, 4_000, 5_000, 5_000]);
    live.contact(T0 + 4_000, true); // the keepalive answers, but the loop has not been through yet
    expect(at(4_000)).toBe("degraded");
    live.passed();
    expect(live.retryDelayMs).toBe(0);
    live.contact(T0 + 4_100, true);
    expect(at(4_100)).toBe("ok");
    expect(nextRetryDelay(0)).toBe(250);
  });

  it("conflict while another live node has this node's id, until a pass goes through", () => {
    const { live, at, msgs } = setup();
    live.contact(T0, true);
    at(0);
    live.passFailed(T0 + 10, new Error("node id a is in use by a live node"), true);
    expect(at(10)).toBe("conflict");
    expect(live.lastError).toBe("node id a is in use by a live node");
    expect(msgs("error")).toEqual(["not joining the cluster: give every node its own --node-id"]);
    expect(msgs("warn")).toEqual(["cannot join the cluster: this node id is in use by a live node"]);
    live.passed();
    live.contact(T0 + 5_000, true);
    expect(at(5_000)).toBe("ok");
  });
});

describe("liveness: the watch echo probe", () => {
  it("sends one probe a second, and notes its echo", () => {
    const { live } = setup();
    expect(live.probeStep(T0 + PROBE_EVERY_MS, 0, 0)).toBe("send");
    live.probeSent(T0 + PROBE_EVERY_MS);
    live.probeAcked(42, T0 + PROBE_EVERY_MS + 5);
    expect(live.probeStep(T0 + PROBE_EVERY_MS + 10, 41, T0 + PROBE_EVERY_MS + 8)).toBe("wait");
    expect(live.probeStep(T0 + PROBE_EVERY_MS + 12, 42, T0 + PROBE_EVERY_MS + 12)).toBe("back");
    expect(live.probeBack()).toBe(false); // the watch had not been silent
    expect(live.probeStep(T0 + 2 * PROBE_EVERY_MS - 1, 42, 0)).toBe("wait"); // the next one a second after the last
    expect(live.probeStep(T0 + 2 * PROBE_EVERY_MS, 42, 0)).toBe("send");
  });

  it("a busy watch that is merely behind is not silent; one that stops delivering is, and the replica is degraded until an echo comes back", () => {
    const { live, at, msgs } = setup();
    live.contact(T0, true);
    at(0);
    live.probeSent(T0);
    live.probeAcked(10, T0 + 5);
    // Events keep arriving (older revisions than the probe's): waiting.
    expect(live.probeStep(T0 + 5 + PROBE_WAIT_MS + 500, 9, T0 + 5 + 600)).toBe("wait");
    // Then nothing for a second after the last event.
    expect(live.probeStep(T0 + 5 + 600 + PROBE_WAIT_MS + 1, 9, T0 + 5 + 600)).toBe("silent");
    expect(live.probeLost(T0 + 1_606)).toEqual({ probedAt: T0 + 5, first: true });
    expect(live.watchStalls).toBe(1);
    expect(at(1_606)).toBe("degraded");
    expect(live.lastError).toBe("the etcd watch delivered nothing for 1601 ms after a write etcd acknowledged");
    expect(live.staleForMs(T0 + 1_606)).toBe(1_601);
    // The rebuilt watch is silent too: counted again, still the same episode.
    live.probeAcked(12, T0 + 2_000);
    expect(live.probeLost(T0 + 3_100).first).toBe(false);
    expect(live.watchStalls).toBe(2);
    // A contact does not clear it while the watch is known silent...
    live.contact(T0 + 3_200, true);
    expect(at(3_200)).toBe("degraded");
    // ...an echo through the rebuilt watch does.
    live.probeAcked(14, T0 + 3_300);
    expect(live.probeStep(T0 + 3_320, 14, T0 + 3_320)).toBe("back");
    expect(live.probeBack()).toBe(true);
    live.contact(T0 + 3_320, true);
    expect(at(3_320)).toBe("ok");
    expect(msgs("warn")).toEqual(["cluster replica stale: etcd not reachable; answering from the last replica"]);
  });

  it("a new watch is proven by the next probe, not by an old one", () => {
    const { live } = setup();
    live.probeAcked(10, T0);
    live.probeReset();
    expect(live.probeStep(T0 + 5_000, 0, 0)).toBe("send");
  });
});

describe("liveness: the keepalive's timing", () => {
  it("every TTL/3, 500 ms after a failure, each keepalive tried up to endpoints+1 (at most 4) times within a share of TTL/3", () => {
    expect(keepalivePlan(10, 1)).toEqual({ everyMs: 10_000 / 3, retryMs: 500, attempts: 2, deadlineMs: 1_000 });
    expect(keepalivePlan(5, 3)).toEqual({ everyMs: 5_000 / 3, retryMs: 500, attempts: 4, deadlineMs: 5_000 / 3 / 4 });
    expect(keepalivePlan(2, 5)).toEqual({ everyMs: 2_000 / 3, retryMs: 500, attempts: 4, deadlineMs: 200 });
    expect(keepalivePlan(1, 1).retryMs).toBe(1_000 / 3);
  });
});
