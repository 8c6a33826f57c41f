// Zone files served beside the registry: a file for the server's own domain merges with the registry's names.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { api, startTestServer } from "../helpers.js";
import { decode, Packet, query, resolverFor, udp } from "./helpers.js";

const HOME = `$ORIGIN home.arpa.
$TTL 300
@       IN SOA ns.home.arpa. hostmaster.home.arpa. 2024060101 1h 10m 1w 60
        IN NS  ns.home.arpa.
nas     IN A   192.168.1.10
files   IN CNAME nas
gone    IN CNAME nowhere
_ipp._tcp IN SRV 0 0 631 nas
`;
const LAB = `$ORIGIN lab.example.
@       IN SOA ns.lab.example. admin.lab.example. 7 1h 10m 1w 30
pi      IN A   10.20.0.5
`;
const REVERSE = `$ORIGIN 1.168.192.in-addr.arpa.
@       IN SOA ns.home.arpa. hostmaster.home.arpa. 1 1h 10m 1w 60
10      IN PTR nas.home.arpa.
`;

let dir: string;
let server: ServerHandle;
let resolver: ReturnType<typeof resolverFor>;
const code = (p: Promise<unknown>) => p.then(() => "answered", (err: NodeJS.ErrnoException) => err.code);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hd-zones-"));
  await writeFile(join(dir, "home.arpa.zone"), HOME);
  await writeFile(join(dir, "lab.example.zone"), LAB);
  await writeFile(join(dir, "1.168.192.in-addr.arpa.zone"), REVERSE);
  server = await startTestServer({ zonesDir: dir });
  resolver = resolverFor(server.dnsAddress.port);
  await api(server.url, "PUT", "/v1/services/web-1", { name: "web", address: "192.168.1.50", port: 80 });
});
afterAll(async () => {
  await server.stop();
  await rm(dir, { recursive: true });
});

describe("static zones", () => {
  it("serves a file's names beside the registry's in the same domain", async () => {
    expect(await resolver.resolve4("nas.home.arpa")).toEqual(["192.168.1.10"]);
    expect(await resolver.resolve4("web.service.home.arpa")).toEqual(["192.168.1.50"]);
    expect(await resolver.resolve4("files.home.arpa")).toEqual(["192.168.1.10"]);
    expect(await resolver.resolveCname("files.home.arpa")).toEqual(["nas.home.arpa"]);
  });

  it("uses the file's SOA for the whole domain, in positive and negative answers", async () => {
    expect(await resolver.resolveSoa("home.arpa")).toMatchObject({ serial: 2024060101, minttl: 60 });
    // The file's names: its minimum (60 s). The registry's, which come and go: --dns-negative-ttl (5 s) at most.
    for (const [name, ttl] of [["nothing.home.arpa", 60], ["nothing.service.home.arpa", 5], ["nobody.node.home.arpa", 5]] as const) {
      const r = decode((await udp(server.dnsAddress.port, query(name, Packet.TYPE.A)))!);
      expect(r.header.rcode, name).toBe(3);
      expect(r.authorities[0], name).toMatchObject({ type: Packet.TYPE.SOA, serial: 2024060101, ttl });
    }
    // a CNAME to a name that does not exist: NXDOMAIN with the CNAME (RFC 6604)
    const gone = decode((await udp(server.dnsAddress.port, query("gone.home.arpa", Packet.TYPE.A)))!);
    expect(gone.header.rcode).toBe(3);
    expect(gone.answers).toMatchObject([{ type: Packet.TYPE.CNAME, domain: "nowhere.home.arpa" }]);
  });

  it("serves a DNS-SD-shaped name the file defines from the file, and the registry's others from the registry", async () => {
    await api(server.url, "PUT", "/v1/services/ipp-1", { name: "ipp", address: "192.168.1.60", port: 631 });
    // toMatchObject: Node 24's c-ares results add fields (type, ttl).
    const srv = await resolver.resolveSrv("_ipp._tcp.home.arpa");
    expect(srv).toHaveLength(1);
    expect(srv[0]).toMatchObject({ name: "nas.home.arpa", port: 631, priority: 0, weight: 0 });
    expect(await resolver.resolvePtr("_web._tcp.home.arpa")).toEqual(["web-1._web._tcp.home.arpa"]);
    await api(server.url, "DELETE", "/v1/services/ipp-1");
  });

  it("serves other zones and reverse zones, with registered addresses' PTRs inside them", async () => {
    expect(await resolver.resolve4("pi.lab.example")).toEqual(["10.20.0.5"]);
    expect(await code(resolver.resolve4("x.lab.example"))).toBe("ENOTFOUND");
    expect(await resolver.reverse("192.168.1.10")).toEqual(["nas.home.arpa"]);
    expect(await resolver.reverse("192.168.1.50")).toEqual(["web.service.home.arpa"]);
    expect(await code(resolver.reverse("192.168.1.99"))).toBe("ENOTFOUND");
  });

  it("reloads on demand, and keeps the old zones when a file is broken", async () => {
    await writeFile(join(dir, "home.arpa.zone"), HOME.replace("192.168.1.10", "192.168.1.11"));
    expect(await server.reload()).toEqual({ ok: true, zones: 3 });
    expect(await resolver.resolve4("nas.home.arpa")).toEqual(["192.168.1.11"]);
    await writeFile(join(dir, "home.arpa.zone"), `${HOME}broken IN A 300.1.1.1\n`);
    const failed = await server.reload();
    expect(failed.ok).toBe(false);
    expect(!failed.ok && failed.error).toMatch(/home\.arpa\.zone:9: .*300\.1\.1\.1/);
    expect(await resolver.resolve4("nas.home.arpa")).toEqual(["192.168.1.11"]);
  });

  it("refuses to start on a broken zone file, naming the file and line", async () => {
    const bad = await mkdtemp(join(tmpdir(), "hd-badzone-"));
    await writeFile(join(bad, "home.arpa.zone"), `${HOME}web.service IN A 10.0.0.1\n`);
    await expect(startTestServer({ zonesDir: bad })).rejects.toThrow(/home\.arpa\.zone:9: /);
    await rm(bad, { recursive: true });
  });
});
