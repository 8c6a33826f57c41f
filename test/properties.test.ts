// Property tests over the API's edges: any query string and any JSON body either parses or is refused with an
// InvalidError (never another exception), what parses round-trips, and the registry indexes agree with a scan.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { paramsFromQuery } from "../src/http/index.js";
import { queryFromParams } from "../src/http/params.js";
import { InvalidError } from "../src/lib/errors.js";
import { newEntry, parseOrThrow, serviceEntrySchema, serviceInputSchema } from "../src/model/index.js";
import { startDiscovery } from "../src/app/index.js";
import { compileQuery, serviceQuerySchema } from "../src/registry/index.js";
import { matches } from "../src/registry/query.js";

const RUNS = { numRuns: 500 };
/** Parses or throws InvalidError; anything else thrown fails the property. */
function parsesOrRefuses(run: () => unknown): boolean {
  try {
    run();
    return true;
  } catch (err) {
    if (err instanceof InvalidError) return true;
    throw err;
  }
}

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
// __proto__ is a key the schema refuses on purpose (see model/schema.ts); valid entries never carry it.
const key = fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/).filter((k) => k !== "__proto__");
const query = fc.record(
  {
    name: label,
    version: fc.constantFrom("1.2.3", "^2", ">=1 <3", "latest"),
    tags: fc.uniqueArray(label, { maxLength: 4 }),
    healthStatus: fc.constantFrom("healthy", "degraded", "unhealthy", "unknown" as const),
    nodeId: label,
    metadata: fc.dictionary(key, fc.string({ maxLength: 20 }), { maxKeys: 4 }),
  },
  { requiredKeys: [] },
);
const entry = fc.record({
  id: fc.stringMatching(/^[A-Za-z0-9._-]{1,20}$/),
  name: label,
  version: fc.constantFrom("1.0.0", "2.1.0", "3.0.0-beta.1", "abc"),
  nodeId: label,
  address: fc.oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom("nas.lan", "printer")),
  port: fc.integer({ min: 1, max: 65535 }),
  tags: fc.uniqueArray(label, { maxLength: 5 }),
  metadata: fc.dictionary(key, fc.string({ maxLength: 30 }), { maxKeys: 5 }),
});

describe("properties of the API's edges", () => {
  it("any query string parses into a query or is an InvalidError", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.array(fc.tuple(fc.constantFrom("name", "version", "tag", "health", "node", "meta.k", "meta.", "x", "index"), fc.string({ maxLength: 20 })), { maxLength: 8 }), (raw, pairs) => {
        const params = new URLSearchParams(raw);
        for (const [k, v] of pairs) params.append(k, v);
        return parsesOrRefuses(() => compileQuery(parseOrThrow(serviceQuerySchema, queryFromParams(params), "query")));
      }),
      RUNS,
    );
  });

  it("a query round-trips through URL parameters", () => {
    fc.assert(
      fc.property(query, (q) => {
        const back = queryFromParams(paramsFromQuery(q));
        expect(compileQuery(parseOrThrow(serviceQuerySchema, back, "query")).key).toBe(compileQuery(parseOrThrow(serviceQuerySchema, q, "query")).key);
      }),
      RUNS,
    );
  });

  it("any JSON body registers as a valid entry or is an InvalidError", () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), entry.map((e) => ({ ...e, extra: undefined })), entry), (body) =>
        parsesOrRefuses(() => {
          const input = parseOrThrow(serviceInputSchema, body, "service");
          const made = newEntry(input, { nodeId: "self", now: "2026-01-01T00:00:00.000Z", before: undefined });
          expect(serviceEntrySchema.safeParse(JSON.parse(JSON.stringify(made))).error).toBeUndefined();
          // What the API returns can be sent back as it is (a GET then a PUT) and makes the same entry.
          const again = parseOrThrow(serviceInputSchema, JSON.parse(JSON.stringify(made)), "service");
          expect(newEntry(again, { nodeId: "self", now: made.registeredAt, before: undefined })).toEqual(made);
        }),
      ),
      RUNS,
    );
  });

  it("a compiled query matches an entry exactly when every field it names does", () => {
    fc.assert(
      fc.property(entry, query, (e, q) => {
        const input = parseOrThrow(serviceInputSchema, e, "service");
        const made = newEntry(input, { nodeId: "self", now: "2026-01-01T00:00:00.000Z", before: undefined });
        const compiled = compileQuery(parseOrThrow(serviceQuerySchema, q, "query"));
        const expected =
          (q.name === undefined || q.name === made.name) &&
          (q.nodeId === undefined || q.nodeId === made.nodeId) &&
          (q.healthStatus === undefined || q.healthStatus === made.healthStatus) &&
          (q.tags ?? []).every((t) => made.tags.includes(t)) &&
          Object.entries(q.metadata ?? {}).every(([k, v]) => made.metadata[k] === v) &&
          (q.version === undefined || compiled.version!(made.version));
        expect(matches(made, compiled)).toBe(expected);
      }),
      RUNS,
    );
  });

  it("the registry's indexes answer a query as a scan of every entry would", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(entry, { selector: (e) => e.id, minLength: 1, maxLength: 30 }), fc.array(query, { minLength: 1, maxLength: 5 }), async (entries, queries) => {
        const d = await startDiscovery({ nodeId: "self" });
        try {
          await d.bulk({ register: entries });
          for (const q of queries) {
            const compiled = compileQuery(parseOrThrow(serviceQuerySchema, q, "query"));
            const scanned = [...d.registry.values()].filter((e) => matches(e, compiled)).map((e) => e.id).sort();
            expect(d.registry.query(compiled).map((e) => e.id).sort()).toEqual(scanned);
          }
        } finally {
          await d.stop();
        }
      }),
      { numRuns: 100 },
    );
  });
});
