// Cluster mode against a real etcd (one member): two of our nodes share one registry. Every check goes through
// the other node's DNS (c-ares) and API, as a user of that node would see it.
import { spawnSync } from "node:child_process";
import { createServer } from "node:net";
import type { AddressInfo, Socket } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { etcdRange, gateway, startEtcd, type EtcdCluster } from "./etcd.js";
import { service, startNode, until, type TestNode } from "./nodes.js";
import { metricSamples, startPeer } from "../helpers.js";

let etcd: EtcdCluster;
let a: TestNode;
let b: TestNode;

beforeAll(async () => {
  etcd = await startEtcd({ members: 1 });
  a = await startNode("node-a", etcd.endpoints);
  b = await startNode("node-b", etcd.endpoints);
}, 30_000);

afterAll(async () => {
  await Promise.allSettled([a?.stop(), b?.stop()]);
  await etcd?.stop();
});

describe("two nodes on one etcd", () => {
  it("a registration on one node is answered by the other's DNS and API, and leaves with its deregistration", async () => {
    expect((await a.api("PUT", "/v1/services/web-1", service("web-1", "web", "10.0.0.1"))).status).toBe(201);
    const ms = await until("node-b's DNS to answer web", async () => (await b.addresses("web")).includes("10.0.0.1"));
    console.log(`registration on a visible in b's DNS after ${ms.toFixed(1)} ms`);
    const got = await b.api<{ id: string; nodeId: string }>("GET", "/v1/services/web-1");
    expect(got.status).toBe(200);
    expect(got.body.id).toBe("web-1");
    const stats = await b.api<{ localCount: number; totalCount: number }>("GET", "/v1/stats");
    expect(stats.body.localCount).toBe(0);
    expect(stats.body.totalCount).toBeGreaterThanOrEqual(1);

    // A blocking query on b answers when a's deregistration arrives through the replica.
    const before = await b.api("GET", "/v1/services?name=web");
    const index = Number(before.headers.get("x-index"));
    const blocked = b.api<{ count: number }>("GET", `/v1/services?name=web&index=${index}&wait=20s`);
    expect((await a.api("DELETE", "/v1/services/web-1")).status).toBe(200);
    const woken = await blocked;
    expect(woken.body.count).toBe(0);
    expect(Number(woken.headers.get("x-index"))).toBeGreaterThan(index);
    expect(woken.headers.get("x-replica-stale-ms")).toBeNull(); // in sync: nothing to say
    await until("web to leave b's DNS", async () => (await b.addresses("web")).length === 0);
    expect((await b.api("GET", "/v1/services/web-1")).status).toBe(404);
  });

  it("only the owner checks an instance; its health reaches the other node and its DNS", async () => {
    let up = true;
    const peer = await startPeer((_req, res) => {
      res.writeHead(up ? 200 : 503).end();
    });
    try {
      const svc = service("api-1", "api", "127.0.0.1", { port: peer.port, healthEndpoint: "/health", healthCheckInterval: 1_000 });
      expect((await a.api("PUT", "/v1/services/api-1", svc)).status).toBe(201);
      await until("api healthy on b", async () => (await b.addresses("api")).includes("127.0.0.1"));
      const checksOnB = (await b.api<{ checks: { checks: number } }>("GET", "/v1/stats")).body.checks.checks;
      up = false;
      await until("api unhealthy on b", async () => (await b.addresses("api")).length === 0);
      const entry = await b.api<{ healthStatus: string }>("GET", "/v1/services/api-1");
      expect(entry.body.healthStatus).toBe("unhealthy");
      // b never ran a check of a's instance
      expect((await b.api<{ checks: { checks: number } }>("GET", "/v1/stats")).body.checks.checks).toBe(checksOnB);
      up = true;
      await until("api healthy again on b", async () => (await b.addresses("api")).includes("127.0.0.1"));
    } finally {
      await a.api("DELETE", "/v1/services/api-1");
      await peer.close();
    }
  });

  it("writes for another node's instance are forwarded to its owner, once", async () => {
    await a.api("PUT", "/v1/services/db-1", service("db-1", "db", "10.0.0.2"));
    await until("db-1 on b", async () => (await b.api("GET", "/v1/services/db-1")).status === 200);

    // Re-registration through b runs on a (the owner), which keeps owning it.
    const re = await b.api<{ tags: string[] }>("PUT", "/v1/services/db-1", service("db-1", "db", "10.0.0.2", { tags: ["primary"] }));
    expect(re.status).toBe(200);
    expect(re.headers.get("x-hd-owner")).toBe("node-a");
    expect(re.body.tags).toEqual(["primary"]);
    expect((await a.api<{ tags: string[] }>("GET", "/v1/services/db-1")).body.tags).toEqual(["primary"]);
    expect((await a.api<{ localCount: number }>("GET", "/v1/stats")).body.localCount).toBeGreaterThanOrEqual(1);
    await until("tag on b's DNS", async () => (await b.resolver.resolve4("primary.db.service.home.arpa").catch(() => [])).length === 1);

    const maint = await b.api<{ maintenance?: { reason: string } }>("PUT", "/v1/services/db-1/maintenance", { enable: true, reason: "disk swap" });
    expect(maint.status).toBe(200);
    expect(maint.body.maintenance?.reason).toBe("disk swap");
    await until("db hidden on b", async () => (await b.addresses("db")).length === 0);
    await b.api("PUT", "/v1/services/db-1/maintenance", { enable: false });
    await until("db back on b", async () => (await b.addresses("db")).length === 1);

    // A request that was already forwarded is never forwarded again.
    const loop = await b.api<{ error: { code: string; reason: string } }>("DELETE", "/v1/services/db-1", undefined, { "x-hd-forwarded-by": "node-x" });
    expect(loop.status).toBe(409);
    expect(loop.body.error.reason).toBe("not_owner");

    // Bulk requests are not forwarded: another node's ids are a conflict and nothing is applied.
    const bulk = await b.api<{ error: { code: string; items: { id: string; code: string }[] } }>("POST", "/v1/services/bulk", {
      register: [service("b-own-1", "misc", "10.0.0.3")],
      deregister: ["db-1"],
    });
    expect(bulk.status).toBe(409);
    expect(bulk.body.error.items).toEqual([expect.objectContaining({ id: "db-1", code: "owned_elsewhere" })]);
    expect((await b.api("GET", "/v1/services/b-own-1")).status).toBe(404);

    // A TTL instance of a's, kept alive by heartbeats sent to b (an app may reach any node).
    await a.api("PUT", "/v1/services/job-1", service("job-1", "job", "10.0.0.5", { ttl: 30_000 }));
    await until("job-1 on b", async () => (await b.api("GET", "/v1/services/job-1")).status === 200);
    expect(await b.addresses("job")).toEqual([]); // unknown until its first heartbeat
    const beat = await b.api<{ healthStatus: string }>("PUT", "/v1/services/job-1/heartbeat");
    expect(beat.status).toBe(200);
    expect(beat.headers.get("x-hd-owner")).toBe("node-a");
    expect(beat.body.healthStatus).toBe("healthy");
    await until("job healthy on b's DNS", async () => (await b.addresses("job")).length === 1);
    const check = await b.api<{ id: string; status: string }>("POST", "/v1/services/job-1/check");
    expect(check.status).toBe(200);
    expect(check.headers.get("x-hd-owner")).toBe("node-a");
    await a.api("DELETE", "/v1/services/job-1");

    const del = await b.api("DELETE", "/v1/services/db-1");
    expect(del.status).toBe(200);
    expect(del.headers.get("x-hd-owner")).toBe("node-a");
    await until("db-1 gone from b", async () => (await b.api("GET", "/v1/services/db-1")).status === 404);
    expect((await a.api("GET", "/v1/services/db-1")).status).toBe(404);
  });

  it("a forward the owner does not answer in time is a 504 that says the write may have been applied", async () => {
    // node-c advertises an address that accepts connections and never answers (as a stalled process would).
    const held: Socket[] = [];
    const silent = createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const c = await startNode("node-c", etcd.endpoints, { advertiseUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}` });
    try {
      await c.api("PUT", "/v1/services/slow-1", service("slow-1", "slow", "10.0.0.30"));
      await until("slow-1 on b", async () => (await b.api("GET", "/v1/services/slow-1")).status === 200);
      const res = await b.api<{ error: { code: string; message: string } }>("PUT", "/v1/services/slow-1/maintenance", { enable: true });
      expect(res.status).toBe(504);
      expect(res.body.error.code).toBe("owner_timeout");
      expect(res.body.error.message).toMatch(/node node-c, which took over 2 s to answer: the write may have been applied there/);
    } finally {
      await c.stop();
      for (const socket of held) socket.destroy();
      silent.close();
    }
  });

  it("reports the cluster in /v1/status, and POST /v1/sync reads the replica again", async () => {
    const status = await b.api<{ status: string; cluster: { state: string; nodes: { nodeId: string }[]; replica: { stale: boolean } } }>("GET", "/v1/status");
    expect(status.body.status).toBe("ok");
    expect(status.body.cluster.state).toBe("ok");
    expect(status.body.cluster.replica.stale).toBe(false);
    expect(status.body.cluster.nodes.map((n) => n.nodeId)).toEqual(["node-a", "node-b"]);
    const sync = await b.api<{ mode: string; synced: boolean; cluster: { counters: { resyncs: number } } }>("POST", "/v1/sync");
    expect(sync.status).toBe(200);
    expect(sync.body).toMatchObject({ mode: "cluster", synced: true });
    expect(sync.body.cluster.counters.resyncs).toBeGreaterThanOrEqual(2);

    // The same, for Prometheus: the cluster families appear in cluster mode only, read at scrape time.
    const metrics = metricSamples(await (await fetch(`${b.server.url}/metrics`)).text());
    expect(metrics.get('homelab_discovery_cluster_state{state="ok"}')).toBe(1);
    expect(metrics.get('homelab_discovery_cluster_state{state="unreachable"}')).toBe(0);
    expect(metrics.get("homelab_discovery_cluster_replica_stale")).toBe(0);
    expect(metrics.get("homelab_discovery_cluster_nodes")).toBe(2);
    expect(metrics.get("homelab_discovery_cluster_resyncs_total")).toBe(sync.body.cluster.counters.resyncs);
  });

  it("a node that restarts republishes from its own store; a graceful stop removes its instances at once", async () => {
    await a.api("PUT", "/v1/services/nas-1", service("nas-1", "nas", "10.0.0.4"));
    await until("nas on b", async () => (await b.addresses("nas")).length === 1);
    // Wipe what etcd holds for a: only a's durable store still knows nas-1.
    await a.server.stop();
    await until("nas gone from b after a left", async () => (await b.addresses("nas")).length === 0, 1_000);
    const left = await etcdRange(etcd.endpoints[0]!, "/homelab-discovery/test/services/node-a/", { prefix: true });
    expect(left.kvs).toEqual([]);
    await a.restart();
    await until("nas back on b", async () => (await b.addresses("nas")).length === 1);
    await a.api("DELETE", "/v1/services/nas-1");
  });
});

describe("routing policies", () => {
  it("a policy set on one node routes every node's answers at once, survives a restart, and its removal anywhere removes it everywhere", async () => {
    await a.api("PUT", "/v1/services/rt-2", service("rt-2", "rt", "10.0.0.12", { version: "2.0.0" }));
    await a.api("PUT", "/v1/services/rt-3", service("rt-3", "rt", "10.0.0.13", { version: "3.0.0" }));
    await until("both versions on b", async () => (await b.addresses("rt")).length === 2);

    // Blue-green through a: b's DNS and API follow.
    const t0 = performance.now();
    expect((await a.api("PUT", "/v1/routing/rt", { split: [{ version: "^3", weight: 100 }] })).status).toBe(200);
    const ms = await until("b's DNS routes to v3 only", async () => (await b.addresses("rt")).join() === "10.0.0.13");
    console.log(`routing policy set on a routes b's DNS after ${ms.toFixed(1)} ms (${(performance.now() - t0).toFixed(1)} ms from the PUT)`);
    expect((await b.api<{ split: unknown }>("GET", "/v1/routing/rt")).body.split).toEqual([{ version: "^3", weight: 100 }]);
    expect(await a.addresses("rt")).toEqual(["10.0.0.13"]);
    const kept = await etcdRange(etcd.endpoints[0]!, "/homelab-discovery/test/routing/rt");
    expect(kept.kvs[0]!.lease).toBe("0"); // no lease: the policy outlives the node that set it
    expect(JSON.parse(kept.kvs[0]!.value)).toMatchObject({ v: 1, split: [{ version: "^3", weight: 100 }], nodeId: "node-a" });

    // Switched back through b: a follows.
    expect((await b.api("PUT", "/v1/routing/rt", { split: [{ version: "^2", weight: 100 }] })).status).toBe(200);
    await until("a's DNS routes to v2 only", async () => (await a.addresses("rt")).join() === "10.0.0.12");

    // b restarts: it reads the policy from the cluster.
    await b.restart();
    await until("b routes to v2 after its restart", async () => (await b.addresses("rt")).join() === "10.0.0.12");

    // Removed through b: neither node routes.
    expect((await b.api("DELETE", "/v1/routing/rt")).status).toBe(200);
    await until("a answers both versions again", async () => (await a.addresses("rt")).length === 2);
    expect((await a.api("GET", "/v1/routing/rt")).status).toBe(404);
    await a.api("DELETE", "/v1/services/rt-2");
    await a.api("DELETE", "/v1/services/rt-3");
  });
});

describe("membership in the log", () => {
  it("a node logs when another joins and when it leaves", async () => {
    const lines: { msg: string; nodeId?: string }[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const observer = await startNode("observer", etcd.endpoints, {}, { logger });
    const visitor = await startNode("visitor", etcd.endpoints);
    await until("the join logged", () => lines.some((l) => l.msg === "node joined" && l.nodeId === "visitor"));
    await visitor.stop();
    await until("the leave logged", () => lines.some((l) => l.msg === "node left" && l.nodeId === "visitor"));
    expect(lines.filter((l) => l.nodeId === "visitor").map((l) => l.msg)).toEqual(["node joined", "node leaving", "node left"]);
    await observer.stop();
  });
});

describe("instance ids", () => {
  it("an id another node published while this one was away wins over this node's older copy, on every node", async () => {
    await a.api("PUT", "/v1/services/moved-1", service("moved-1", "moved", "10.0.0.21"));
    await until("moved on b", async () => (await b.addresses("moved")).includes("10.0.0.21"));
    await a.server.stop(); // a goes away (its durable store keeps moved-1)
    await until("moved gone from b", async () => (await b.addresses("moved")).length === 0);
    // The instance moved: registered on b now, under the same id.
    expect((await b.api("PUT", "/v1/services/moved-1", service("moved-1", "moved", "10.0.0.22"))).status).toBe(201);
    await a.restart();
    // a gives up its copy to b's: both nodes answer with b's instance, through the API and DNS.
    await until("a serves b's instance", async () => (await a.addresses("moved")).join() === "10.0.0.22");
    const onA = await a.api<{ nodeId: string }>("GET", "/v1/services/moved-1");
    expect(onA.body.nodeId).toBe("node-b");
    expect(await b.addresses("moved")).toEqual(["10.0.0.22"]);
    const status = await a.api<{ cluster: { conflicts: string[] } }>("GET", "/v1/status");
    expect(status.body.cluster.conflicts).toContain("moved-1");
    // A delete on a is now b's instance's: forwarded there, and gone from both.
    expect((await a.api("DELETE", "/v1/services/moved-1")).status).toBe(200);
    await until("moved gone from both", async () => (await a.addresses("moved")).length === 0 && (await b.addresses("moved")).length === 0);
    // The id is free again, and a publishes it like any other (a dropped copy blocks nothing).
    await a.api("PUT", "/v1/services/moved-1", service("moved-1", "moved", "10.0.0.23"));
    await until("moved back from a on b", async () => (await b.addresses("moved")).join() === "10.0.0.23");
    await a.api("DELETE", "/v1/services/moved-1");
  });
});

describe("node ids", () => {
  it("a second node with a live node's id does not publish over it, and says why", async () => {
    const dup = await startNode("node-a", etcd.endpoints);
    try {
      await dup.api("PUT", "/v1/services/dup-1", service("dup-1", "dup", "10.0.0.9"));
      await until("the conflict reported", async () => {
        const s = await dup.api<{ cluster: { state: string; lastError: string | null } }>("GET", "/v1/status");
        // Its own state: etcd answers, so not "unreachable" (as it said before), and the reason with it.
        return s.body.cluster.state === "conflict" && /node id node-a is in use by a live node/.test(s.body.cluster.lastError ?? "");
      });
      await new Promise((r) => setTimeout(r, 200));
      expect(await b.addresses("dup")).toEqual([]);
      expect((await a.api("GET", "/v1/services/dup-1")).status).toBe(404);
    } finally {
      await dup.stop();
    }
    // a is unharmed: still published and answered by b.
    await a.api("PUT", "/v1/services/after-dup", service("after-dup", "afterdup", "10.0.0.10"));
    await until("a still publishes", async () => (await b.addresses("afterdup")).length === 1);
  });
});

describe("etcd with authentication", () => {
  it("joins with --etcd-username/--etcd-password, and without them reports why it cannot", async () => {
    const secured = await startEtcd({ members: 1 });
    try {
      const url = secured.endpoints[0]!;
      await gateway(url, "/v3/auth/user/add", { name: "root", password: "s3cret-pw" });
      await gateway(url, "/v3/auth/user/grant", { user: "root", role: "root" });
      await gateway(url, "/v3/auth/enable", {});

      const good = await startNode("auth-ok", [url], { etcdUsername: "root", etcdPassword: "s3cret-pw" });
      const bad = await startNode("auth-bad", [url]);
      try {
        const ok = await good.api<{ cluster: { state: string } }>("GET", "/v1/status");
        expect(ok.body.cluster.state).toBe("ok");
        await until("the refusal reported", async () => {
          const s = await bad.api<{ status: string; cluster: { lastError: string | null } }>("GET", "/v1/status");
          return s.body.status === "stale" && /user name|auth|permission/i.test(s.body.cluster.lastError ?? "");
        });
      } finally {
        await Promise.all([good.stop(), bad.stop()]);
      }
    } finally {
      await secured.stop();
    }
  });
});

describe("anti-entropy", () => {
  it("POST /v1/sync publishes again what etcd lost of this node's instances", async () => {
    await a.api("PUT", "/v1/services/keep-1", service("keep-1", "keep", "10.0.0.11"));
    await until("keep on b", async () => (await b.addresses("keep")).length === 1);
    // Someone deletes a's key by hand: b drops the instance with it.
    await gateway(etcd.endpoints[0]!, "/v3/kv/deleterange", { key: Buffer.from("/homelab-discovery/test/services/node-a/keep-1").toString("base64") });
    await until("keep gone from b", async () => (await b.addresses("keep")).length === 0);
    const published = async () => (await a.api<{ cluster: { counters: { published: number } } }>("GET", "/v1/status")).body.cluster.counters.published;
    const before = await published();
    const sync = await a.api<{ synced: boolean }>("POST", "/v1/sync");
    expect(sync.body.synced).toBe(true);
    expect(await published()).toBe(before + 1); // only what etcd lost: the others are left alone
    await until("keep back on b", async () => (await b.addresses("keep")).length === 1);
    await a.api("DELETE", "/v1/services/keep-1");
  });
});

describe("etcd over TLS", () => {
  it("joins with --etcd-ca/--etcd-cert/--etcd-key, and without a client certificate reports why it cannot", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hd-tls-"));
    const ssl = (...args: string[]) => {
      const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
      if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
    };
    // A CA, a server certificate for 127.0.0.1 and a client certificate, all made here.
    ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "1", "-subj", "/CN=hd-test-ca");
    for (const [name, ext] of [["server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"], ["client", "extendedKeyUsage=clientAuth"]] as const) {
      writeFileSync(join(dir, `${name}.ext`), ext);
      ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}-key.pem`, "-out", `${name}.csr`, "-subj", `/CN=hd-test-${name}`);
      ssl("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-out", `${name}.pem`, "-days", "1", "-extfile", `${name}.ext`);
    }
    const secured = await startEtcd({ members: 1, tls: { certFile: join(dir, "server.pem"), keyFile: join(dir, "server-key.pem"), caFile: join(dir, "ca.pem"), clientCertAuth: true } });
    try {
      const url = secured.tlsEndpoints[0]!;
      const good = await startNode("tls-ok", [url], { etcdCa: join(dir, "ca.pem"), etcdCert: join(dir, "client.pem"), etcdKey: join(dir, "client-key.pem") });
      const bad = await startNode("tls-bad", [url], { etcdCa: join(dir, "ca.pem") });
      try {
        expect((await good.api<{ cluster: { state: string } }>("GET", "/v1/status")).body.cluster.state).toBe("ok");
        await good.api("PUT", "/v1/services/tls-1", service("tls-1", "tls", "10.0.0.12"));
        // What it published is in etcd (read over the plain port the harness uses).
        await until("published over TLS", async () => (await etcdRange(secured.endpoints[0]!, "/homelab-discovery/test/services/tls-ok/", { prefix: true })).kvs.length === 1);
        await until("the refusal reported", async () => {
          const s = await bad.api<{ status: string; cluster: { lastError: string | null } }>("GET", "/v1/status");
          return s.body.status === "stale" && s.body.cluster.lastError !== null;
        });
      } finally {
        await Promise.all([good.stop(), bad.stop()]);
      }
    } finally {
      await secured.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
