// IP address text: strict parsing into words, RFC 5952 text (dotted or hex for IPv4-mapped), the hex of DNS names.
import { describe, expect, it } from "vitest";
import { canonicalIPv6, ipHex, ipv6ForDns2, ipv6Words, isIPv4Text } from "../../src/lib/ip.js";
import { normaliseAddress } from "../../src/model/index.js";

const BAD_IPV6 = ["", ":", ":::", "1:::2", "1::2::3", ":1:2:3:4:5:6:7", "1:2:3:4:5:6:7:", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "::1:2:3:4:5:6:7:8",
  "12345::", "g::1", "[::1]", " ::1", "::1 ", "fe80::1%eth0", "::ffff:1.2.3", "::ffff:1.2.3.256", "::ffff:01.2.3.4", "1.2.3.4::", "1.2.3.4", "::1.2.3.4:5"];

describe("isIPv4Text", () => {
  it("takes dotted quads of octets 0-255 without leading zeros", () => {
    for (const text of ["0.0.0.0", "1.2.3.4", "10.0.0.255", "255.255.255.255"]) expect(isIPv4Text(text), text).toBe(true);
    for (const text of ["", "1.2.3", "1.2.3.4.5", "1.2.3.256", "01.2.3.4", "1.2.3.-4", "1.2.3.4 ", "1.2.3.0x4", "1..3.4", "1.2.3.4."]) {
      expect(isIPv4Text(text), text).toBe(false);
    }
  });
});

describe("ipv6Words", () => {
  it("reads full, compressed and IPv4-suffixed text, in any case", () => {
    expect(ipv6Words("1:2:3:4:5:6:7:8")).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(ipv6Words("2001:0DB8:0000:0000:0000:0000:0000:0001")).toEqual([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
    expect(ipv6Words("::")).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(ipv6Words("::1")).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect(ipv6Words("1::")).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
    expect(ipv6Words("1:2:3:4:5:6:7::")).toEqual([1, 2, 3, 4, 5, 6, 7, 0]);
    expect(ipv6Words("::ffff:1.2.3.4")).toEqual([0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304]);
    expect(ipv6Words("1:2:3:4:5:6:192.0.2.1")).toEqual([1, 2, 3, 4, 5, 6, 0xc000, 0x0201]);
  });

  it("refuses anything else, a zone index included", () => {
    for (const text of BAD_IPV6) expect(ipv6Words(text), text).toBeUndefined();
  });
});

describe("IPv6 text", () => {
  it("is RFC 5952's: lowercase, no leading zeros, the first longest run of zero words as ::", () => {
    expect(canonicalIPv6("2001:DB8:0:0::1")).toBe("2001:db8::1");
    expect(canonicalIPv6("0:0:0:0:0:0:0:0")).toBe("::");
    expect(canonicalIPv6("1:0:0:1:0:0:0:1")).toBe("1:0:0:1::1");
    expect(canonicalIPv6("1:0:0:1:0:0:1:1")).toBe("1::1:0:0:1:1");
    expect(canonicalIPv6("1:0:2:3:4:5:6:7")).toBe("1:0:2:3:4:5:6:7"); // one zero word stays
    expect(canonicalIPv6("0001:0002:0003:0004:0005:0006:0007:0008")).toBe("1:2:3:4:5:6:7:8");
  });

  it("keeps an IPv4-mapped address dotted, and writes it in hex for dns2", () => {
    expect(canonicalIPv6("::ffff:1.2.3.4")).toBe("::ffff:1.2.3.4");
    expect(canonicalIPv6("::FFFF:0102:0304")).toBe("::ffff:1.2.3.4");
    expect(canonicalIPv6("::ffff:0:0")).toBe("::ffff:0.0.0.0");
    expect(canonicalIPv6("::1.2.3.4")).toBe("::102:304"); // IPv4-compatible (deprecated), not mapped
    expect(ipv6ForDns2("::ffff:1.2.3.4")).toBe("::ffff:102:304");
    expect(ipv6ForDns2("::ffff:192.0.2.1")).toBe("::ffff:c000:201");
    expect(ipv6ForDns2("2001:DB8::0:1")).toBe("2001:db8::1");
  });

  it("is undefined for what is not IPv6", () => {
    for (const text of BAD_IPV6) {
      expect(canonicalIPv6(text), text).toBeUndefined();
      expect(ipv6ForDns2(text), text).toBeUndefined();
    }
  });
});

describe("ipHex", () => {
  it("gives 8 hex digits for IPv4 and 32 for IPv6", () => {
    expect(ipHex("127.0.0.1")).toBe("7f000001");
    expect(ipHex("::")).toBe("0".repeat(32));
    expect(ipHex("2001:db8::1")).toBe("20010db8000000000000000000000001");
    expect(ipHex("::ffff:1.2.3.4")).toBe("00000000000000000000ffff01020304");
    for (const text of ["1.2.3", "300.1.1.1", "example.com", ...BAD_IPV6.filter((t) => t !== "1.2.3.4")]) expect(ipHex(text), text).toBeUndefined();
  });
});

describe("normaliseAddress", () => {
  it("canonicalises IP addresses with lib/ip and refuses a zone index", () => {
    expect(normaliseAddress(" 2001:DB8:0:0::1 ")).toBe("2001:db8::1");
    expect(normaliseAddress("::FFFF:127.0.0.1")).toBe("::ffff:127.0.0.1");
    expect(normaliseAddress("0:0:0:0:0:0:0:0")).toBe("::");
    expect(normaliseAddress("10.0.0.1")).toBe("10.0.0.1");
    expect(normaliseAddress("fe80::1%eth0")).toBeUndefined();
    expect(normaliseAddress("::ffff:1.2.3.256")).toBeUndefined();
  });
});
