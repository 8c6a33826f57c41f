// Trusted and untrusted clients (issue 16, "bounds"): never an open resolver, UDP answers to untrusted clients at
// most 1232 bytes, and a response rate limit per network with slip.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { ClientPolicy, localNetworks, Verdict } from "../../src/dns/clients.js";
import { api, startTestServer } from "../helpers.js";
import { decode, Packet, query, startUpstream, tcp, udp, type Upstream } from "./helpers.js";

describe("ClientPolicy", () => {
  const policy = (now: { t: number }, rate = 10, slip = 2) => new ClientPolicy({ trusted: ["127.0.0.0/8", "192.168.1.0/24", "fd00::/8"], rate, slip, now: () => now.t });

  it("tells trusted addresses from others, IPv4, IPv6 and IPv4-mapped", () => {
    const p = policy({ t: 0 });
    expect(p.of("127.0.0.1").trusted).toBe(true);
    expect(p.of("192.168.1.77").trusted).toBe(true);
    expect(p.of("::ffff:192.168.1.77").trusted).toBe(true);
    expect(p.of("fd00::5").trusted).toBe(true);
    expect(p.of("192.168.2.1").trusted).toBe(false);
    expect(p.of("2001:db8::1").trusted).toBe(false);
  });

  it("sends a burst of `rate`, then slips every 2nd and drops the rest; refills at `rate` per second", () => {
    const now = { t: 1_000 };
    const p = policy(now);
    const c = p.of("203.0.113.9");
    const verdicts = Array.from({ length: 16 }, () => p.admit(c));
    expect(verdicts.slice(0, 10).every((v) => v === Verdict.Send)).toBe(true);
    expect(verdicts.slice(10)).toEqual([Verdict.Drop, Verdict.Slip, Verdict.Drop, Verdict.Slip, Verdict.Drop, Verdict.Slip]);
    now.t += 500; // half a second: 5 tokens
    expect(Array.from({ length: 6 }, () => p.admit(c)).filter((v) => v === Verdict.Send)).toHaveLength(5);
    // Trusted clients are never limited.
    const trusted = p.of("127.0.0.1");
    expect(Array.from({ length: 1_000 }, () => p.admit(trusted)).every((v) => v === Verdict.Send)).toBe(true);
  });

  it("shares one bucket across a /24 (and a /56): rotating through a victim's addresses does not help", () => {
    const p = policy({ t: 0 }, 4, 0);
    const sent = Array.from({ length: 8 }, (_, i) => p.admit(p.of(`198.51.100.${i + 1}`))).filter((v) => v === Verdict.Send);
    expect(sent).toHaveLength(4);
    const v6 = Array.from({ length: 8 }, (_, i) => p.admit(p.of(`2001:db8:0:${i.toString(16)}::1`))).filter((v) => v === Verdict.Send);
    expect(v6).toHaveLength(4); // 2001:db8:0:0..7 share the /56 2001:0db8:0000:00
    expect(p.admit(p.of("2001:db8:0:100::1"))).toBe(Verdict.Send); // another /56
    // Another /24 has its own bucket.
    expect(p.admit(p.of("198.51.101.1"))).toBe(Verdict.Send);
    // An IPv4 client on a dual-stack socket (IPv4-mapped) counts in its IPv4 /24, not by its own text.
    const mapped = policy({ t: 0 }, 4, 0);
    const m = Array.from({ length: 8 }, (_, i) => mapped.admit(mapped.of(`::ffff:203.0.113.${i + 1}`))).filter((v) => v === Verdict.Send);
    expect(m).toHaveLength(4);
    expect(mapped.admit(mapped.of("203.0.113.50"))).toBe(Verdict.Drop); // the same /24, written as IPv4
  });

  it("remembers a bounded number of addresses", () => {
    const p = policy({ t: 0 });
    for (let i = 0; i < 200_000; i++) p.of(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    const sizes = p as unknown as { byAddress: Map<string, unknown>; byNetwork: Map<string, unknown> };
    expect(sizes.byAddress.size).toBeLessThanOrEqual(65_536);
    expect(sizes.byNetwork.size).toBeLessThanOrEqual(65_536);
  });

  it("trusts loopback and the listen address's networks by default", () => {
    expect(localNetworks("127.0.0.1")).toEqual(["127.0.0.0/8", "::1/128", "127.0.0.1/8"]);
    const all = localNetworks("0.0.0.0");
    expect(all).toContain("127.0.0.0/8");
    expect(all.length).toBeGreaterThanOrEqual(2);
  });
});

describe("a server whose loopback clients are untrusted", () => {
  let server: ServerHandle;
  let upstream: Upstream;
  let port: number;
  beforeAll(async () => {
    upstream = await startUpstream();
    // Only 10.99.0.0/16 is trusted: the test's own queries, from 127.0.0.1, are an outsider's.
    server = await startTestServer({ dnsUpstream: [{ host: "127.0.0.1", port: upstream.port }], dnsTrustedNetworks: ["10.99.0.0/16"], dnsRateLimit: 20 });
    port = server.dnsAddress.port;
    const register = Array.from({ length: 200 }, (_, i) => ({ id: `many-${i}`, name: "many", address: `10.2.${i >> 8}.${i & 255}`, port: 80 }));
    await api(server.url, "POST", "/v1/services/bulk", { register });
  });
  afterAll(async () => {
    await server.stop();
    await upstream.close();
  });

  it("is not an open resolver: names outside ours are REFUSED, over UDP and TCP, and never go upstream", async () => {
    const before = upstream.queries.length;
    const r = decode((await udp(port, query("example.test", Packet.TYPE.A)))!);
    expect(r.header.rcode).toBe(5);
    const [t] = await tcp(port, [query("example.test", Packet.TYPE.A)]);
    expect(decode(t!).header.rcode).toBe(5);
    expect(upstream.queries.length).toBe(before);
    expect(server.dns.stats().forwardRefused).toBe(2);
    // Our own names are answered as to anyone.
    expect(decode((await udp(port, query("home.arpa", Packet.TYPE.SOA)))!).answers.length).toBe(1);
  });

  it("answers an untrusted client over UDP with at most 1232 bytes, even when it offers 4096; TCP has the whole answer", async () => {
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // a full bucket
    const q = query("many.service.home.arpa", Packet.TYPE.ANY, { edns: { udpSize: 4096 } });
    const reply = (await udp(port, q))!;
    expect(reply.length).toBeLessThanOrEqual(1232);
    expect(reply[2]! & 0x02).toBe(0x02); // TC: 128 A records do not fit
    const [whole] = await tcp(port, [q]);
    expect(decode(whole!).answers.length).toBe(128);
    // The amplification a spoofed source can get: bytes out per byte in.
    expect(reply.length / q.length).toBeLessThan(30);
  });

  it("limits UDP responses per network: over the rate, one in two goes truncated (retry over TCP), the rest are dropped", async () => {
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const q = query("home.arpa", Packet.TYPE.SOA); // fits: only a slip is truncated
    const replies = await Promise.all(Array.from({ length: 60 }, () => udp(port, q, 800)));
    const got = replies.filter((r): r is Buffer => r !== undefined);
    const slipped = got.filter((r) => (r[2]! & 0x02) !== 0 && r.readUInt16BE(6) === 0 && r.readUInt16BE(10) === 0);
    // 20 sent in full (the burst; a few more may refill while the test runs), ~20 slipped, ~20 dropped.
    expect(got.length).toBeLessThan(50);
    expect(got.length).toBeGreaterThanOrEqual(35);
    expect(slipped.length).toBeGreaterThanOrEqual(15);
    const stats = server.dns.stats();
    expect(stats.rateLimited).toBeGreaterThanOrEqual(15);
    expect(stats.slipped).toBe(slipped.length);
    // TCP is never limited.
    const [t] = await tcp(port, [q]);
    expect(decode(t!).header.rcode).toBe(0);
  });
});
