// Forwarding names outside the zone to an upstream resolver started here on loopback (a dns2 server).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/server.js";
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
const rcode = (b: Buffer) => b.readUInt16BE(2) & 15;

describe("forwarding with --dns-upstream", () => {
  it("forwards names outside the zone and sets RA", async () => {
    const resolver = resolverFor(server.dnsAddress.port);
    expect(await resolver.resolve4("example.test")).toEqual(["192.0.2.10"]);
    const raw = (await udp(server.dnsAddress.port, query("example.test", Packet.TYPE.A, { id: 4242 })))!;
    expect(raw.readUInt16BE(0)).toBe(4242);
    expect(raFlag(raw)).toBe(1);
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
    const raw = (await udp(dead.dnsAddress.port, query("example.test", Packet.TYPE.A), 4_000))!;
    expect(rcode(raw)).toBe(2);
    expect(raFlag(raw)).toBe(1);
  });
});
