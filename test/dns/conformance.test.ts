// The corners of issue 16 the trials found: ANY at every kind of name, QCLASS ANY, `_udp`, reverse names' own SOA,
// the TXT keys an operator publishes, and a service too large for one message. Raw packets, decoded with dns2.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { api, startTestServer } from "../helpers.js";
import { decode, Packet, query, tcp, udp } from "./helpers.js";

let server: ServerHandle;
let port: number;
const T = Packet.TYPE;
const ask = async (name: string, type: number, edns = true) => decode((await udp(port, query(name, type, edns ? { edns: { udpSize: 4096 } } : {})))!);
const types = (records: { type: number }[]) => [...new Set(records.map((r) => r.type))].sort((a, b) => a - b);

beforeAll(async () => {
  server = await startTestServer({ dnsTxtKeys: ["team", "path"] });
  port = server.dnsAddress.port;
  await api(server.url, "POST", "/v1/services/bulk", {
    register: [
      { id: "web-1", name: "web", address: "10.0.0.1", port: 80, metadata: { team: "platform", password: "hunter2" } },
      { id: "web-6", name: "web", address: "fd00::6", port: 80 },
      { id: "dns-1", name: "resolver", address: "10.0.0.53", port: 53, tags: ["udp"] },
      { id: "dns-2", name: "resolver", address: "10.0.0.54", port: 853 },
    ],
  });
});
afterAll(() => server.stop());

describe("ANY", () => {
  it("answers at an RFC 2782 name with its SRV set (JNDI asks ANY for {SRV, A})", async () => {
    const r = await ask("_web._tcp.service.home.arpa", T.ANY);
    expect(r.header.rcode).toBe(0);
    expect(types(r.answers)).toEqual([T.SRV]);
    expect(r.answers).toHaveLength(2);
  });

  it("answers at a DNS-SD instance name with its SRV and its TXT", async () => {
    const r = await ask("web-1._web._tcp.home.arpa", T.ANY);
    expect(types(r.answers)).toEqual([T.TXT, T.SRV]);
  });

  it("answers at a DNS-SD type with its PTRs and the SRV set", async () => {
    expect(types((await ask("_web._tcp.home.arpa", T.ANY)).answers)).toEqual([T.PTR, T.SRV]);
  });

  it("answers at a service name with the A and the AAAA set, and at the apex with SOA and NS", async () => {
    expect(types((await ask("web.service.home.arpa", T.ANY)).answers)).toEqual([T.A, T.AAAA]);
    expect(types((await ask("home.arpa", T.ANY)).answers)).toEqual([T.NS, T.SOA]);
  });
});

describe("QCLASS ANY", () => {
  it("is answered, but never as authoritative (RFC 6895 3.2)", async () => {
    const q = query("web.service.home.arpa", T.A);
    q.writeUInt16BE(255, q.length - 2); // QCLASS ANY
    const r = (await udp(port, q))!;
    expect((r.readUInt16BE(2) >> 10) & 1).toBe(0);
    expect(decode(r).answers.length).toBeGreaterThan(0);
    const inClass = (await udp(port, query("web.service.home.arpa", T.A)))!;
    expect((inClass.readUInt16BE(2) >> 10) & 1).toBe(1);
  });
});

describe("_udp", () => {
  it("selects the instances tagged udp, as Consul does (_tcp: every instance)", async () => {
    const udpSet = await ask("_resolver._udp.service.home.arpa", T.SRV);
    expect(udpSet.answers.map((a) => (a as unknown as { port: number }).port)).toEqual([53]);
    expect((await ask("_resolver._tcp.service.home.arpa", T.SRV)).answers).toHaveLength(2);
    const none = await ask("_web._udp.service.home.arpa", T.SRV);
    expect([none.header.rcode, none.answers.length]).toEqual([0, 0]); // NODATA: the service exists
    expect((await ask("_resolver._udp.home.arpa", T.PTR)).answers.map((a) => (a as unknown as { domain: string }).domain)).toEqual(["dns-1._resolver._udp.home.arpa"]);
    const browse = (await ask("_services._dns-sd._udp.home.arpa", T.PTR)).answers.map((a) => (a as unknown as { domain: string }).domain);
    expect(browse).toEqual(expect.arrayContaining(["_resolver._tcp.home.arpa", "_resolver._udp.home.arpa", "_web._tcp.home.arpa"]));
    expect(browse).not.toContain("_web._udp.home.arpa");
  });
});

describe("reverse names", () => {
  it("carry their own zone's SOA in a negative answer, not home.arpa's (RFC 2308 2.2)", async () => {
    const r = await ask("1.0.0.10.in-addr.arpa", T.TXT);
    expect([r.header.rcode, r.answers.length]).toEqual([0, 0]);
    expect(r.authorities.map((a) => [a.name, a.type])).toEqual([["1.0.0.10.in-addr.arpa", T.SOA]]);
    expect((await ask("1.0.0.10.in-addr.arpa", T.PTR)).answers.map((a) => (a as unknown as { domain: string }).domain)).toEqual(["web.service.home.arpa"]);
  });
});

describe("tags that are not DNS labels", () => {
  it("are in the API and filter its queries, and never in DNS: the instance answers by its label tags as before", async () => {
    const rule = "traefik.http.routers.gw.rule=Host(`gw.home.arpa`)";
    expect((await api(server.url, "PUT", "/v1/services/gw-1", { name: "gw", address: "10.0.0.80", port: 80, tags: [rule, "Edge"] })).status).toBe(201);
    const found = await api(server.url, "GET", `/v1/services?tag=${encodeURIComponent("traefik.http.routers.gw.rule=Host(`gw.home.arpa`)")}`);
    expect(found.body.services.map((e: { id: string; tags: string[] }) => [e.id, e.tags])).toEqual([["gw-1", [rule, "edge"]]]);
    expect((await ask("edge.gw.service.home.arpa", T.A)).answers).toHaveLength(1);
    expect((await ask("_gw._edge.service.home.arpa", T.SRV)).answers).toHaveLength(1);
  });
});

describe("TXT keys", () => {
  it("publishes only the metadata keys --dns-txt-keys names (metadata stays in the API)", async () => {
    const r = await ask("web-1._web._tcp.home.arpa", T.TXT);
    expect((r.answers[0] as unknown as { data: string[] }).data).toEqual(["version=0.0.0", "team=platform"]);
  });
});

describe("a service too big for one message", () => {
  it("answers 2,000 instances with 128 records over TCP, whatever the size, and answers again from the cache", async () => {
    const register = Array.from({ length: 2000 }, (_, i) => ({ id: `big-${i}`, name: "big", address: `10.8.${i >> 8}.${i & 255}`, port: 1000 + (i % 50000) }));
    await api(server.url, "POST", "/v1/services/bulk", { register });
    const [srv] = await tcp(port, [query("_big._tcp.service.home.arpa", T.SRV)]);
    const r = decode(srv!);
    expect([r.header.rcode, r.answers.length, r.additionals.length]).toEqual([0, 128, 128]);
    const stats = (await api(server.url, "GET", "/v1/stats")).body.dns;
    expect(stats.errors).toBe(0);
  });
});
