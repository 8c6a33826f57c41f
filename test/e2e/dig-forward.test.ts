// dig through the built server configured with --dns-upstream, against an upstream started here on loopback.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { AddressInfo } from "node:net";
import dns2 from "dns2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBuiltServer, type BuiltServer } from "./built-server.js";

const { Packet } = dns2;
let server: BuiltServer;
let upstream: ReturnType<typeof dns2.createUDPServer>;

beforeAll(async () => {
  upstream = dns2.createUDPServer(((request: InstanceType<typeof Packet>, send: (r: InstanceType<typeof Packet>) => void) => {
    const response = Packet.createResponseFromRequest(request);
    const q = request.questions[0]!;
    response.header.ra = 1;
    if (q.name.toLowerCase() === "example.test") {
      response.answers.push({ name: q.name, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 60, address: "192.0.2.80" } as never);
    } else response.header.rcode = 3;
    send(response);
  }) as never);
  await upstream.listen(0, "127.0.0.1");
  const port = (upstream.address() as AddressInfo).port;
  server = await startBuiltServer({ HD_DNS_UPSTREAM: `127.0.0.1:${port}` });
});
afterAll(async () => {
  await server.stop();
  upstream.close();
});

// Asynchronous: the upstream lives in this process and must keep answering while dig waits.
const run = promisify(execFile);
const dig = async (...args: string[]) => (await run("dig", ["@127.0.0.1", "-p", String(server.dnsPort), "+time=3", "+tries=1", ...args], { encoding: "utf8" })).stdout;

describe("dig with forwarding", () => {
  it("forwards other names and sets RA", async () => {
    const out = await dig("example.test");
    expect(out).toMatch(/status: NOERROR/);
    expect(out).toMatch(/flags: qr rd ra;/);
    expect((await dig("+short", "example.test")).trim()).toBe("192.0.2.80");
    expect(await dig("nothing.test")).toMatch(/status: NXDOMAIN/);
  });

  it("keeps answering its own domain authoritatively", async () => {
    expect(await dig("home.arpa", "SOA")).toMatch(/flags: qr aa rd ra;/);
  });
});
