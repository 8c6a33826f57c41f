// Cached answers are never stale (issue 18): for every name form, ask (so the answer is cached), change the data
// behind it, and ask again over real UDP; the new answer must show the change. And a change elsewhere leaves a
// cached answer cached (server.dns.stats().cacheHits).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { api, startTestServer } from "../helpers.js";
import { decode, Packet, query, udp } from "./helpers.js";

const T = Packet.TYPE;
let server: ServerHandle;
let nextId = 1;

beforeAll(async () => {
  server = await startTestServer({ nodeId: "nas" });
});
afterAll(() => server.stop());

const put = async (id: string, body: Record<string, unknown>) => {
  const r = await api(server.url, "PUT", `/v1/services/${id}`, body);
  expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
};
const maintenance = async (id: string, enable: boolean) =>
  expect((await api(server.url, "PUT", `/v1/services/${id}/maintenance`, { enable, reason: "patching" })).status).toBeLessThan(300);
const del = async (id: string) => expect((await api(server.url, "DELETE", `/v1/services/${id}`)).status).toBeLessThan(300);

async function ask(name: string, type: number) {
  const id = (nextId = (nextId % 60_000) + 1);
  const raw = await udp(server.dnsAddress.port, query(name, type, { id, edns: { udpSize: 4096 } }));
  if (raw === undefined) throw new Error(`no answer to ${name}`);
  const p = decode(raw);
  expect(p.header.id).toBe(id);
  return p;
}
type Reply = Awaited<ReturnType<typeof ask>>;
/** What the answer section says, one sorted string per record (the parts a change can move). */
const said = (p: Reply) =>
  p.answers
    .map((r) => {
      const x = r as unknown as Record<string, unknown>;
      if (r.type === T.SRV) return `SRV ${x.port} ${String(x.target).toLowerCase()}`;
      if (r.type === T.PTR) return `PTR ${String(x.domain).toLowerCase()}`;
      if (r.type === T.TXT) return `TXT ${([] as unknown[]).concat(x.data).join(",")}`;
      if (r.type === T.SOA) return `SOA ${x.serial}`;
      return `${r.type === T.AAAA ? "AAAA" : r.type === T.A ? "A" : r.type} ${x.address}`;
    })
    .sort();
const rcode = (p: Reply) => p.header.rcode;
const RCODE = { NOERROR: 0, NXDOMAIN: 3, REFUSED: 5 };

/** Asks twice (the second from the cache), runs the change, and returns what was said before and after it. */
async function around(name: string, type: number, change: () => Promise<unknown> | unknown): Promise<[Reply, Reply]> {
  const before = await ask(name, type);
  const hits = server.dns.stats().cacheHits;
  expect(said(await ask(name, type))).toEqual(said(before));
  expect(server.dns.stats().cacheHits, `${name} was not cached`).toBe(hits + 1);
  await change();
  return [before, await ask(name, type)];
}

describe("a cached answer after the data behind it changes", () => {
  it("<name>.service: registered, deregistered, unhealthy, in maintenance, back", async () => {
    await put("web-1", { name: "web", address: "10.1.0.1", port: 80 });
    let [, after] = await around("web.service.home.arpa", T.A, () => put("web-2", { name: "web", address: "10.1.0.2", port: 80 }));
    expect(said(after)).toEqual(["A 10.1.0.1", "A 10.1.0.2"]);
    [, after] = await around("web.service.home.arpa", T.A, () => del("web-1"));
    expect(said(after)).toEqual(["A 10.1.0.2"]);
    [, after] = await around("web.service.home.arpa", T.A, () => server.discovery.registry.setHealth("web-2", "unhealthy"));
    expect(rcode(after)).toBe(RCODE.NOERROR);
    expect(said(after)).toEqual([]);
    [, after] = await around("web.service.home.arpa", T.A, () => server.discovery.registry.setHealth("web-2", "healthy"));
    expect(said(after)).toEqual(["A 10.1.0.2"]);
    [, after] = await around("web.service.home.arpa", T.A, () => maintenance("web-2", true));
    expect(said(after)).toEqual([]);
    [, after] = await around("web.service.home.arpa", T.A, () => maintenance("web-2", false));
    expect(said(after)).toEqual(["A 10.1.0.2"]);
    [, after] = await around("web.service.home.arpa", T.A, () => del("web-2"));
    expect(rcode(after)).toBe(RCODE.NXDOMAIN);
  });

  it("an absent name (NXDOMAIN cached) once it is registered; a renamed instance leaves its old name", async () => {
    let [before, after] = await around("late.service.home.arpa", T.A, () => put("late-1", { name: "late", address: "10.2.0.1", port: 80 }));
    expect(rcode(before)).toBe(RCODE.NXDOMAIN);
    expect(said(after)).toEqual(["A 10.2.0.1"]);
    const renamed = () => put("late-1", { name: "early", address: "10.2.0.1", port: 80 });
    await ask("early.service.home.arpa", T.A); // cached NXDOMAIN
    [, after] = await around("late.service.home.arpa", T.A, renamed);
    expect(rcode(after)).toBe(RCODE.NXDOMAIN);
    expect(said(await ask("early.service.home.arpa", T.A))).toEqual(["A 10.2.0.1"]);
    await del("late-1");
  });

  it("<tag>.<name>.service and multi-tag names when tags change", async () => {
    await put("api-1", { name: "api", address: "10.3.0.1", port: 80, tags: ["prod"] });
    let [before, after] = await around("prod.api.service.home.arpa", T.A, () => put("api-2", { name: "api", address: "10.3.0.2", port: 80, tags: ["prod", "eu"] }));
    expect(said(before)).toEqual(["A 10.3.0.1"]);
    expect(said(after)).toEqual(["A 10.3.0.1", "A 10.3.0.2"]);
    [before, after] = await around("eu.prod.api.service.home.arpa", T.A, () => put("api-1", { name: "api", address: "10.3.0.1", port: 80, tags: ["eu", "prod"] }));
    expect(said(before)).toEqual(["A 10.3.0.2"]);
    expect(said(after)).toEqual(["A 10.3.0.1", "A 10.3.0.2"]);
    [, after] = await around("eu.prod.api.service.home.arpa", T.A, () => put("api-2", { name: "api", address: "10.3.0.2", port: 80, tags: [] }));
    expect(said(after)).toEqual(["A 10.3.0.1"]);
  });

  it("RFC 2782 _<name>._tcp, _<name>._<tag> and _<name>._udp SRV when ports and tags change", async () => {
    await put("db-1", { name: "db", address: "10.4.0.1", port: 5432 });
    let [, after] = await around("_db._tcp.service.home.arpa", T.SRV, () => put("db-1", { name: "db", address: "10.4.0.1", port: 6432 }));
    expect(said(after)).toEqual(["SRV 6432 0a040001.addr.home.arpa"]);
    [, after] = await around("_db._primary.service.home.arpa", T.SRV, () => put("db-1", { name: "db", address: "10.4.0.1", port: 6432, tags: ["primary"] }));
    expect(said(after)).toEqual(["SRV 6432 0a040001.addr.home.arpa"]);
    [, after] = await around("_db._udp.service.home.arpa", T.SRV, () => put("db-1", { name: "db", address: "10.4.0.1", port: 6432, tags: ["primary", "udp"] }));
    expect(said(after)).toEqual(["SRV 6432 0a040001.addr.home.arpa"]);
    [, after] = await around("_db._primary.service.home.arpa", T.SRV, () => put("db-1", { name: "db", address: "10.4.0.1", port: 6432, tags: ["udp"] }));
    expect(said(after)).toEqual([]);
  });

  it("DNS-SD _<name>._tcp.<domain>, _<tag>._sub, an instance's SRV and TXT", async () => {
    await put("ipp-1", { name: "ipp", address: "10.5.0.1", port: 631, metadata: { color: "no" } });
    let [, after] = await around("_ipp._tcp.home.arpa", T.PTR, () => put("ipp-2", { name: "ipp", address: "10.5.0.2", port: 631, tags: ["color"] }));
    expect(said(after)).toEqual(["PTR ipp-1._ipp._tcp.home.arpa", "PTR ipp-2._ipp._tcp.home.arpa"]);
    [, after] = await around("_color._sub._ipp._tcp.home.arpa", T.PTR, () => put("ipp-1", { name: "ipp", address: "10.5.0.1", port: 631, tags: ["color"], metadata: { color: "yes" } }));
    expect(said(after)).toEqual(["PTR ipp-1._ipp._tcp.home.arpa", "PTR ipp-2._ipp._tcp.home.arpa"]);
    [, after] = await around("ipp-1._ipp._tcp.home.arpa", T.TXT, () => put("ipp-1", { name: "ipp", address: "10.5.0.1", port: 631, tags: ["color"], metadata: { color: "blue" } }));
    expect(said(after).join()).toContain("color=blue");
    [, after] = await around("ipp-1._ipp._tcp.home.arpa", T.SRV, () => put("ipp-1", { name: "ipp", address: "10.5.0.1", port: 632, tags: ["color"] }));
    expect(said(after)).toEqual(["SRV 632 0a050001.addr.home.arpa"]);
    [, after] = await around("ipp-2._ipp._tcp.home.arpa", T.SRV, () => del("ipp-2"));
    expect(rcode(after)).toBe(RCODE.NXDOMAIN);
  });

  it("the apex's DNS-SD browse list when a service comes, loses its last healthy instance, and goes", async () => {
    const browse = "_services._dns-sd._udp.home.arpa";
    let [before, after] = await around(browse, T.PTR, () => put("mqtt-1", { name: "mqtt", address: "10.6.0.1", port: 1883 }));
    expect(said(before)).not.toContain("PTR _mqtt._tcp.home.arpa");
    expect(said(after)).toContain("PTR _mqtt._tcp.home.arpa");
    [, after] = await around(browse, T.PTR, () => put("mqtt-1", { name: "mqtt", address: "10.6.0.1", port: 1883, tags: ["udp"] }));
    expect(said(after)).toContain("PTR _mqtt._udp.home.arpa");
    [, after] = await around(browse, T.PTR, () => server.discovery.registry.setHealth("mqtt-1", "unhealthy"));
    expect(said(after)).not.toContain("PTR _mqtt._tcp.home.arpa");
    server.discovery.registry.setHealth("mqtt-1", "healthy");
    [, after] = await around(browse, T.PTR, () => del("mqtt-1"));
    expect(said(after)).not.toContain("PTR _mqtt._tcp.home.arpa");
  });

  it("<node>.node when an instance comes to a node, moves to another, and leaves", async () => {
    let [before, after] = await around("pi.node.home.arpa", T.A, () => put("cam-1", { name: "cam", address: "10.7.0.1", port: 554, nodeId: "pi" }));
    expect(rcode(before)).toBe(RCODE.NXDOMAIN);
    expect(said(after)).toEqual(["A 10.7.0.1"]);
    await ask("zero.node.home.arpa", T.A); // cached NXDOMAIN
    [, after] = await around("pi.node.home.arpa", T.A, () => put("cam-1", { name: "cam", address: "10.7.0.1", port: 554, nodeId: "zero" }));
    expect(rcode(after)).toBe(RCODE.NXDOMAIN);
    expect(said(await ask("zero.node.home.arpa", T.A))).toEqual(["A 10.7.0.1"]);
    [, after] = await around("zero.node.home.arpa", T.A, () => put("cam-1", { name: "cam", address: "10.7.0.9", port: 554, nodeId: "zero" }));
    expect(said(after)).toEqual(["A 10.7.0.9"]);
    [, after] = await around("zero.node.home.arpa", T.A, () => del("cam-1"));
    expect(rcode(after)).toBe(RCODE.NXDOMAIN);
  });

  it("<hex>.addr and the reverse names (in-addr.arpa, ip6.arpa) when an address comes, is renamed, and moves", async () => {
    let [before, after] = await around("0a080001.addr.home.arpa", T.A, () => put("nas-1", { name: "files", address: "10.8.0.1", port: 445 }));
    expect(rcode(before)).toBe(RCODE.NXDOMAIN);
    expect(said(after)).toEqual(["A 10.8.0.1"]);
    [before, after] = await around("1.0.8.10.in-addr.arpa", T.PTR, () => put("nas-1", { name: "share", address: "10.8.0.1", port: 445 }));
    expect(said(before)).toEqual(["PTR files.service.home.arpa"]);
    expect(said(after)).toEqual(["PTR share.service.home.arpa"]);
    await ask("2.0.8.10.in-addr.arpa", T.PTR); // cached REFUSED: not a zone of ours yet
    [, after] = await around("1.0.8.10.in-addr.arpa", T.PTR, () => put("nas-1", { name: "share", address: "10.8.0.2", port: 445 }));
    expect(rcode(after)).toBe(RCODE.REFUSED);
    expect(said(await ask("2.0.8.10.in-addr.arpa", T.PTR))).toEqual(["PTR share.service.home.arpa"]);
    expect(rcode(await ask("0a080001.addr.home.arpa", T.A))).toBe(RCODE.NXDOMAIN);

    const six = `${[..."fd000000000000000000000000000008"].reverse().join(".")}.ip6.arpa`;
    [before, after] = await around(six, T.PTR, () => put("nas-6", { name: "files6", address: "fd00::8", port: 445 }));
    expect(rcode(before)).toBe(RCODE.REFUSED);
    expect(said(after)).toEqual(["PTR files6.service.home.arpa"]);
    [, after] = await around("fd000000000000000000000000000008.addr.home.arpa", T.AAAA, () => put("nas-6", { name: "files6", address: "fd00::9", port: 445 }));
    expect(rcode(after)).toBe(RCODE.NXDOMAIN);
    await del("nas-1");
    await del("nas-6");
  });

  it("the apex SOA's serial follows every change", async () => {
    const [before, after] = await around("home.arpa", T.SOA, () => put("serial-1", { name: "serial", address: "10.9.0.1", port: 1 }));
    expect(said(after)).not.toEqual(said(before));
    await del("serial-1");
  });
});

describe("a cached answer after a change elsewhere", () => {
  it("stays cached: another service's re-registration, health and removal do not drop it", async () => {
    await put("keep-1", { name: "keep", address: "10.10.0.1", port: 80 });
    await put("other-1", { name: "other", address: "10.10.0.2", port: 80, nodeId: "elsewhere" });
    const asked: [string, number][] = [
      ["keep.service.home.arpa", T.A],
      ["_keep._tcp.service.home.arpa", T.SRV],
      ["nas.node.home.arpa", T.A],
      ["0a0a0001.addr.home.arpa", T.A],
      ["1.0.10.10.in-addr.arpa", T.PTR],
      ["nothing.service.home.arpa", T.A],
    ];
    const first = await Promise.all(asked.map(([n, t]) => ask(n, t)));
    const { cacheHits, cacheMisses, cacheRefreshes: refreshes } = server.dns.stats();
    await put("other-1", { name: "other", address: "10.10.0.2", port: 81, nodeId: "elsewhere", metadata: { rev: "2" } });
    server.discovery.registry.setHealth("other-1", "unhealthy");
    await del("other-1");
    const again = [];
    for (const [n, t] of asked) {
      const misses = server.dns.stats().cacheMisses;
      again.push(await ask(n, t));
      expect(server.dns.stats().cacheMisses, `${n} was dropped`).toBe(misses);
    }
    expect(again.map(said)).toEqual(first.map(said));
    expect(server.dns.stats().cacheMisses).toBe(cacheMisses);
    expect(server.dns.stats().cacheHits).toBe(cacheHits + asked.length);
    // Nor were they dropped and built again at the change (which would hide a drop from the misses).
    expect(server.dns.stats().cacheRefreshes).toBe(refreshes);
    await del("keep-1");
  });

  it("is built again at the change when it had been asked: the first query after it is a hit, and shows it", async () => {
    await put("hot-1", { name: "hot", address: "10.20.0.1", port: 80 });
    await ask("hot.service.home.arpa", T.A); // built (a miss), then sent
    const stats = () => server.dns.stats();
    let { cacheMisses, cacheRefreshes } = stats();
    await put("hot-2", { name: "hot", address: "10.20.0.2", port: 80 });
    expect(stats().cacheRefreshes).toBe(cacheRefreshes + 1);
    expect(said(await ask("hot.service.home.arpa", T.A))).toEqual(["A 10.20.0.1", "A 10.20.0.2"]);
    expect(stats().cacheMisses).toBe(cacheMisses); // a hit: built at the change
    // Built at a change and not asked before the next one: not built again (a name nobody asks costs nothing).
    await put("hot-3", { name: "hot", address: "10.20.0.3", port: 80 });
    ({ cacheMisses, cacheRefreshes } = stats());
    await del("hot-1");
    expect(stats().cacheRefreshes).toBe(cacheRefreshes);
    expect(said(await ask("hot.service.home.arpa", T.A))).toEqual(["A 10.20.0.2", "A 10.20.0.3"]);
    expect(stats().cacheMisses).toBe(cacheMisses + 1);
    // The same for each EDNS state apart, and for a health change (no write through the API).
    const plain = async () => {
      const raw = await udp(server.dnsAddress.port, query("hot.service.home.arpa", T.A, { id: 7 }));
      return said(decode(raw!));
    };
    await plain();
    ({ cacheMisses, cacheRefreshes } = stats());
    server.discovery.registry.setHealth("hot-3", "unhealthy");
    await Promise.resolve();
    expect(stats().cacheRefreshes).toBe(cacheRefreshes + 2); // with EDNS and without
    expect(await plain()).toEqual(["A 10.20.0.2"]);
    expect(said(await ask("hot.service.home.arpa", T.A))).toEqual(["A 10.20.0.2"]);
    expect(stats().cacheMisses).toBe(cacheMisses);
    await del("hot-2");
    await del("hot-3");
  });
});
