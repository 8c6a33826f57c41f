// Property tests of the DNS face: any name classifies without throwing, every answer the server builds decodes
// with dns2 and carries the question back, and the zone-file parser lets nothing but a ZoneError escape.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { classify } from "../../src/dns/names.js";
import { loadZones, ZoneError } from "../../src/dns/index.js";
import { api, startTestServer } from "../helpers.js";
import { decode, Packet } from "./helpers.js";

const T = Packet.TYPE;
const zone = { domain: ["home", "arpa"], cluster: "homelab" };
const label = fc.oneof(
  fc.constantFrom("service", "node", "addr", "_tcp", "_udp", "_sub", "_dns-sd", "_services", "in-addr", "ip6", "arpa", "home", "homelab", "ns", "web", "_web", "0a000001", "1", "255", "f"),
  fc.stringMatching(/^[a-z0-9_-]{1,12}$/),
  // Any bytes but the dot, which the text form of a name cannot hold inside a label.
  fc.string({ minLength: 1, maxLength: 12 }).filter((l) => !l.includes(".")),
);
const name = fc.array(label, { maxLength: 8 }).chain((ls) => fc.constantFrom([...ls, "home", "arpa"], ls, [...ls, "in-addr", "arpa"], [...ls, "ip6", "arpa"]));

describe("DNS properties", () => {
  it("classifies any name without throwing", () => {
    fc.assert(
      fc.property(name, (labels) => {
        expect(typeof classify(labels, zone).kind).toBe("string");
      }),
      { numRuns: 5000 },
    );
  });

  describe("answers", () => {
    let server: ServerHandle;
    beforeAll(async () => {
      server = await startTestServer();
      await api(server.url, "POST", "/v1/services/bulk", {
        register: Array.from({ length: 60 }, (_, i) => ({
          id: `web.${i}`,
          name: i % 3 === 0 ? "web" : i % 3 === 1 ? "db" : "files",
          address: i % 5 === 0 ? `fd00::${i}` : i % 7 === 0 ? "nas.lan" : `10.0.0.${i}`,
          port: 1000 + i,
          tags: i % 2 ? ["prod", "udp"] : ["eu"],
          metadata: { team: `t${i}`, path: "/".repeat(i % 4) },
        })),
      });
    });
    afterAll(() => server.stop());

    it("decode with dns2, answer the question asked, and are never a server failure", () => {
      const types = fc.constantFrom(T.A, T.AAAA, T.SRV, T.TXT, T.PTR, T.NS, T.SOA, T.CNAME, T.ANY, T.MX, 99, 257);
      fc.assert(
        fc.property(name, types, fc.boolean(), fc.integer({ min: 0, max: 0xffff }), (labels, qtype, edns, id) => {
          const qname = labels.join(".");
          const p = new Packet();
          p.header.id = id;
          p.questions.push(new Packet.Question(qname, qtype, Packet.CLASS.IN));
          if (edns) p.additionals.push({ name: "", type: T.EDNS, class: 4096, ttl: 0, rdata: [] } as never);
          let query: Buffer;
          try {
            query = p.toBuffer();
          } catch {
            return; // a name dns2 cannot write (a label over 63 bytes): not a query anyone sends
          }
          const response = server.dns.handle(query, "udp");
          if (response === undefined || response instanceof Promise) return; // dropped, or forwarded (none here)
          const r = decode(response);
          expect(r.header.id).toBe(id);
          expect(r.header.qr).toBe(1);
          expect(r.header.rcode).not.toBe(2); // SERVFAIL: only for a dead upstream
          expect(r.questions.map((q) => [q.name.toLowerCase(), q.type])).toEqual([[qname.toLowerCase().replace(/\.$/, ""), qtype]]);
        }),
        { numRuns: 3000 },
      );
      expect(server.dns.stats().errors).toBe(0);
    });
  });

  it("parses any zone-file text into zones or a ZoneError naming the file, nothing else", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hd-zone-prop-"));
    const line = fc.oneof(
      fc.constantFrom("$ORIGIN lab.example.", "$TTL 1h", "$INCLUDE other.zone", "@ IN SOA ns hostmaster 1 2 3 4 5", "@ NS ns", "ns A 10.0.0.1", "www CNAME ns", "( 1 2", ")", '"unterminated', "; comment", "\\# 0", "* TXT \"wild\"", "mx MX 10 mail", "caa CAA 0 issue \"ca\""),
      fc.string({ maxLength: 60 }),
    );
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(line, { maxLength: 12 }), async (lines) => {
          await writeFile(join(dir, "lab.example.zone"), lines.join("\n"));
          try {
            await loadZones([dir], { domain: "home.arpa", cluster: "homelab" });
          } catch (err) {
            expect(err).toBeInstanceOf(ZoneError);
            expect((err as Error).message).toContain("lab.example.zone");
          }
        }),
        { numRuns: 300 },
      );
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});
