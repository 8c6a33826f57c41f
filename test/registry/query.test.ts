import { describe, expect, it } from "vitest";
import { compileQuery, matches, newServiceQuery, serviceQuerySchema, versionMatcher, type ServiceQuery } from "../../src/registry/query.js";
import { serviceEntry } from "../helpers.js";

const entry = serviceEntry;

const q = (query: ServiceQuery) => compileQuery(serviceQuerySchema.parse(query));

describe("query matching", () => {
  const e = entry({ name: "web", version: "2.1.3", nodeId: "nas", tags: ["prod", "eu"], metadata: { team: "platform", tier: "1" }, healthStatus: "degraded" });

  it("matches every filter alone", () => {
    expect(matches(e, q({}))).toBe(true);
    expect(matches(e, q({ name: "web" }))).toBe(true);
    expect(matches(e, q({ name: "api" }))).toBe(false);
    expect(matches(e, q({ version: "2.1.3" }))).toBe(true);
    expect(matches(e, q({ version: "2.1.4" }))).toBe(false);
    expect(matches(e, q({ tags: ["prod"] }))).toBe(true);
    expect(matches(e, q({ tags: ["prod", "eu"] }))).toBe(true);
    expect(matches(e, q({ tags: ["prod", "us"] }))).toBe(false);
    expect(matches(e, q({ healthStatus: "degraded" }))).toBe(true);
    expect(matches(e, q({ healthStatus: "healthy" }))).toBe(false);
    expect(matches(e, q({ nodeId: "nas" }))).toBe(true);
    expect(matches(e, q({ nodeId: "pi" }))).toBe(false);
    expect(matches(e, q({ metadata: { team: "platform" } }))).toBe(true);
    expect(matches(e, q({ metadata: { team: "platform", tier: "2" } }))).toBe(false);
    expect(matches(e, q({ metadata: { owner: "" } }))).toBe(false);
  });

  it("combines filters with AND", () => {
    expect(matches(e, q({ name: "web", version: "^2", tags: ["eu"], healthStatus: "degraded", nodeId: "nas", metadata: { tier: "1" } }))).toBe(true);
    expect(matches(e, q({ name: "web", version: "^2", tags: ["eu"], healthStatus: "degraded", nodeId: "nas", metadata: { tier: "9" } }))).toBe(false);
    expect(matches(e, q({ name: "web", version: "^3", tags: ["eu"] }))).toBe(false);
  });

  it("is case-insensitive for names, tags and nodes, which are DNS labels", () => {
    expect(matches(e, q({ name: "WEB", tags: ["PROD"], nodeId: "NAS" }))).toBe(true);
    // metadata values are data, compared exactly
    expect(matches(e, q({ metadata: { team: "Platform" } }))).toBe(false);
  });

  it("gives equal keys to equal queries whatever their order", () => {
    expect(q({ tags: ["b", "a"], metadata: { y: "1", x: "2" } }).key).toBe(q({ metadata: { x: "2", y: "1" }, tags: ["a", "b", "A"] }).key);
    expect(q({ name: "a" }).key).not.toBe(q({ nodeId: "a" }).key);
  });
});

describe("version matching", () => {
  it.each([
    ["^2.1", "2.1.0", true],
    ["^2.1", "2.9.9", true],
    ["^2.1", "3.0.0", false],
    ["^2.1", "2.0.9", false],
    [">=1.2 <2", "1.2.0", true],
    [">=1.2 <2", "1.99.0", true],
    [">=1.2 <2", "2.0.0", false],
    ["~1.4", "1.4.7", true],
    ["~1.4", "1.5.0", false],
    ["1.x", "1.7.2", true],
    ["2.1.0", "2.1.0", true],
    ["2.1.0", "2.1.1", false],
    ["v2.1.0", "2.1.0", true],
    ["^2", "2.1.0-beta.1", false],
    ["latest", "latest", true],
    ["latest", "1.0.0", false],
    ["^1", "not-semver", false],
    ["2024.05", "2024.05", true],
  ])("%s against %s is %s", (spec, version, expected) => {
    expect(versionMatcher(spec)(version)).toBe(expected);
  });
});

describe("the query builder", () => {
  it("is immutable and builds the seed's queries", () => {
    const base = newServiceQuery().withName("web-api");
    const prod = base.withTags(["production"]).withHealthStatus("healthy").withMetadata("region", "eu").withMetadata("team", "a");
    expect(base.toQuery()).toEqual({ name: "web-api" });
    expect(prod.toQuery()).toEqual({ name: "web-api", tags: ["production"], healthStatus: "healthy", metadata: { region: "eu", team: "a" } });
    expect(prod.withVersion("^1").withNode("nas").toQuery()).toMatchObject({ version: "^1", nodeId: "nas" });
    // withTags sets the tags, as the seed's with_tags does
    expect(prod.withTags(["x"]).toQuery().tags).toEqual(["x"]);
    const plain = prod.toQuery();
    plain.tags!.push("mutated");
    expect(prod.toQuery().tags).toEqual(["production"]);
  });
});
