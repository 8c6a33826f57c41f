import { describe, expect, it } from "vitest";
import {
  carryHealth,
  DECLARED_FIELDS,
  entryMatches,
  newEntry,
  publicEntry,
  REDACTED,
  sameCheck,
  serviceEntrySchema,
  serviceInputSchema,
  storedEntry,
  uncheckedEntry,
  withoutManaged,
  withResults,
  type ParsedServiceInput,
  type ServiceEntry,
} from "../../src/model/index.js";

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
  checks: [{ id: "1", kind: "tcp" }],
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

describe("model/entry: several checks", () => {
  const input = serviceInputSchema.parse({
    id: "nas-1",
    name: "nas",
    address: "127.0.0.1",
    port: 5001,
    checks: [
      { kind: "http", url: "/", headers: { Authorization: "Bearer s3cret" } },
      { id: "ssh", kind: "tcp", port: 22, interval: 60_000 },
    ],
  });
  const made = newEntry(input, { nodeId: "self", now: NOW, before: undefined });
  const checked: ServiceEntry = {
    ...made,
    healthStatus: "healthy",
    lastHealthCheck: NOW,
    checks: withResults(made, () => ({ status: "healthy", output: "HTTP 200: ok", durationMs: 1.5, checkedAt: NOW })),
  };

  it("gives each check an id (its position unless declared), refuses a duplicate, and refuses mixing with the one-check fields", () => {
    expect(made.checks!.map((c) => c.id)).toEqual(["1", "ssh"]);
    expect(serviceEntrySchema.safeParse(made).error).toBeUndefined();
    expect(serviceEntrySchema.safeParse(checked).error).toBeUndefined();
    const dup = serviceInputSchema.safeParse({ ...input, checks: [{ kind: "tcp" }, { id: "1", kind: "tcp" }] });
    expect(dup.error?.issues[0]).toMatchObject({ path: ["checks", 1, "id"], message: expect.stringContaining("used twice") });
    const both = serviceInputSchema.safeParse({ ...input, healthEndpoint: "/h" });
    expect(both.error?.issues[0]).toMatchObject({ path: ["checks"], message: expect.stringContaining("not both") });
    expect(serviceInputSchema.safeParse({ ...input, checks: [] }).error?.issues[0]?.message).toContain("at least one check");
    expect(serviceInputSchema.safeParse({ ...input, checks: Array.from({ length: 9 }, () => ({ kind: "tcp" })) }).error?.issues[0]?.message).toContain("at most 8");
  });

  it("keeps results out of what declares the instance, and carries them over a re-registration with the same checks", () => {
    expect(entryMatches(checked, input)).toBe(true);
    const echoed = serviceInputSchema.parse(checked); // a fetched entry sent back: results dropped
    expect(echoed.checks!.every((c) => !("status" in c) && !("output" in c))).toBe(true);
    const again = newEntry({ ...input, tags: ["x"] }, { nodeId: "self", now: NOW, before: checked });
    expect(again.checks![1]).toMatchObject({ id: "ssh", status: "healthy", output: "HTTP 200: ok" });
    expect(again.healthStatus).toBe("healthy");
    const changed = newEntry({ ...input, checks: [input.checks![0]!] }, { nodeId: "self", now: NOW, before: checked });
    expect(sameCheck(checked, changed)).toBe(false);
    expect(changed.healthStatus).toBe("unknown");
    expect(carryHealth(made, made)).toBe(made);
  });

  it("shows no header value through publicEntry, and keeps the value a redacted echo sends back", () => {
    const shown = publicEntry(checked);
    expect(JSON.stringify(shown)).not.toContain("s3cret");
    expect(shown.checks![0]!.headers).toEqual({ Authorization: REDACTED });
    expect(publicEntry(checked)).toBe(shown);
    expect(JSON.stringify(checked)).toContain("s3cret"); // the store keeps it
    const echoed = serviceInputSchema.parse(JSON.parse(JSON.stringify(shown)));
    const kept = newEntry(echoed, { nodeId: "self", now: NOW, before: checked });
    expect(kept.checks![0]!.headers).toEqual({ Authorization: "Bearer s3cret" });
    expect(sameCheck(checked, kept)).toBe(true);
    const plain = newEntry(serviceInputSchema.parse({ ...input, checks: [{ kind: "tcp" }] }), { nodeId: "self", now: NOW, before: undefined });
    expect(publicEntry(plain)).toBe(plain);
  });

  it("forgets results on restore: unknown until checked again", () => {
    const restored = uncheckedEntry(checked);
    expect(restored.healthStatus).toBe("unknown");
    expect(restored.checks!.map((c) => c.status)).toEqual([undefined, undefined]);
    expect(restored.checks![1]).toEqual({ id: "ssh", kind: "tcp", port: 22, interval: 60_000 });
  });
});
