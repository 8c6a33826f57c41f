// Forwarding names outside the zone to an upstream resolver started here on loopback (a dns2 server).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { api, closedPort, startTestServer } from "../helpers.js";
import { decode, Packet, query, resolverFor, startUpstream, tcp, udp, type Upstream } from "./helpers.js";

let upstream: Upstream;
let server: ServerHandle;
let dead: ServerHandle;

beforeAll(async () => {
  upstream = await startUpstream();
  server = await startTestServer({ dnsUpstream: [{ host: "127.0.0.1", port: upstream.port }] });
  dead = await startTestServer({ dnsUpstream: [{ host: "127.0.0.1", port: await closedPort() }] });
  await api(server.url, "PUT", "/v1/services/web-1", { name: "web", address: "10.0.0.1", port: 80 });
});
afterAll(async () => {
  await Promise.all([server.stop(), dead.stop()]);
  await upstream.close();
});

const raFlag = (b: Buffer) => (b.readUInt16BE(2) >> 7) & 1;
/** A recursive A query with these labels as raw bytes (UTF-8), which dns2's encoder cannot write. */
const rawQuery = (labels: string[]) =>
  Buffer.concat([Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels.flatMap((l) => [Buffer.from([Buffer.byteLength(l)]), Buffer.from(l)]), Buffer.from([0, 0, 1, 0, 1])]);
const rcode = (b: Buffer) => b.readUInt16BE(2) & 15;

describe("forwarding with --dns-upstream", () => {
  it("forwards names outside the zone and sets RA", async () => {
    const resolver = resolverFor(server.dnsAddress.port);
    expect(await resolver.resolve4("example.test")).toEqual(["192.0.2.10"]);
    const raw = (await udp(server.dnsAddress.port, query("example.test", Packet.TYPE.A, { id: 4242 })))!;
    expect(raw.readUInt16BE(0)).toBe(4242);
    // Our answer to the client: recursion available, not authoritative (the upstream's AA is not ours to give).
    expect(raFlag(raw)).toBe(1);
    expect((raw.readUInt16BE(2) >> 10) & 1).toBe(0);
    expect(await resolver.resolve4("nope.test").catch((e: NodeJS.ErrnoException) => e.code)).toBe("ENOTFOUND");
  });

  it("still answers its own names itself, authoritatively, with RA set", async () => {
    const before = upstream.queries.length;
    const raw = (await udp(server.dnsAddress.port, query("web.service.home.arpa", Packet.TYPE.A)))!;
    expect(decode(raw).answers).toHaveLength(1);
    expect((raw.readUInt16BE(2) >> 10) & 1).toBe(1);
    expect(raFlag(raw)).toBe(1);
    expect(upstream.queries.length).toBe(before);
  });

  it("answers names in its zone that none of its names can hold (UTF-8, a space) itself: NXDOMAIN, never upstream", async () => {
    // Forwarded, such a name looped: a resolver that sends home.arpa to us sent it back (176 forwards for one query).
    const before = upstream.queries.length;
    for (const label of ["café", "w b", "a.b"]) {
      const raw = (await udp(server.dnsAddress.port, rawQuery([label, "service", "home", "arpa"])))!;
      expect(rcode(raw), label).toBe(3);
      expect((raw.readUInt16BE(2) >> 10) & 1, label).toBe(1); // AA
      expect(raw.readUInt16BE(8), label).toBe(1); // the SOA, as in any NXDOMAIN of ours
      expect(decode(raw).authorities[0], label).toMatchObject({ type: Packet.TYPE.SOA, name: "home.arpa", primary: "ns.home.arpa" });
    }
    expect(upstream.queries.length).toBe(before);
    // Outside the zone, such a name goes upstream like any other.
    await udp(server.dnsAddress.port, rawQuery(["café", "example", "test"]));
    expect(upstream.queries.length).toBe(before + 1);
  });

  it("refuses non-recursive queries for other names instead of forwarding them", async () => {
    const raw = (await udp(server.dnsAddress.port, query("example.test", Packet.TYPE.A, { rd: false })))!;
    expect(rcode(raw)).toBe(5);
  });

  it("asks over TCP when a TCP client's answer came back truncated", async () => {
    const [reply] = await tcp(server.dnsAddress.port, [query("big.example.test", Packet.TYPE.A)]);
    expect(decode(reply!).answers).toHaveLength(60);
    expect(upstream.queries.filter((q) => q.startsWith("big.example.test"))).toEqual(["big.example.test/udp", "big.example.test/tcp"]);
  });

  it("answers SERVFAIL when no upstream answers", async () => {
    const errors = async () => (await api(dead.url, "GET", "/v1/stats")).body.dns.errors as number;
    const before = await errors();
    const started = Date.now();
    const raw = (await udp(dead.dnsAddress.port, query("example.test", Packet.TYPE.A), 4_000))!;
    expect(rcode(raw)).toBe(2);
    // The port refused at once (ICMP port unreachable on the connected socket): no 2 s wait for it.
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(raFlag(raw)).toBe(1);
    // Counted (dns_errors_total: "failed in the handler or upstream"), so an alert on it sees a dead upstream.
    expect(await errors()).toBe(before + 1);
  });

  it("goes on to the next upstream at once when one refuses (nothing listening), and answers from it", async () => {
    const second = await startTestServer({ dnsUpstream: [{ host: "127.0.0.1", port: await closedPort() }, { host: "127.0.0.1", port: upstream.port }] });
    try {
      const started = Date.now();
      const raw = (await udp(second.dnsAddress.port, query("example.test", Packet.TYPE.A), 4_000))!;
      expect(rcode(raw)).toBe(0);
      expect(decode(raw).answers[0]).toMatchObject({ address: "192.0.2.10" });
      expect(Date.now() - started).toBeLessThan(1_000);
    } finally {
      await second.stop();
    }
  });
});
