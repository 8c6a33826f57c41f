// An entry's checks as the scheduler runs them, and how a bad check is refused: every kind's options are a strict
// schema, so a typo is an error naming the field, not a check that silently does something else.
import { describe, expect, it } from "vitest";
import { KINDS } from "../../src/health/kinds/index.js";
import { compileChecks } from "../../src/health/specs.js";

const instance = { address: "127.0.0.1", port: 8080, healthCheckInterval: 10_000 };

describe("compileChecks", () => {
  it("reads the one-check form as one check with id 1", () => {
    const http = compileChecks({ ...instance, healthEndpoint: "/health" });
    expect("specs" in http && http.specs.map((s) => [s.id, s.kind.kind, s.options, s.intervalMs])).toEqual([["1", "http", { url: "/health", method: "GET", followRedirects: false, tlsSkipVerify: false }, 10_000]]);
    const tcp = compileChecks({ ...instance, tcpCheck: true });
    expect("specs" in tcp && tcp.specs.map((s) => s.kind.kind)).toEqual(["tcp"]);
    const ttl = compileChecks({ ...instance, ttl: 5_000 });
    expect("specs" in ttl && ttl.specs.map((s) => [s.kind.kind, s.kind.heartbeat, s.options])).toEqual([["ttl", true, { ttl: 5_000 }]]);
    expect(compileChecks(instance)).toEqual({ specs: [] });
  });

  it("reads a list of checks with their own ids, intervals and timeouts", () => {
    const c = compileChecks({ ...instance, checks: [{ id: "1", kind: "tcp" }, { id: "api", kind: "http", url: "/api", interval: 2_000, timeout: 500 }] });
    expect("specs" in c && c.specs.map((s) => [s.id, s.kind.kind, s.intervalMs, s.timeoutMs])).toEqual([
      ["1", "tcp", 10_000, undefined],
      ["api", "http", 2_000, 500],
    ]);
  });

  it("refuses an unknown kind and a bad or unknown option, naming the field", () => {
    expect(compileChecks({ ...instance, checks: [{ id: "1", kind: "tcp" }, { id: "2", kind: "smtp" }] })).toEqual({ refusal: { field: "checks.1.kind", message: expect.stringContaining('unknown check kind "smtp"') } });
    expect(compileChecks({ ...instance, checks: [{ id: "1", kind: "http", uri: "/x" }] })).toMatchObject({ refusal: { field: "checks.0.url", message: "is required" } });
    expect(compileChecks({ ...instance, checks: [{ id: "1", kind: "http", url: "/x", uri: "/x" }] })).toMatchObject({ refusal: { field: "checks.0", message: expect.stringContaining("uri") } });
    expect(compileChecks({ ...instance, checks: [{ id: "1", kind: "tcp", port: 70000 }] })).toMatchObject({ refusal: { field: "checks.0.port", message: "must be 1-65535" } });
  });

  it("has a strict options schema for every kind", () => {
    for (const [name, kind] of KINDS) {
      const r = kind.options.safeParse({ surelyNotAnOption: 1 });
      expect(r.success, name).toBe(false);
    }
  });
});
