// encode.ts: SRV targets written out in full with the glue pointing at them, by our own writer, leaving the dns2
// library that every part of the process shares as it is.
import dns2 from "dns2";
import { describe, expect, it, vi } from "vitest";
import { encodeAnswer } from "../../src/dns/encode.js";
import type { Rr } from "../../src/dns/records.js";
import { TYPE } from "../../src/dns/wire.js";

const { Packet } = dns2;
const TARGET = "0a000001.addr.home.arpa";
/** TARGET in wire form, every label written out. */
const TARGET_WIRE = Buffer.from("\x080a000001\x04addr\x04home\x04arpa\x00", "latin1");

function srvAnswer(): Buffer {
  const srv: Rr = { name: "_web._tcp.service.home.arpa", type: TYPE.SRV, class: 1, ttl: 5, priority: 1, weight: 2560, port: 80, target: TARGET };
  const glue: Rr = { name: TARGET, type: TYPE.A, class: 1, ttl: 5, address: "10.0.0.1" };
  const soa: Rr = { name: "home.arpa", type: TYPE.SOA, class: 1, ttl: 5, primary: "ns.home.arpa", admin: "hostmaster.home.arpa", serial: 1, refresh: 3600, retry: 600, expiration: 86400, minimum: 5 };
  const answer = { kind: "success", answers: [srv], additionals: [glue], rotate: false } as const;
  return encodeAnswer({ qname: srv.name, qtype: TYPE.SRV, qclass: 1, answer, soa, edns: { udpSize: 4096, dnssecOk: false }, recursionAvailable: false });
}

describe("encodeAnswer", () => {
  it("writes SRV targets in full, and the glue's owner name as a pointer to the target's bytes", () => {
    const buf = srvAnswer();
    const at = buf.indexOf(TARGET_WIRE);
    expect(at).toBeGreaterThan(12);
    // The glue A record follows the SRV record, its owner a pointer to the target, then type A.
    const glueOwner = Buffer.from([0xc0 | (at >> 8), at & 0xff, 0, TYPE.A]);
    expect(buf.subarray(at + TARGET_WIRE.length, at + TARGET_WIRE.length + 4)).toEqual(glueOwner);
    const parsed = Packet.parse(buf);
    expect(parsed.errors).toEqual([]);
    expect(parsed.answers[0]).toMatchObject({ type: TYPE.SRV, priority: 1, weight: 2560, port: 80, target: TARGET });
    expect(parsed.additionals.map((r) => [r.name, r.type])).toEqual([[TARGET, TYPE.A], ["", TYPE.OPT]]);
  });

  it("leaves dns2's own SRV encoder in place: importing src/dns patches nothing", async () => {
    const resource = Packet.Resource as unknown as { SRV: { encode: unknown } };
    const own = resource.SRV.encode;
    expect(String(own)).toContain("Packet.Name.encode(record.target, writer)"); // dns2's, which compresses
    vi.resetModules();
    await import("../../src/dns/index.js"); // every module of src/dns evaluated again, dns2 kept
    expect(resource.SRV.encode).toBe(own);
    srvAnswer();
    // dns2 alone, in this process: its SRV target after a question for the same name is a pointer (0xc00c).
    const p = new Packet();
    p.questions.push(new Packet.Question(TARGET, TYPE.SRV, 1));
    p.answers.push({ name: TARGET, type: TYPE.SRV, class: 1, ttl: 5, priority: 1, weight: 1, port: 80, target: TARGET } as never);
    const buf = p.toBuffer();
    expect(buf.subarray(buf.length - 2)).toEqual(Buffer.from([0xc0, 12]));
  });
});
