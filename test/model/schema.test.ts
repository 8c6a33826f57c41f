import { describe, expect, it } from "vitest";
import { InvalidError } from "../../src/lib/errors.js";
import { isDnsTag, normaliseAddress, parseOrThrow, serviceInputSchema } from "../../src/model/schema.js";

const base = { id: "web-1", name: "web", address: "127.0.0.1", port: 8080 };

function parse(value: unknown) {
  return parseOrThrow(serviceInputSchema, value, "service");
}

function issuesOf(value: unknown): { path: (string | number)[]; message: string }[] {
  try {
    parse(value);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidError);
    return (err as InvalidError).issues ?? [];
  }
  throw new Error("expected the input to be rejected");
}

describe("service input validation", () => {
  it("fills defaults and normalises names and tags to lowercase", () => {
    const s = parse({ ...base, name: "Web-API", tags: ["Prod", "prod", "EU"] });
    expect(s.name).toBe("web-api");
    expect(s.tags).toEqual(["prod", "eu"]);
    expect(s.version).toBe("0.0.0");
    expect(s.healthCheckInterval).toBe(30_000);
    expect(s.metadata).toEqual({});
    expect(s.ttl).toBeUndefined();
  });

  it.each([
    ["-web", "must be a DNS label"],
    ["web-", "must be a DNS label"],
    ["web_api", "must be a DNS label"],
    ["web.api", "must be a DNS label"],
    ["", "must not be empty"],
    ["a".repeat(64), "at most 63"],
  ])("rejects the name %j", (name, message) => {
    const issues = issuesOf({ ...base, name });
    expect(issues.find((i) => i.path[0] === "name")?.message).toContain(message);
  });

  it("accepts a 63-character name and a name of digits", () => {
    expect(parse({ ...base, name: "a".repeat(63) }).name).toHaveLength(63);
    expect(parse({ ...base, name: "123" }).name).toBe("123");
  });

  it("validates ids: 1-128 of letters, digits, '.', '_' and '-'", () => {
    expect(parse({ ...base, id: "Web_1.a-b" }).id).toBe("Web_1.a-b");
    expect(issuesOf({ ...base, id: "a/b" })[0]?.path).toEqual(["id"]);
    expect(issuesOf({ ...base, id: "x".repeat(129) })[0]?.message).toContain("at most 128");
    expect(issuesOf({ ...base, id: "" })[0]?.message).toBe("must not be empty");
  });

  it("validates ports", () => {
    for (const port of [0, 65536, 1.5, -1, "80"]) expect(issuesOf({ ...base, port })[0]?.path).toEqual(["port"]);
    expect(parse({ ...base, port: 65535 }).port).toBe(65535);
  });

  it("takes IPv4, IPv6 and hostnames, normalised", () => {
    expect(parse({ ...base, address: "192.168.1.10" }).address).toBe("192.168.1.10");
    expect(parse({ ...base, address: "2001:DB8:0:0::1" }).address).toBe("2001:db8::1");
    expect(parse({ ...base, address: "NAS.Home.Arpa." }).address).toBe("nas.home.arpa");
    expect(normaliseAddress("::FFFF:127.0.0.1")).toBe("::ffff:127.0.0.1");
    for (const address of ["", "a b", "300.1.1.1", "10.0.0.256", "-bad-.example", "1.2.3.4:80", "http://x"]) {
      expect(issuesOf({ ...base, address })[0]).toEqual({ path: ["address"], message: "must be an IPv4 address, an IPv6 address or a hostname" });
    }
    // A zone index: isIP takes it, URL does not (it used to escape as a TypeError, a 500).
    expect(issuesOf({ ...base, address: "fe80::1%eth0" })[0]?.message).toMatch(/must not carry an IPv6 zone index/);
    expect(normaliseAddress("fe80::1%eth0")).toBeUndefined();
  });

  it("takes any printable tag as written (Traefik, Fabio, Spring); DNS-label tags lowercase, the rest kept as they are", () => {
    const traefik = "traefik.http.routers.web.rule=Host(`web.home.arpa`) && PathPrefix(`/API`)";
    const s = parse({ ...base, tags: [traefik, "urlprefix-/web", "zone=EU", "Prod"] });
    expect(s.tags).toEqual([traefik, "urlprefix-/web", "zone=EU", "prod"]);
    expect(s.tags.map(isDnsTag)).toEqual([false, false, false, true]);
  });

  it("bounds tags and metadata", () => {
    const tags = Array.from({ length: 33 }, (_, i) => `t${i}`);
    expect(issuesOf({ ...base, tags })[0]?.message).toBe("at most 32 tags");
    expect(issuesOf({ ...base, tags: ["ok", "bell\u0007"] })[0]).toEqual({ path: ["tags", 1], message: "must be printable (no control characters)" });
    expect(issuesOf({ ...base, tags: ["x".repeat(256)] })[0]?.message).toBe("must be at most 255 characters");
    const metadata = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"]));
    expect(issuesOf({ ...base, metadata })[0]?.message).toBe("at most 64 metadata pairs");
    expect(issuesOf({ ...base, metadata: { "a=b": "x" } })[0]?.message).toContain("metadata keys may contain only");
    expect(issuesOf({ ...base, metadata: { a: "x".repeat(513) } })[0]?.message).toContain("at most 512");
    expect(issuesOf({ ...base, metadata: { a: 1 } })[0]?.path).toEqual(["metadata", "a"]);
    // As JSON.parse gives it: an own key, which copying into a plain object would drop without a word.
    expect(issuesOf({ ...base, metadata: JSON.parse('{"__proto__":"v"}') })[0]?.message).toBe("metadata key __proto__ is reserved");
  });

  it("puts a floor under the check interval and validates the TTL", () => {
    expect(issuesOf({ ...base, healthCheckInterval: 999 })[0]?.message).toBe("must be at least 1000 ms");
    expect(issuesOf({ ...base, ttl: 10 })[0]?.path).toEqual(["ttl"]);
    expect(parse({ ...base, ttl: 15_000 }).ttl).toBe(15_000);
  });

  it("takes a health endpoint path or an absolute http(s) URL", () => {
    expect(parse({ ...base, healthEndpoint: "/health" }).healthEndpoint).toBe("/health");
    expect(parse({ ...base, healthEndpoint: "http://127.0.0.1:9/h" }).healthEndpoint).toBe("http://127.0.0.1:9/h");
    expect(issuesOf({ ...base, healthEndpoint: "health" })[0]?.path).toEqual(["healthEndpoint"]);
  });

  it("names every missing field and rejects unknown ones", () => {
    const issues = issuesOf({ id: "x" });
    expect(issues).toEqual(
      expect.arrayContaining([
        { path: ["name"], message: "is required" },
        { path: ["address"], message: "is required" },
        { path: ["port"], message: "is required" },
      ]),
    );
    expect(issuesOf({ ...base, tag: ["x"] })[0]?.message).toContain('"tag"');
  });

  it("says which field is wrong and why in the error message", () => {
    const err = (() => {
      try {
        parse({ ...base, port: "x" });
      } catch (e) {
        return e as InvalidError;
      }
    })();
    expect(err?.message).toBe("invalid service: port: Invalid input: expected number, received string");
  });
});
