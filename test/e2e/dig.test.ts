// dig (dnsutils) against the built server started as the README says.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api } from "../helpers.js";
import { startBuiltServer, type BuiltServer } from "./built-server.js";

let server: BuiltServer;
const zonesDir = mkdtempSync(join(tmpdir(), "hd-e2e-zones-"));
const zone = (nas: string) => `$ORIGIN home.arpa.\n@ IN SOA ns.home.arpa. hostmaster.home.arpa. 1 3600 600 86400 5\n  IN NS ns.home.arpa.\nnas IN A ${nas}\n`;

function dig(...args: string[]): string {
  return execFileSync("dig", ["@127.0.0.1", "-p", String(server.dnsPort), "+norec", "+time=2", "+tries=1", ...args], { encoding: "utf8" });
}
const status = (out: string) => /status: (\w+)/.exec(out)?.[1];
const flagsOf = (out: string) => /;; flags: ([a-z ]+);/.exec(out)?.[1]?.split(" ") ?? [];
const section = (out: string, name: string) => {
  const m = new RegExp(`;; ${name} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(out);
  return m ? m[1]!.split("\n").filter((l) => l && !l.startsWith(";")) : [];
};

beforeAll(async () => {
  writeFileSync(join(zonesDir, "home.arpa.zone"), zone("192.168.1.10"));
  server = await startBuiltServer({ HD_ZONES_DIR: zonesDir });
  const register = [
    { id: "web-1", name: "web", address: "10.0.0.1", port: 8080, tags: ["prod", "eu"] },
    { id: "web-2", name: "web", address: "10.0.0.2", port: 8081, tags: ["prod"] },
    ...Array.from({ length: 60 }, (_, i) => ({ id: `many-${i}`, name: "many", address: `10.1.0.${i + 1}`, port: 9000 + i })),
  ];
  const r = await api(server.url, "POST", "/v1/services/bulk", { register });
  expect(r.status).toBe(200);
});
afterAll(async () => {
  await server.stop();
  rmSync(zonesDir, { recursive: true, force: true });
});

describe("dig against the built server", () => {
  it("SRV with glue whose names are the targets", () => {
    const out = dig("_web._tcp.service.home.arpa", "SRV");
    expect(status(out)).toBe("NOERROR");
    expect(flagsOf(out)).toEqual(expect.arrayContaining(["qr", "aa"]));
    expect(flagsOf(out)).not.toContain("ra");
    const answers = section(out, "ANSWER");
    expect(answers.map((l) => l.split(/\s+/).slice(4).join(" "))).toEqual(["1 2560 8080 0a000001.addr.home.arpa.", "1 2560 8081 0a000002.addr.home.arpa."]);
    const glue = section(out, "ADDITIONAL").map((l) => l.split(/\s+/));
    expect(glue.map((g) => [g[0], g[3], g[4]])).toEqual([
      ["0a000001.addr.home.arpa.", "A", "10.0.0.1"],
      ["0a000002.addr.home.arpa.", "A", "10.0.0.2"],
    ]);
  });

  it("tag and multi-tag names", () => {
    expect(dig("+short", "prod.web.service.home.arpa").trim().split("\n").sort()).toEqual(["10.0.0.1", "10.0.0.2"]);
    expect(dig("+short", "eu.prod.web.service.home.arpa").trim()).toBe("10.0.0.1");
    expect(dig("+short", "_web._eu.service.home.arpa", "SRV").trim()).toBe("1 2560 8080 0a000001.addr.home.arpa.");
  });

  it("NXDOMAIN and NODATA, both with the SOA", () => {
    const nx = dig("nothing.service.home.arpa");
    expect(status(nx)).toBe("NXDOMAIN");
    expect(section(nx, "AUTHORITY")[0]).toMatch(/^home\.arpa\.\s+5\s+IN\s+SOA\s+ns\.home\.arpa\. hostmaster\.home\.arpa\. \d+ 3600 600 86400 5$/);
    const nodata = dig("web.service.home.arpa", "AAAA");
    expect(status(nodata)).toBe("NOERROR");
    expect(section(nodata, "ANSWER")).toEqual([]);
    expect(section(nodata, "AUTHORITY")[0]).toContain("SOA");
  });

  it("TC over UDP without EDNS, then the full set over TCP", () => {
    const udp = dig("+noedns", "+ignore", "_many._tcp.service.home.arpa", "SRV");
    expect(flagsOf(udp)).toContain("tc");
    expect(section(udp, "ANSWER")).toEqual([]);
    const tcp = dig("+tcp", "_many._tcp.service.home.arpa", "SRV");
    expect(flagsOf(tcp)).not.toContain("tc");
    expect(section(tcp, "ANSWER")).toHaveLength(60);
    expect(section(tcp, "ADDITIONAL")).toHaveLength(60);
    // and dig's own fallback: a truncated UDP answer retried over TCP
    expect(section(dig("+noedns", "_many._tcp.service.home.arpa", "SRV"), "ANSWER")).toHaveLength(60);
  });

  it("echoes EDNS, and answers version 1 with BADVERS", () => {
    const out = dig("+edns=0", "+bufsize=1232", "web.service.home.arpa");
    expect(out).toContain("; EDNS: version: 0, flags:; udp: 4096");
    const bad = dig("+edns=1", "+noednsnegotiation", "web.service.home.arpa");
    expect(status(bad)).toBe("BADVERS");
    expect(section(bad, "ANSWER")).toEqual([]);
  });

  it("serves a zone-file record beside the registry's names, and reloads it on SIGHUP", async () => {
    expect(dig("+short", "nas.home.arpa").trim()).toBe("192.168.1.10");
    expect(dig("+short", "web.service.home.arpa").trim().split("\n").sort()).toEqual(["10.0.0.1", "10.0.0.2"]);
    writeFileSync(join(zonesDir, "home.arpa.zone"), zone("192.168.1.11"));
    process.kill(server.pid, "SIGHUP");
    const end = Date.now() + 5_000;
    while (!server.log().includes("static zones reloaded") && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    expect(dig("+short", "nas.home.arpa").trim()).toBe("192.168.1.11");
  });

  it("refuses other zones and echoes the question's case", () => {
    expect(status(dig("example.com"))).toBe("REFUSED");
    expect(section(dig("WeB.Service.Home.Arpa"), "ANSWER")[0]).toMatch(/^WeB\.Service\.Home\.Arpa\.\s+5\s+IN\s+A\s+10\.0\.0\.[12]$/);
  });
});
