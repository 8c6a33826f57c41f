// encode.ts: SRV targets written out in full with the glue pointing at them, by our own writer, leaving the dns2
// library that every part of the process shares as it is.
import dns2 from "dns2";
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import type { Answer } from "../../src/dns/answer.js";
import { viaDns2 } from "./dns2-reference.js";
import { encodeAnswer, encodeRotations } from "../../src/dns/encode.js";
import { TYPE_CAA, type Rr, type SrvRr, type ZoneRr } from "../../src/dns/records.js";
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

describe("encodeAnswer, hand-written, against dns2's encoder", () => {
  const label = fc.stringMatching(/^[a-zA-Z0-9_]([a-zA-Z0-9-]{0,12}[a-zA-Z0-9])?$/);
  const name = fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => [...ls, "home", "arpa"].join("."));
  const ttl = fc.integer({ min: 0, max: 2 ** 32 - 1 });
  const base = { class: 1 as const };
  const v6 = fc.ipV6().filter((a) => !a.includes(".")); // dns2 reads hex groups only (mapped forms go as hex, see answer.ts)
  const record: fc.Arbitrary<ZoneRr> = fc.oneof(
    fc.record({ name, ttl, address: fc.ipV4() }).map((r) => ({ ...base, ...r, type: TYPE.A })),
    fc.record({ name, ttl, address: v6 }).map((r) => ({ ...base, ...r, type: TYPE.AAAA })),
    fc.record({ name, ttl, domain: name }).map((r) => ({ ...base, ...r, type: TYPE.CNAME })),
    fc.record({ name, ttl, domain: name }).map((r) => ({ ...base, ...r, type: TYPE.PTR })),
    fc.record({ name, ttl, domain: name }).map((r) => ({ ...base, ...r, ns: r.domain, type: TYPE.NS })),
    fc.record({ name, ttl, data: fc.array(fc.string({ maxLength: 40 }), { minLength: 1, maxLength: 4 }) }).map((r) => ({ ...base, ...r, type: TYPE.TXT })),
    fc.record({ name, ttl, priority: fc.nat(65535), weight: fc.nat(65535), port: fc.nat(65535), target: name }).map((r) => ({ ...base, ...r, type: TYPE.SRV })),
    fc.record({ name, ttl, priority: fc.nat(65535), exchange: name }).map((r) => ({ ...base, ...r, type: TYPE.MX })),
    fc.record({ name, ttl, flags: fc.nat(255), tag: fc.constantFrom("issue", "issuewild", "iodef"), value: fc.string({ maxLength: 30 }) }).map((r) => ({ ...base, ...r, type: TYPE_CAA })),
  ) as fc.Arbitrary<ZoneRr>;
  const soa = fc.record({ name, ttl, primary: name, admin: name, serial: fc.nat(), refresh: fc.nat(), retry: fc.nat(), expiration: fc.nat(), minimum: fc.nat() }).map((r) => ({ ...base, ...r, type: TYPE.SOA }) as Rr);

  it("writes the same bytes for any answer (compression, SRV targets, TXT, SOA, EDNS)", () => {
    fc.assert(
      fc.property(
        name,
        fc.constantFrom(TYPE.A, TYPE.SRV, TYPE.ANY, TYPE.TXT),
        fc.constantFrom("success", "nodata", "nxdomain", "refused" as const),
        fc.array(record, { maxLength: 12 }),
        fc.array(record, { maxLength: 6 }),
        soa,
        fc.option(fc.record({ udpSize: fc.integer({ min: 512, max: 4096 }), dnssecOk: fc.boolean() }), { nil: undefined }),
        fc.boolean(),
        (qname, qtype, kind, answers, additionals, soaRecord, edns, recursionAvailable) => {
          const answer: Answer = { kind, answers, additionals, rotate: false };
          const o = { qname, qtype, qclass: 1, answer, soa: soaRecord, edns, recursionAvailable };
          expect(encodeAnswer(o).toString("hex")).toBe(viaDns2(o).toString("hex"));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("writes each rotation of an address set as dns2 writes that order (one encoding reordered, or one per rotation)", () => {
    const address = fc.oneof(fc.ipV4().map((a) => ({ type: TYPE.A, address: a })), v6.map((a) => ({ type: TYPE.AAAA, address: a })));
    fc.assert(
      fc.property(
        name,
        fc.array(fc.tuple(address, fc.boolean(), name), { minLength: 1, maxLength: 10 }),
        soa,
        fc.option(fc.record({ udpSize: fc.integer({ min: 512, max: 4096 }), dnssecOk: fc.boolean() }), { nil: undefined }),
        fc.option(fc.integer({ min: 1, max: 10 }), { nil: undefined }),
        (qname, set, soaRecord, edns, limit) => {
          // Mostly owned by the question's name (the fast path); some sets hold another owner (encoded per rotation).
          const answers = set.map(([a, own, other]) => ({ ...a, name: own ? qname.toUpperCase() : other, class: 1, ttl: 5 }) as ZoneRr);
          const answer: Answer = { kind: "success", answers, additionals: [], rotate: true, ...(limit !== undefined ? { limit } : {}) };
          const o = { qname, qtype: TYPE.ANY, qclass: 1, answer, soa: soaRecord, edns, recursionAvailable: false };
          const shifts = answers.map((_, i) => i);
          const rotations = encodeRotations(o, shifts);
          shifts.forEach((shift) => {
            const order = [...answers.slice(shift), ...answers.slice(0, shift)];
            const rotated = { ...o, answer: { ...answer, answers: order } };
            expect(rotations[shift]!.toString("hex")).toBe(encodeAnswer(rotated).toString("hex"));
            // dns2 knows no limit: with none, the bytes are its own too.
            if (limit === undefined) expect(rotations[shift]!.toString("hex")).toBe(viaDns2(rotated).toString("hex"));
          });
        },
      ),
      { numRuns: 500 },
    );
  });

  it("encodes a 1,000-record SRV answer with its glue; a message past 65,535 bytes is an error, never a wrong answer", () => {
    const many = (n: number): Answer => {
      const answers: ZoneRr[] = [];
      const additionals: ZoneRr[] = [];
      for (let i = 0; i < n; i++) {
        const target = `${(0x0a000000 + i).toString(16).padStart(8, "0")}.addr.home.arpa`;
        answers.push({ name: "_web._tcp.service.home.arpa", type: TYPE.SRV, class: 1, ttl: 5, priority: 1, weight: 2560, port: 80, target });
        additionals.push({ name: target, type: TYPE.A, class: 1, ttl: 5, address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` });
      }
      return { kind: "success", answers, additionals, rotate: false };
    };
    const soaRecord = { name: "home.arpa", type: TYPE.SOA, class: 1, ttl: 5, primary: "ns.home.arpa", admin: "hostmaster.home.arpa", serial: 1, refresh: 1, retry: 1, expiration: 1, minimum: 1 } as Rr;
    const encode = (answer: Answer) => encodeAnswer({ qname: "_web._tcp.service.home.arpa", qtype: TYPE.SRV, qclass: 1, answer, soa: soaRecord, edns: undefined, recursionAvailable: false });
    const parsed = Packet.parse(encode(many(1000)));
    expect([parsed.answers.length, parsed.additionals.length]).toEqual([1000, 1000]);
    expect(() => encode(many(1500))).toThrow(/a DNS message of \d+ bytes: at most 65535/);
  });

  it("writes a 400-record SRV answer with its glue as dns2 does: hundreds of distinct suffixes, and names past the 14 bits pointers reach", () => {
    const answers: ZoneRr[] = [];
    const additionals: ZoneRr[] = [];
    for (let i = 0; i < 400; i++) {
      const target = `${(0x0a000000 + i).toString(16).padStart(8, "0")}.addr.home.arpa`;
      answers.push({ name: "_web._tcp.service.home.arpa", type: TYPE.SRV, class: 1, ttl: 5, priority: 1, weight: 2560, port: 80 + i, target });
      additionals.push({ name: target.toUpperCase(), type: TYPE.A, class: 1, ttl: 5, address: `10.0.${i >> 8}.${i & 255}` });
    }
    const soaRecord = { name: "home.arpa", type: TYPE.SOA, class: 1, ttl: 5, primary: "ns.home.arpa", admin: "hostmaster.home.arpa", serial: 1, refresh: 1, retry: 1, expiration: 1, minimum: 1 } as Rr;
    const o = { qname: "_web._tcp.service.home.arpa", qtype: TYPE.SRV, qclass: 1, answer: { kind: "success", answers, additionals, rotate: false } as Answer, soa: soaRecord, edns: { udpSize: 4096, dnssecOk: true }, recursionAvailable: false };
    const ours = encodeAnswer(o);
    expect(ours.length).toBeGreaterThan(0x4000);
    expect(ours.toString("hex")).toBe(viaDns2(o).toString("hex"));
    // And a small message after it starts with none of its suffixes.
    const small = { ...o, answer: { ...o.answer, answers: answers.slice(0, 2), additionals: additionals.slice(0, 2) } };
    expect(encodeAnswer(small).toString("hex")).toBe(viaDns2(small).toString("hex"));
  });

  it("sends at most the answer's limit of records, with the glue of those only", () => {
    const answers: ZoneRr[] = [];
    const additionals: ZoneRr[] = [];
    for (let i = 1; i <= 5; i++) {
      answers.push({ name: "_web._tcp.service.home.arpa", type: TYPE.SRV, class: 1, ttl: 5, priority: 1, weight: 1, port: 80, target: `0a00000${i}.addr.home.arpa` });
      additionals.push({ name: `0a00000${i}.addr.home.arpa`, type: TYPE.A, class: 1, ttl: 5, address: `10.0.0.${i}` });
    }
    const soaRecord = { name: "home.arpa", type: TYPE.SOA, class: 1, ttl: 5, primary: "ns.home.arpa", admin: "hostmaster.home.arpa", serial: 1, refresh: 1, retry: 1, expiration: 1, minimum: 1 } as Rr;
    const buf = encodeAnswer({ qname: "_web._tcp.service.home.arpa", qtype: TYPE.SRV, qclass: 1, answer: { kind: "success", answers, additionals, rotate: false, limit: 2 }, soa: soaRecord, edns: undefined, recursionAvailable: false });
    const parsed = Packet.parse(buf);
    expect(parsed.answers.map((r) => (r as unknown as SrvRr).target)).toEqual(["0a000001.addr.home.arpa", "0a000002.addr.home.arpa"]);
    expect(parsed.additionals.map((r) => r.name)).toEqual(["0a000001.addr.home.arpa", "0a000002.addr.home.arpa"]);
  });
});

