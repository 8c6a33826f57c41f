// Raw packets: header flags, sections and rcodes, EDNS, truncation and TCP, and bad input.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { api, startTestServer } from "../helpers.js";
import { decode, Packet, query, tcp, udp } from "./helpers.js";

let server: ServerHandle;
let port: number;
const T = Packet.TYPE;

beforeAll(async () => {
  server = await startTestServer();
  port = server.dnsAddress.port;
  const register = Array.from({ length: 40 }, (_, i) => ({ id: `web-${i}`, name: "web", address: `10.0.0.${i + 1}`, port: 8000 + i, tags: i < 3 ? ["few"] : [] }));
  await api(server.url, "POST", "/v1/services/bulk", { register });
});
afterAll(() => server.stop());

const flags = (buf: Buffer) => {
  const f = buf.readUInt16BE(2);
  return { qr: f >> 15, opcode: (f >> 11) & 15, aa: (f >> 10) & 1, tc: (f >> 9) & 1, rd: (f >> 8) & 1, ra: (f >> 7) & 1, z: (f >> 6) & 1, ad: (f >> 5) & 1, cd: (f >> 4) & 1, rcode: f & 15 };
};

describe("DNS on the wire", () => {
  it("sets AA, copies ID, RD and CD, leaves RA and Z clear", async () => {
    const q = query("few.web.service.home.arpa", T.A, { id: 0xbeef });
    q[3] = q[3]! | 0x10 | 0x40; // CD and Z
    const r = (await udp(port, q))!;
    expect(r.readUInt16BE(0)).toBe(0xbeef);
    expect(flags(r)).toMatchObject({ qr: 1, aa: 1, rd: 1, ra: 0, z: 0, cd: 1, tc: 0, rcode: 0 });
    const noRd = (await udp(port, query("few.web.service.home.arpa", T.A, { rd: false })))!;
    expect(flags(noRd).rd).toBe(0);
  });

  it("echoes the question's case in the question and the owner names", async () => {
    const r = decode((await udp(port, query("FeW.WEB.service.Home.Arpa", T.SRV)))!);
    expect(r.questions[0]!.name).toBe("FeW.WEB.service.Home.Arpa");
    expect(r.answers.every((a) => a.name === "FeW.WEB.service.Home.Arpa")).toBe(true);
    // glue owner names are byte-identical to the SRV targets
    const targets = r.answers.map((a) => (a as unknown as { target: string }).target).sort();
    expect(r.additionals.map((a) => a.name).sort()).toEqual(targets);
    // The same name in lowercase next, answered from the answer the mixed-case query cached: its own case again.
    const lower = decode((await udp(port, query("few.web.service.home.arpa", T.SRV)))!);
    expect(lower.questions[0]!.name).toBe("few.web.service.home.arpa");
    expect(lower.answers.every((a) => a.name === "few.web.service.home.arpa")).toBe(true);
  });

  it("never compresses SRV targets (RFC 2782; newer c-ares rejects answers that do)", async () => {
    const buf = (await udp(port, query("_web._tcp.service.home.arpa", T.SRV, { edns: { udpSize: 4096 } })))!;
    const r = decode(buf);
    expect(r.answers.length).toBeGreaterThan(0);
    // Walk the answer section: each SRV's target, after priority, weight and port, holds no pointer (0xC0).
    let off = 12;
    while (buf[off] !== 0) off += 1 + buf[off]!;
    off += 5; // root, qtype, qclass
    for (let i = 0; i < r.answers.length; i++) {
      off += (buf[off]! & 0xc0) === 0xc0 ? 2 : 0; // the owner: a pointer to the question
      const rdlength = buf.readUInt16BE(off + 8);
      let t = off + 10 + 6;
      while (buf[t] !== 0) {
        expect(buf[t]! & 0xc0, `target of answer ${i}`).toBe(0);
        t += 1 + buf[t]!;
      }
      off += 10 + rdlength;
    }
  });

  it("echoes an OPT only when asked, with version 0, our size and the DO bit", async () => {
    const plain = decode((await udp(port, query("few.web.service.home.arpa", T.A)))!);
    expect(plain.additionals.filter((a) => a.type === T.EDNS)).toHaveLength(0);
    const withDo = decode((await udp(port, query("few.web.service.home.arpa", T.A, { edns: { udpSize: 1232, do: true } })))!);
    const opt = withDo.additionals.find((a) => a.type === T.EDNS) as unknown as { class: number; version: number; doFlag: boolean };
    expect(opt).toMatchObject({ class: 4096, version: 0, doFlag: true });
    const noDo = decode((await udp(port, query("few.web.service.home.arpa", T.A, { edns: { udpSize: 1232 } })))!);
    expect((noDo.additionals.find((a) => a.type === T.EDNS) as unknown as { doFlag: boolean }).doFlag).toBe(false);
  });

  it("answers EDNS version 1 with BADVERS and an OPT of version 0, no answer", async () => {
    const buf = (await udp(port, query("few.web.service.home.arpa", T.A, { edns: { version: 1 } })))!;
    const r = decode(buf);
    expect(r.answers).toHaveLength(0);
    const opt = r.additionals.find((a) => a.type === T.EDNS) as unknown as { extendedRcode: number; version: number };
    expect(opt).toMatchObject({ extendedRcode: 1, version: 0 });
    expect(flags(buf).rcode).toBe(0);
  });

  it("puts the SOA in the authority section of NXDOMAIN and NODATA, with the negative TTL", async () => {
    for (const [name, type, rcode] of [
      ["nothing.service.home.arpa", T.A, 3],
      ["web.service.home.arpa", T.MX, 0],
      ["web.service.home.arpa", 99, 0],
    ] as const) {
      const buf = (await udp(port, query(name, type)))!;
      const r = decode(buf);
      expect(flags(buf)).toMatchObject({ aa: 1, rcode });
      expect(r.answers).toHaveLength(0);
      expect(r.authorities).toHaveLength(1);
      expect(r.authorities[0]).toMatchObject({ type: T.SOA, name: "home.arpa", ttl: 5, minimum: 5 });
    }
  });

  it("refuses other zones, classes and zone transfers without AA", async () => {
    for (const q of [query("example.com", T.A), query("web.service.home.arpa", T.AXFR)]) {
      const buf = (await udp(port, q))!;
      expect(flags(buf)).toMatchObject({ rcode: 5, aa: 0 });
    }
    const chaos = query("version.bind", T.TXT);
    chaos.writeUInt16BE(3, chaos.length - 2); // class CH
    expect(flags((await udp(port, chaos))!).rcode).toBe(5);
  });

  it("answers other opcodes with NOTIMP and broken questions with FORMERR", async () => {
    const notify = query("home.arpa", T.SOA, { edns: { udpSize: 1232 } });
    notify[2] = (notify[2]! & 0x87) | (4 << 3); // opcode NOTIFY
    const notimp = (await udp(port, notify))!;
    expect(flags(notimp)).toMatchObject({ opcode: 4, rcode: 4, aa: 0 });
    // The question echoed, and an OPT because the query had one (RFC 6891 7), as BIND and NSD answer.
    expect([notimp.readUInt16BE(4), notimp.readUInt16BE(10)]).toEqual([1, 1]);
    expect(notimp.subarray(12, 12 + 15)).toEqual(notify.subarray(12, 12 + 15));
    // Whatever its shape, another opcode is NOTIMP (not FORMERR): a question cut short.
    const cutNotify = Buffer.from(notify.subarray(0, 16));
    expect(flags((await udp(port, cutNotify))!).rcode).toBe(4);

    const noQuestion = Buffer.alloc(12);
    noQuestion.writeUInt16BE(7, 0);
    const r = (await udp(port, noQuestion))!;
    expect(r.readUInt16BE(0)).toBe(7);
    expect(flags(r).rcode).toBe(1);

    const cut = query("web.service.home.arpa", T.A).subarray(0, 20);
    expect(flags((await udp(port, cut))!).rcode).toBe(1);

    const two = query("web.service.home.arpa", T.A);
    two.writeUInt16BE(2, 4);
    expect(flags((await udp(port, two))!).rcode).toBe(1);
  });

  it("drops responses (QR=1) and runts instead of answering them", async () => {
    const response = query("web.service.home.arpa", T.A);
    response[2] = response[2]! | 0x80;
    expect(await udp(port, response, 300)).toBeUndefined();
    expect(await udp(port, Buffer.from([1, 2, 3]), 300)).toBeUndefined();
  });

  it("sets TC when the answer does not fit, and TCP returns the whole set", async () => {
    const small = (await udp(port, query("_web._tcp.service.home.arpa", T.SRV)))!;
    expect(small.length).toBeLessThanOrEqual(512);
    expect(flags(small).tc).toBe(1);
    expect(decode(small).answers).toHaveLength(0);

    const big = (await udp(port, query("_web._tcp.service.home.arpa", T.SRV, { edns: { udpSize: 4096 } })))!;
    expect(flags(big).tc).toBe(0);
    expect(decode(big).answers).toHaveLength(40);

    const [viaTcp] = await tcp(port, [query("_web._tcp.service.home.arpa", T.SRV)]);
    expect(flags(viaTcp!).tc).toBe(0);
    expect(decode(viaTcp!).answers).toHaveLength(40);
    expect(decode(viaTcp!).additionals).toHaveLength(40);
  });

  it("answers several queries pipelined on one TCP connection, in order", async () => {
    const replies = await tcp(port, [query("web.service.home.arpa", T.A, { id: 1 }), query("nothing.service.home.arpa", T.A, { id: 2 }), query("home.arpa", T.SOA, { id: 3 })]);
    expect(replies.map((r) => r.readUInt16BE(0))).toEqual([1, 2, 3]);
    expect(replies.map((r) => flags(r).rcode)).toEqual([0, 3, 0]);
  });

  it("keeps the SRV set complete and stable, and rotates A records", async () => {
    const srvSets = new Set<string>();
    const firstA = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const srv = decode((await udp(port, query("few.web.service.home.arpa", T.SRV)))!);
      srvSets.add(JSON.stringify(srv.answers));
      const a = decode((await udp(port, query("few.web.service.home.arpa", T.A)))!);
      expect(a.answers).toHaveLength(3);
      firstA.add((a.answers[0] as unknown as { address: string }).address);
    }
    expect(srvSets.size).toBe(1);
    expect(firstA.size).toBe(3);
  });

  it("survives random garbage and keeps answering", async () => {
    for (let i = 0; i < 300; i++) {
      const junk = randomBytes(1 + (i % 80));
      if (i % 3 === 0 && junk.length > 3) junk[2] = junk[2]! & 0x7f; // look like a query
      await udp(port, junk, 5);
    }
    const ok = (await udp(port, query("few.web.service.home.arpa", T.A)))!;
    expect(decode(ok).answers).toHaveLength(3);
    expect((await api(server.url, "GET", "/v1/stats")).body.dns.errors).toBe(0);
  });
});
