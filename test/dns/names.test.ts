import { describe, expect, it } from "vitest";
import { addressOfHex, classify, hexOfAddress, reverseName } from "../../src/dns/names.js";

const zone = { domain: ["home", "arpa"], cluster: "lab" };
const c = (name: string) => classify(name.split("."), zone);

describe("query names", () => {
  it("reads service names, tags and RFC 2782 forms", () => {
    expect(c("web.service.home.arpa")).toEqual({ kind: "service", name: "web", tags: [], rfc2782: false });
    expect(c("prod.web.service.home.arpa")).toEqual({ kind: "service", name: "web", tags: ["prod"], rfc2782: false });
    expect(c("eu.prod.web.service.home.arpa")).toEqual({ kind: "service", name: "web", tags: ["eu", "prod"], rfc2782: false });
    expect(c("_web._tcp.service.home.arpa")).toEqual({ kind: "service", name: "web", tags: [], rfc2782: true });
    expect(c("_web._udp.service.home.arpa")).toEqual({ kind: "service", name: "web", tags: ["udp"], rfc2782: true });
    expect(c("_web._prod.service.home.arpa")).toEqual({ kind: "service", name: "web", tags: ["prod"], rfc2782: true });
    expect(c("web.service.lab.home.arpa")).toEqual({ kind: "service", name: "web", tags: [], rfc2782: false });
    expect(c("_web._tcp.service.lab.home.arpa")).toMatchObject({ kind: "service", name: "web" });
  });

  it("reads a version pin: a _v label right before the name, or before the RFC 2782 pair", () => {
    expect(c("_v2.web.service.home.arpa")).toEqual({ kind: "service", name: "web", tags: [], rfc2782: false, pin: "2" });
    expect(c("prod._v2-1.web.service.lab.home.arpa")).toEqual({ kind: "service", name: "web", tags: ["prod"], rfc2782: false, pin: "2-1" });
    expect(c("_v2._web._tcp.service.home.arpa")).toEqual({ kind: "service", name: "web", tags: [], rfc2782: true, pin: "2" });
    expect(c("_vblue._web._udp.service.home.arpa")).toEqual({ kind: "service", name: "web", tags: ["udp"], rfc2782: true, pin: "blue" });
    // A service named v2 keeps its names; a pin anywhere else, or an empty one, is no name.
    expect(c("_v2._tcp.service.home.arpa")).toEqual({ kind: "service", name: "v2", tags: [], rfc2782: true });
    expect(c("v2.web.service.home.arpa")).toEqual({ kind: "service", name: "web", tags: ["v2"], rfc2782: false });
    expect(c("__v2-1._sub._web._tcp.home.arpa")).toEqual({ kind: "dnssd-type", name: "web", proto: "tcp", tags: [], pin: "2-1" });
    expect(c("_v2._sub._web._tcp.home.arpa")).toEqual({ kind: "dnssd-type", name: "web", proto: "tcp", tags: ["v2"] });
    for (const name of ["__x2._sub._web._tcp.home.arpa", "___v2._sub._web._tcp.home.arpa", "_v2.prod.web.service.home.arpa", "_v.web.service.home.arpa", "_v2_x.web.service.home.arpa", "_v2._v3._web._tcp.service.home.arpa", "_x2._web._tcp.service.home.arpa"]) {
      expect(c(name), name).toEqual({ kind: "nxdomain" });
    }
  });

  it("reads nodes, addresses, the apex, ns and reverse names", () => {
    expect(c("nas.node.home.arpa")).toEqual({ kind: "node", node: "nas" });
    expect(c("nas.node.lab.home.arpa")).toEqual({ kind: "node", node: "nas" });
    expect(c("7f000001.addr.home.arpa")).toEqual({ kind: "addr", address: "127.0.0.1" });
    expect(c("home.arpa")).toEqual({ kind: "apex" });
    expect(c("ns.home.arpa")).toEqual({ kind: "ns" });
    expect(c("4.3.2.1.in-addr.arpa")).toEqual({ kind: "reverse", address: "1.2.3.4" });
    expect(c(`${[..."20010db8000000000000000000000001"].reverse().join(".")}.ip6.arpa`)).toEqual({ kind: "reverse", address: "2001:db8::1" });
  });

  it("never says NXDOMAIN for names that have names below them (RFC 8020)", () => {
    for (const name of ["service.home.arpa", "node.home.arpa", "addr.home.arpa", "service.lab.home.arpa", "_tcp.service.home.arpa", "_prod.service.home.arpa", "_tcp.service.lab.home.arpa"]) {
      expect(c(name), name).toEqual({ kind: "empty-nonterminal" });
    }
  });

  it("tells unknown names in the zone from names outside it", () => {
    for (const name of ["x.home.arpa", "a.b.node.home.arpa", "_-x.service.home.arpa", "_web._tcp._x.service.home.arpa", "-x.service.home.arpa", "zz.addr.home.arpa"]) {
      expect(c(name), name).toEqual({ kind: "nxdomain" });
    }
    for (const name of ["example.com", "arpa", "home.arpa.example", "1.2.3.in-addr.arpa", "300.1.1.1.in-addr.arpa"]) {
      expect(c(name), name).toEqual({ kind: "outside" });
    }
  });

  it("round-trips address targets and reverse names", () => {
    for (const a of ["127.0.0.1", "10.1.2.3", "::1", "2001:db8::1", "fe80::1:2", "::ffff:127.0.0.1"]) {
      const hex = hexOfAddress(a)!;
      expect(addressOfHex(hex), a).toBe(a);
      const reversed = reverseName(a)!;
      expect(classify(reversed.split("."), zone), a).toEqual({ kind: "reverse", address: a });
    }
    expect(hexOfAddress("127.0.0.1")).toBe("7f000001");
    expect(reverseName("10.1.2.3")).toBe("3.2.1.10.in-addr.arpa");
  });
});
