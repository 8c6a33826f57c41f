// A failure to build an answer (a bug) is answered SERVFAIL and not paid again on every query (issue 16, item 2).
import { describe, expect, it } from "vitest";
import { DnsServer } from "../../src/dns/index.js";
import { silent } from "../helpers.js";
import { decode, Packet, query } from "./helpers.js";

describe("an answer that fails to build", () => {
  it("is SERVFAIL, built once until the registry changes, then built again", () => {
    let calls = 0;
    let listener: ((changes: readonly { cause: string }[]) => void) | undefined;
    const view = {
      generation: 1,
      serviceNames: () => ["boom"],
      instancesOf: () => {
        calls += 1;
        throw new RangeError("a bug in answer building");
      },
      instancesOnNode: () => [],
      instancesAt: () => [],
      onChange: (l: typeof listener) => {
        listener = l;
        return () => undefined;
      },
    };
    const dns = new DnsServer({ settings: { domain: "home.arpa", cluster: "test", serviceTtl: 5, nodeTtl: 30, soaTtl: 60, negativeTtl: 5, includeDegraded: false, nsAddresses: [] }, view, logger: silent });
    const ask = (id: number, name = "boom.service.home.arpa") => decode(dns.handle(query(name, Packet.TYPE.A, { id, rd: id % 2 === 0 }), "udp") as Buffer);
    const first = ask(1);
    expect(first.header.rcode).toBe(2);
    const afterFirst = calls;
    expect(afterFirst).toBeGreaterThan(0);
    for (let i = 2; i < 100; i++) {
      const r = ask(i, i % 3 === 0 ? "BOOM.service.home.arpa" : "boom.service.home.arpa");
      expect(r.header.rcode).toBe(2);
      expect(r.header.id).toBe(i);
      expect(r.header.rd).toBe(i % 2 === 0 ? 1 : 0);
      expect(r.questions[0]!.name).toBe(i % 3 === 0 ? "BOOM.service.home.arpa" : "boom.service.home.arpa");
    }
    expect(calls).toBe(afterFirst); // cached: not rebuilt 98 times
    expect(dns.stats().errors).toBe(1);
    listener!([{ cause: "registered" }]);
    ask(200);
    expect(calls).toBeGreaterThan(afterFirst);
  });
});
