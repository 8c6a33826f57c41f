// Java's JNDI DNS provider (in every JDK; Spring apps use it) against the built server: it asks ANY whenever
// more than one type is wanted and keeps what it asked for, so ANY must carry every RRset of the name.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api } from "../helpers.js";
import { startBuiltServer, type BuiltServer } from "./built-server.js";

const LOOKUP = fileURLToPath(new URL("./jndi/Lookup.java", import.meta.url));
let server: BuiltServer;

beforeAll(async () => {
  server = await startBuiltServer();
  await api(server.url, "POST", "/v1/services/bulk", {
    register: [
      { id: "w1", name: "web", address: "10.0.0.1", port: 8080, metadata: { team: "platform" } },
      { id: "w2", name: "web", address: "10.0.0.2", port: 8081 },
    ],
  });
});
afterAll(() => server.stop());

async function jndi(...queries: string[]): Promise<string[]> {
  const { stdout } = await promisify(execFile)("java", [LOOKUP, `127.0.0.1:${server.dnsPort}`, ...queries], { timeout: 60_000 });
  return stdout.trim().split("\n").sort();
}

describe("JNDI, as a Java app resolves names", () => {
  it("gets the SRV set at an RFC 2782 name when it asks for SRV and A, and SRV and TXT at a DNS-SD instance", async () => {
    const lines = await jndi("_web._tcp.service.home.arpa SRV,A", "w1._web._tcp.home.arpa SRV,TXT", "web.service.home.arpa A,AAAA");
    expect(lines).toEqual([
      "_web._tcp.service.home.arpa SRV 1 2560 8080 0a000001.addr.home.arpa.",
      "_web._tcp.service.home.arpa SRV 1 2560 8081 0a000002.addr.home.arpa.",
      "w1._web._tcp.home.arpa SRV 1 2560 8080 0a000001.addr.home.arpa.",
      "w1._web._tcp.home.arpa TXT version=0.0.0 team=platform",
      "web.service.home.arpa A 10.0.0.1",
      "web.service.home.arpa A 10.0.0.2",
    ]);
  });
});
