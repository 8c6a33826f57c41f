// Version-aware routing (issue 21): the policy's rules, and what DNS (over real UDP) and the API answer with a
// policy: SRV weights in proportion to the split (as HAProxy reads them), A answers split per query, a blue-green
// switch seen at once everywhere, the fallback when the selected version has no healthy instance, and the policy
// kept across a restart.
import { createSocket } from "node:dgram";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { route, routingPolicySchema, weightedSequence } from "../../src/model/index.js";
import type { ServerHandle } from "../../src/app/server.js";
import { api, startTestServer } from "../helpers.js";
import { decode, Packet, query, udp } from "./helpers.js";

const DOMAIN = "test.internal";

describe("a routing policy", () => {
  const issues = (input: unknown) => {
    const r = routingPolicySchema.safeParse(input);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };

  it("takes weighted selectors summing to 100, and says exactly what is wrong otherwise", () => {
    expect(issues({ split: [{ version: "^2", weight: 90 }, { version: "^3", weight: 10 }] })).toEqual([]);
    expect(issues({ split: [{ version: "^2", weight: 90 }, { version: "^3", weight: 20 }] })).toEqual(["split: weights must sum to 100 (they sum to 110)"]);
    expect(issues({ split: [{ version: "^2", weight: 50 }, { version: "2.1.x", weight: 50 }] })).toEqual([
      'split.1.version: "2.1.x" overlaps "^2" (selector 0): a version may fall under one selector only',
    ]);
    expect(issues({ split: [{ version: "blue", weight: 50 }, { version: "blue", weight: 50 }] })).toHaveLength(1);
    expect(issues({ split: [{ version: "blue", weight: 50 }, { version: "green", weight: 50 }] })).toEqual([]);
    expect(issues({ split: [{ version: "^2", weight: 100.5 }] })).toContain("split.0.weight: must be a whole number");
    expect(issues({ split: [] })).toEqual(["split: must have at least one selector"]);
    expect(issues({ split: [{ version: "^2", weight: 100 }], extra: 1 })).toHaveLength(1);
  });

  it("routes each version's instances by its weight, rescaled over the versions that have instances; none: all of them", () => {
    const e = (version: string) => ({ version, id: version });
    const policy = { split: [{ version: "^1", weight: 0 }, { version: "^2", weight: 60 }, { version: "^3", weight: 40 }] };
    const r = route(policy, [e("1.0.0"), e("2.0.0"), e("2.1.0"), e("3.0.0"), e("4.0.0")]);
    expect(r.fellBack).toBe(false);
    expect(r.groups.map((g) => [g.version, g.weight, g.instances.map((i) => i.id)])).toEqual([
      ["^2", 60, ["2.0.0", "2.1.0"]],
      ["^3", 40, ["3.0.0"]],
    ]);
    // The canary has no instance: the stable version takes all of it.
    expect(route(policy, [e("2.0.0")]).groups.map((g) => [g.version, g.weight])).toEqual([["^2", 100]]);
    // Nothing the policy selects: every instance, said (fellBack).
    const none = route(policy, [e("1.0.0"), e("4.0.0")]);
    expect([none.fellBack, none.groups.map((g) => [g.version, g.weight, g.instances.length])]).toEqual([true, [[undefined, 100, 2]]]);
  });

  it("spreads a split over the queries: each weight's count in every 100, interleaved", () => {
    const seq = weightedSequence([90, 10], 100);
    expect(seq.filter((i) => i === 1)).toHaveLength(10);
    // Spread out: never two canary answers in a row at 10%.
    expect(seq.some((v, i) => v === 1 && seq[i + 1] === 1)).toBe(false);
    expect(weightedSequence([33.4, 33.3, 33.3], 100).filter((i) => i === 0)).toHaveLength(34);
  });
});

describe("routing over DNS and the API", () => {
  let server: ServerHandle | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  const start = async (dataDir?: string) => {
    server = await startTestServer({ domain: DOMAIN, ...(dataDir ? { inMemory: false, dataDir } : {}) });
    return server;
  };
  const register = async (s: ServerHandle) => {
    const instances = [
      { id: "web-a", name: "web", version: "2.0.0", address: "10.0.0.1", port: 8001 },
      { id: "web-b", name: "web", version: "2.1.0", address: "10.0.0.2", port: 8002 },
      { id: "web-c", name: "web", version: "3.0.0", address: "10.0.0.3", port: 8003 },
    ];
    expect((await api(s.url, "POST", "/v1/services/bulk", { register: instances })).status).toBe(200);
  };
  const ask = async (s: ServerHandle, name: string, type: number) => decode((await udp(s.dnsAddress.port, query(`${name}.${DOMAIN}`, type)))!);
  const srv = async (s: ServerHandle) =>
    (await ask(s, "_web._tcp.service", Packet.TYPE.SRV)).answers.map((a: any) => [a.port, a.weight]).sort((x: number[], y: number[]) => x[0]! - y[0]!);
  const addresses = async (s: ServerHandle) => (await ask(s, "web.service", Packet.TYPE.A)).answers.map((a: any) => a.address).sort();

  it("weighs SRV records by the split, so that HAProxy's (w+255)/256 gives each version its share", async () => {
    const s = await start();
    await register(s);
    expect(await srv(s)).toEqual([[8001, 2560], [8002, 2560], [8003, 2560]]);
    const put = await api(s.url, "PUT", "/v1/routing/web", { split: [{ version: "^2", weight: 90 }, { version: "^3", weight: 10 }] });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ name: "web", split: [{ version: "^2", weight: 90 }, { version: "^3", weight: 10 }], unmatched: [] });
    const weights = await srv(s);
    expect(weights).toEqual([[8001, 11520], [8002, 11520], [8003, 2560]]);
    const haproxy = weights.map(([, w]) => Math.floor((w! + 255) / 256));
    expect(haproxy).toEqual([45, 45, 10]); // 90 and 10 out of 100
  });

  it("splits A answers per query: over 10,000 queries the canary's share is its weight, within 2 points", { timeout: 60_000 }, async () => {
    const s = await start();
    await register(s);
    await api(s.url, "PUT", "/v1/routing/web", { split: [{ version: "^2", weight: 90 }, { version: "^3", weight: 10 }] });
    // 10,000 queries, 100 in flight at a time (each batch waits for its replies, 1 s at most).
    const socket = createSocket("udp4");
    const counts = new Map<string, number>();
    let received = 0;
    let wake: (() => void) | undefined;
    socket.on("message", (msg) => {
      for (const a of decode(msg).answers as { address: string }[]) counts.set(a.address, (counts.get(a.address) ?? 0) + 1);
      received += 1;
      wake?.();
    });
    const port = s.dnsAddress.port;
    for (let sent = 0; sent < 10_000; sent += 100) {
      for (let i = 0; i < 100; i++) socket.send(query(`web.service.${DOMAIN}`, Packet.TYPE.A, { id: (sent + i) & 0xffff }), port, "127.0.0.1");
      const deadline = Date.now() + 1_000;
      while (received < sent + 100 && Date.now() < deadline) await new Promise<void>((r) => ((wake = r), setTimeout(r, 20)));
    }
    socket.close();
    expect(received).toBeGreaterThanOrEqual(9_900);
    // Each answer is one version's addresses: v2's two, or v3's one.
    const v3 = counts.get("10.0.0.3") ?? 0;
    const v2 = counts.get("10.0.0.1") ?? 0;
    expect(v3 + v2).toBe(received);
    expect(Math.abs(v3 / received - 0.1)).toBeLessThanOrEqual(0.02);
    expect(counts.get("10.0.0.2")).toBe(v2);
  });

  it("switches blue-green at once: after the call returns, DNS, SRV and ?routed=true name the new version only; and back", async () => {
    const s = await start();
    await register(s);
    expect(await addresses(s)).toEqual(["10.0.0.1", "10.0.0.2", "10.0.0.3"]); // cached now
    await api(s.url, "PUT", "/v1/routing/web", { split: [{ version: "^3", weight: 100 }] });
    expect(await addresses(s)).toEqual(["10.0.0.3"]);
    expect((await srv(s)).map(([port]) => port)).toEqual([8003]);
    const routed = await api(s.url, "GET", "/v1/services?name=web&routed=true");
    expect(routed.body.services.map((e: any) => [e.id, e.routing])).toEqual([["web-c", { selector: "^3", share: 100 }]]);
    // The old version stays registered (and checked): the switch back is the same call.
    expect((await api(s.url, "GET", "/v1/services?name=web")).body.count).toBe(3);
    await api(s.url, "PUT", "/v1/routing/web", { split: [{ version: "^2", weight: 100 }] });
    expect(await addresses(s)).toEqual(["10.0.0.1", "10.0.0.2"]);
    expect((await api(s.url, "DELETE", "/v1/routing/web")).status).toBe(200);
    expect(await addresses(s)).toEqual(["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    expect((await api(s.url, "GET", "/v1/routing/web")).status).toBe(404);
  });

  it("falls back to every healthy instance when the selected version has none, and says so", async () => {
    const s = await start();
    await register(s);
    const put = await api(s.url, "PUT", "/v1/routing/web", { split: [{ version: "^4", weight: 100 }] });
    expect(put.body.unmatched).toEqual(["^4"]);
    expect(put.body.warnings).toEqual(['no registered instance of web has a version matching "^4"']);
    expect(await addresses(s)).toEqual(["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    expect(s.dns.stats().routingFallbacks).toBeGreaterThan(0);
  });

  it("refuses a bad policy with the zod message, and changes nothing", async () => {
    const s = await start();
    await register(s);
    await api(s.url, "PUT", "/v1/routing/web", { split: [{ version: "^3", weight: 100 }] });
    const bad = await api(s.url, "PUT", "/v1/routing/web", { split: [{ version: "^2", weight: 60 }, { version: "^3", weight: 30 }] });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain("weights must sum to 100 (they sum to 90)");
    expect((await api(s.url, "GET", "/v1/routing/web")).body.split).toEqual([{ version: "^3", weight: 100 }]);
    expect(await addresses(s)).toEqual(["10.0.0.3"]);
  });

  it("routes Traefik's servers: weighted by the split, the old version left out by a blue-green switch", async () => {
    const s = await start();
    const instances = ["2.0.0", "2.1.0", "3.0.0"].map((version, i) => ({ id: `web-${i}`, name: "web", version, address: `10.0.0.${i + 1}`, port: 8000 + i, tags: ["traefik.enable=true"] }));
    await api(s.url, "POST", "/v1/services/bulk", { register: instances });
    const servers = async () => (await api(s.url, "GET", "/v1/traefik/config")).body.http.services.web.loadBalancer.servers;
    expect(await servers()).toEqual([{ url: "http://10.0.0.1:8000" }, { url: "http://10.0.0.2:8001" }, { url: "http://10.0.0.3:8002" }]);
    await api(s.url, "PUT", "/v1/routing/web", { split: [{ version: "^2", weight: 90 }, { version: "^3", weight: 10 }] });
    expect(await servers()).toEqual([
      { url: "http://10.0.0.1:8000", weight: 4500 },
      { url: "http://10.0.0.2:8001", weight: 4500 },
      { url: "http://10.0.0.3:8002", weight: 1000 },
    ]);
    await api(s.url, "PUT", "/v1/routing/web", { split: [{ version: "^3", weight: 100 }] });
    expect(await servers()).toEqual([{ url: "http://10.0.0.3:8002" }]);
  });

  it("pins a version by name: _v<major>, _v<major>-<minor>, _v<exact>, past the policy and without fallback", async () => {
    const s = await start();
    await register(s);
    await api(s.url, "POST", "/v1/services/bulk", { register: [{ id: "web-d", name: "web", version: "blue", address: "10.0.0.4", port: 8004, tags: ["prod"] }] });
    // A policy sends everything to ^3: the pinned names still answer their own version.
    await api(s.url, "PUT", "/v1/routing/web", { split: [{ version: "^3", weight: 100 }] });
    const a = async (name: string) => (await ask(s, name, Packet.TYPE.A)).answers.map((r: any) => r.address).sort();
    expect(await a("web.service")).toEqual(["10.0.0.3"]);
    expect(await a("_v2.web.service")).toEqual(["10.0.0.1", "10.0.0.2"]);
    expect(await a("_v2-1.web.service")).toEqual(["10.0.0.2"]);
    expect(await a("_v2-0-0.web.service")).toEqual(["10.0.0.1"]);
    expect(await a("_vblue.web.service")).toEqual(["10.0.0.4"]);
    expect(await a("prod._vblue.web.service")).toEqual(["10.0.0.4"]);
    const pinnedSrv = await ask(s, "_v2._web._tcp.service", Packet.TYPE.SRV);
    expect(pinnedSrv.answers.map((r: any) => [r.port, r.weight]).sort()).toEqual([[8001, 2560], [8002, 2560]]);
    expect((await ask(s, "_v2.web.service", Packet.TYPE.SRV)).answers.map((r: any) => r.port).sort()).toEqual([8001, 8002]);
    // DNS-SD: the subtype of one version (`__v2`: the subtype's underscore and the pin label), PTRs only.
    const ptrs = await ask(s, "__v2._sub._web._tcp", Packet.TYPE.PTR);
    expect(ptrs.answers.map((r: any) => r.domain).sort()).toEqual([`web-a._web._tcp.${DOMAIN}`, `web-b._web._tcp.${DOMAIN}`]);
    // No instance of that version: NODATA with the SOA (the service exists), never another version's.
    const none = await ask(s, "_v4.web.service", Packet.TYPE.A);
    expect([none.header.rcode, none.answers.length, none.authorities.length]).toEqual([0, 0, 1]);
    expect((await ask(s, "_v2.nothing.service", Packet.TYPE.A)).header.rcode).toBe(3);
    // Fresh at once: the v2.1 instance goes into maintenance, and its pinned name empties.
    expect((await api(s.url, "PUT", "/v1/services/web-b/maintenance", { enable: true })).status).toBe(200);
    expect(await a("_v2-1.web.service")).toEqual([]);
    expect(await a("_v2.web.service")).toEqual(["10.0.0.1"]);
  });

  it("keeps policies across a restart (routing.json beside the store)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hd-routing-"));
    let s = await start(dir);
    await register(s);
    await api(s.url, "PUT", "/v1/routing/web", { split: [{ version: "^3", weight: 100 }] });
    await s.stop();
    server = undefined;
    s = await start(dir);
    expect((await api(s.url, "GET", "/v1/routing")).body.policies.web.split).toEqual([{ version: "^3", weight: 100 }]);
    expect(await addresses(s)).toEqual(["10.0.0.3"]);
  });
});
