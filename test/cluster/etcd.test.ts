// Proves the etcd harness (test/cluster/etcd.ts): real etcd members on loopback, ready fast, a leader that can
// be killed and replaced, and nothing left behind. Needs Debian's etcd-server (`etcd` on PATH).
import { existsSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { etcdGet, etcdPut, etcdRange, etcdStatus, leaseGrant, processExists, sleep, startEtcd, type EtcdCluster } from "./etcd.js";

const started: EtcdCluster[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((c) => c.stop()));
});

async function start(members: 1 | 3): Promise<EtcdCluster> {
  const t0 = performance.now();
  const cluster = await startEtcd({ members });
  started.push(cluster);
  console.log(`etcd: ${members} member(s) healthy in ${Math.round(performance.now() - t0)} ms (spawn to healthy ${Math.round(cluster.startMs)} ms)`);
  return cluster;
}

/** Retries a gateway call until it succeeds or timeoutMs passes (a put during an election may fail or time out). */
async function eventually<T>(fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > end) throw err;
      await sleep(20);
    }
  }
}

describe("etcd harness", () => {
  it("starts a single member in under 2 s that answers a put and a range through the gateway", async () => {
    const etcd = await start(1);
    expect(etcd.startMs).toBeLessThan(2_000);
    expect(etcd.endpoints).toHaveLength(1);
    const [m] = etcd.members;
    expect(m!.running).toBe(true);
    expect(m!.clientUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await etcd.leader()).name).toBe("n1");

    const rev = await etcdPut(etcd.endpoints[0]!, "/hd/test/a", "1");
    await etcdPut(etcd.endpoints[0]!, "/hd/test/b", JSON.stringify({ x: "é" }));
    await etcdPut(etcd.endpoints[0]!, "/hd/tesu", "outside the prefix");
    expect(rev).toBeGreaterThan(1);
    expect(await etcdGet(etcd.endpoints[0]!, "/hd/test/a")).toBe("1");
    expect(await etcdGet(etcd.endpoints[0]!, "/hd/test/missing")).toBeUndefined();
    const range = await etcdRange(etcd.endpoints[0]!, "/hd/test/", { prefix: true });
    expect(range.kvs.map((kv) => [kv.key, kv.value])).toEqual([
      ["/hd/test/a", "1"],
      ["/hd/test/b", '{"x":"é"}'],
    ]);
    expect(range.revision).toBe(rev + 2);

    const lease = await leaseGrant(etcd.endpoints[0]!, 5);
    await etcdPut(etcd.endpoints[0]!, "/hd/leased", "v", { lease });
    expect((await etcdRange(etcd.endpoints[0]!, "/hd/leased")).kvs[0]!.lease).toBe(lease);
  });

  it("restarts a member on its data dir, keeping what it stored", async () => {
    const etcd = await start(1);
    await etcdPut(etcd.endpoints[0]!, "k", "kept");
    const m = etcd.members[0]!;
    const before = m.pid;
    await m.kill("SIGKILL");
    expect(m.running).toBe(false);
    const t0 = performance.now();
    await m.restart();
    console.log(`etcd: single member restarted in ${Math.round(performance.now() - t0)} ms`);
    expect(m.pid).not.toBe(before);
    expect(await etcdGet(etcd.endpoints[0]!, "k")).toBe("kept");
  });

  it("starts 3 members with one leader, survives SIGKILL of the leader, and stop() leaves nothing", async () => {
    const etcd = await start(3);
    expect(etcd.startMs).toBeLessThan(6_000);
    expect(etcd.endpoints).toHaveLength(3);
    expect(new Set(etcd.members.map((m) => m.id)).size).toBe(3);

    const leader = await etcd.leader();
    // Every member reports the same leader.
    const views = await Promise.all(etcd.members.map((m) => etcdStatus(m.clientUrl)));
    expect(new Set(views.map((v) => v.leader))).toEqual(new Set([leader.id]));
    expect(views.filter((v) => v.memberId === v.leader)).toHaveLength(1);
    await etcdPut(leader.clientUrl, "before", "1");

    const t0 = performance.now();
    await leader.kill("SIGKILL");
    const next = await etcd.leader(10_000);
    const electionMs = performance.now() - t0;
    expect(next.name).not.toBe(leader.name);
    const follower = etcd.members.find((m) => m.running && m !== next)!;
    await eventually(() => etcdPut(follower.clientUrl, "after", "2", { timeoutMs: 1_000 }));
    const putMs = performance.now() - t0;
    console.log(`etcd: leader ${leader.name} killed; new leader ${next.name} after ${Math.round(electionMs)} ms, put through follower ${follower.name} after ${Math.round(putMs)} ms`);
    expect(electionMs).toBeLessThan(5_000);
    expect(await etcdGet(next.clientUrl, "before")).toBe("1");
    expect(await etcdGet(follower.clientUrl, "after")).toBe("2");

    // The killed member comes back as a follower and catches up.
    await leader.restart();
    expect((await etcd.leader()).name).not.toBe(leader.name);
    expect(await eventually(async () => {
      const v = await etcdRange(leader.clientUrl, "after", { serializable: true });
      if (v.kvs[0]?.value !== "2") throw new Error("not caught up yet");
      return v.kvs[0].value;
    })).toBe("2");

    const pids = etcd.members.map((m) => m.pid);
    await etcd.stop();
    await etcd.stop(); // idempotent
    for (const pid of pids) expect(processExists(pid)).toBe(false);
    expect(existsSync(etcd.tmpDir)).toBe(false);
    for (const url of etcd.endpoints) await expect(fetch(`${url}/health`, { signal: AbortSignal.timeout(1_000) })).rejects.toThrow();
  });

  it("fails fast with a clear message when etcd is not installed", async () => {
    await expect(startEtcd({ binary: "/nonexistent/etcd" })).rejects.toThrow(/etcd not found .*etcd-server/);
  });

  it("cleans up a stopped (SIGSTOP) member too", async () => {
    const etcd = await start(1);
    const m = etcd.members[0]!;
    await m.kill("SIGSTOP");
    expect(m.running).toBe(true);
    await etcd.stop();
    expect(processExists(m.pid)).toBe(false);
    expect(existsSync(etcd.tmpDir)).toBe(false);
  });
});
