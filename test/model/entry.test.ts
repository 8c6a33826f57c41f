import { describe, expect, it } from "vitest";
import { DECLARED_FIELDS, entryMatches, newEntry, sameCheck, serviceEntrySchema, serviceInputSchema, storedEntry, withoutManaged, type ParsedServiceInput } from "../../src/model/index.js";

const NOW = "2026-01-01T00:00:00.000Z";
/** Every declared field set (one check kind: the HTTP one; ttl and tcpCheck are tried on their own below). */
const full = serviceInputSchema.parse({
  id: "web-1",
  name: "web",
  version: "2.1.0",
  nodeId: "nas",
  address: "127.0.0.1",
  port: 8080,
  healthEndpoint: "/healthz",
  metadata: { team: "platform" },
  tags: ["prod"],
  healthCheckInterval: 10_000,
  deregisterAfter: 60_000,
  dnsTtl: 30,
});
/** Another value for each declared field, each still valid. */
const OTHER: Record<(typeof DECLARED_FIELDS)[number], unknown> = {
  id: "web-1",
  name: "api",
  version: "2.2.0",
  nodeId: "pi",
  address: "127.0.0.2",
  port: 8081,
  healthEndpoint: "/ready",
  metadata: { team: "ops" },
  tags: ["canary"],
  healthCheckInterval: 20_000,
  ttl: 15_000,
  tcpCheck: true,
  deregisterAfter: 120_000,
  dnsTtl: 60,
};

describe("model/entry: the one place that knows an entry's fields", () => {
  it("makes an entry the schema accepts, holding every declared field of the input", () => {
    const entry = newEntry(full, { nodeId: "self", now: NOW, before: undefined });
    expect(serviceEntrySchema.safeParse(entry).error).toBeUndefined();
    for (const key of DECLARED_FIELDS) if (full[key] !== undefined) expect(entry[key], key).toEqual(full[key]);
    expect(entry).toMatchObject({ healthStatus: "unknown", registeredAt: NOW, lastHealthCheck: null });
    expect(Object.isFrozen(entry) && Object.isFrozen(entry.tags) && Object.isFrozen(entry.metadata)).toBe(true);
  });

  it("gives an input without a node the registry's node, and leaves a false flag out", () => {
    const { nodeId: _, ...rest } = full;
    const entry = newEntry({ ...rest, healthEndpoint: undefined, tcpCheck: false } as ParsedServiceInput, { nodeId: "self", now: NOW, before: undefined });
    expect(entry.nodeId).toBe("self");
    expect("tcpCheck" in entry).toBe(false);
    expect(entry.healthStatus).toBe("healthy");
  });

  it("sees a change of any declared field as a change, and nothing else", () => {
    const entry = newEntry(full, { nodeId: "self", now: NOW, before: undefined });
    expect(entryMatches(entry, full)).toBe(true);
    expect(entryMatches({ ...entry, healthStatus: "unhealthy", lastHealthCheck: NOW }, full)).toBe(true);
    for (const key of DECLARED_FIELDS.filter((k) => k !== "id")) {
      expect(entryMatches(entry, { ...full, [key]: OTHER[key] }), key).toBe(false);
    }
  });

  it("carries health over a re-registration only while the check's own fields stay the same", () => {
    const checked = { ...newEntry(full, { nodeId: "self", now: NOW, before: undefined }), healthStatus: "healthy" as const, lastHealthCheck: NOW };
    const again = newEntry({ ...full, version: "9.0.0", tags: ["x"] }, { nodeId: "self", now: NOW, before: checked });
    expect(again).toMatchObject({ healthStatus: "healthy", lastHealthCheck: NOW, version: "9.0.0" });
    for (const key of ["address", "port", "healthEndpoint"] as const) {
      const moved = newEntry({ ...full, [key]: OTHER[key] }, { nodeId: "self", now: NOW, before: checked });
      expect(sameCheck(checked, moved), key).toBe(false);
      expect(moved.healthStatus, key).toBe("unknown");
    }
  });

  it("drops the server-managed fields a fetched entry sent back carries", () => {
    const echoed = serviceInputSchema.parse({ ...newEntry(full, { nodeId: "self", now: NOW, before: undefined }), healthStatus: "healthy" });
    expect(Object.keys(withoutManaged(echoed))).not.toContain("healthStatus");
    expect(Object.keys(withoutManaged(echoed))).not.toContain("registeredAt");
  });

  it("accepts stored JSON shaped like an entry and refuses other shapes", () => {
    const entry = JSON.parse(JSON.stringify(newEntry(full, { nodeId: "self", now: NOW, before: undefined })));
    expect(storedEntry(entry)).toEqual(entry);
    expect(storedEntry({ ...entry, port: "80" })).toBeUndefined();
    expect(storedEntry(null)).toBeUndefined();
  });
});
