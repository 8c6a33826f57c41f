// --dns-log-queries: one info line per query, through real clients (c-ares, raw UDP and TCP).
import { Writable } from "node:stream";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { api, startTestServer } from "../helpers.js";
import { query, resolverFor, startUpstream, tcp, udp } from "./helpers.js";

interface Line {
  msg: string;
  client?: string;
  transport?: string;
  id?: number;
  name?: string;
  type?: string;
  rcode?: string;
  answers?: number;
  tc?: boolean;
  size?: number;
  ms?: number;
}

let server: ServerHandle | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

async function start(logQueries: boolean, upstreamPort?: number): Promise<{ server: ServerHandle; lines: () => Line[] }> {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  const upstream = upstreamPort === undefined ? {} : { dnsUpstream: [{ host: "127.0.0.1", port: upstreamPort }] };
  server = await startTestServer({ dnsLogQueries: logQueries, ...upstream }, { logger: pino({ level: "info" }, sink) });
  await api(server.url, "PUT", "/v1/services/web-1", { name: "web", address: "10.0.0.1", port: 80 });
  const lines = () =>
    chunks
      .join("")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Line)
      .filter((l) => l.msg === "dns query");
  return { server, lines };
}

describe("DNS query log (--dns-log-queries)", () => {
  it("logs each query once, with the client, the name as asked, the type, the rcode, the answer count and the time", async () => {
    const { server, lines } = await start(true);
    const port = server.dnsAddress.port;
    expect(await resolverFor(port).resolve4("web.service.home.arpa")).toEqual(["10.0.0.1"]);
    expect(await udp(port, query("WEB.Service.home.arpa", 33, { id: 0x2b2b }))).toBeDefined();
    await expect(resolverFor(port).resolve4("nothing.service.home.arpa")).rejects.toMatchObject({ code: "ENOTFOUND" });
    expect(await tcp(port, [query("web.service.home.arpa", 28, { id: 7 })])).toHaveLength(1);
    const reply = Buffer.from(query("web.service.home.arpa", 1));
    reply[2] = reply[2]! | 0x80; // a response (QR=1): dropped, and logged as dropped
    expect(await udp(port, reply, 200)).toBeUndefined();

    const logged = lines();
    expect(logged).toHaveLength(5);
    const [a, srv, nx, aaaa, dropped] = logged;
    expect(a).toMatchObject({ transport: "udp", name: "web.service.home.arpa.", type: "A", rcode: "NOERROR", answers: 1, tc: false });
    expect(a!.client).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(a!.size).toBeGreaterThan(12);
    expect(a!.ms).toBeGreaterThanOrEqual(0);
    expect(srv).toMatchObject({ id: 0x2b2b, name: "WEB.Service.home.arpa.", type: "SRV", rcode: "NOERROR", answers: 1 });
    expect(nx).toMatchObject({ name: "nothing.service.home.arpa.", type: "A", rcode: "NXDOMAIN", answers: 0 });
    expect(aaaa).toMatchObject({ transport: "tcp", id: 7, type: "AAAA", rcode: "NOERROR", answers: 0 });
    expect(dropped).toMatchObject({ rcode: "dropped" });
  });

  it("logs a forwarded query when the upstream's answer is back, with the upstream's rcode", async () => {
    const upstream = await startUpstream();
    try {
      const { server, lines } = await start(true, upstream.port);
      const resolver = resolverFor(server.dnsAddress.port);
      expect(await resolver.resolve4("example.test")).toEqual(["192.0.2.10"]);
      await expect(resolver.resolve4("missing.example.test")).rejects.toMatchObject({ code: "ENOTFOUND" });
      expect(lines()).toMatchObject([
        { name: "example.test.", type: "A", rcode: "NOERROR", answers: 1 },
        { name: "missing.example.test.", type: "A", rcode: "NXDOMAIN", answers: 0 },
      ]);
    } finally {
      await upstream.close();
    }
  });

  it("logs nothing per query without the flag", async () => {
    const { server, lines } = await start(false);
    expect(await resolverFor(server.dnsAddress.port).resolve4("web.service.home.arpa")).toEqual(["10.0.0.1"]);
    expect(lines()).toEqual([]);
  });
});
