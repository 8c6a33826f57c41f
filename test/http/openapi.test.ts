// GET /openapi.json held to the routes: every route the app serves is documented, every documented operation
// answers (no "no route" 404, no 405), and real answers validate against the documented JSON Schemas, read back
// with zod's own JSON Schema reader (z.fromJSONSchema), so the check goes through the document, not the sources.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import type { ServerHandle } from "../../src/app/server.js";
import { createHttpApp, servedRoutes } from "../../src/http/index.js";
import { DOCUMENTED } from "../../src/http/openapi/index.js";
import { api, silent, startTestServer } from "../helpers.js";

type Json = Record<string, any>;
let server: ServerHandle;
let doc: Json;
beforeAll(async () => {
  server = await startTestServer();
  const res = await fetch(`${server.url}/openapi.json`);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  doc = (await res.json()) as Json;
  await api(server.url, "PUT", "/v1/services/web-1", { name: "web", address: "127.0.0.1", port: 8080, ttl: 60_000, tags: ["prod"], metadata: { team: "platform" } });
  await api(server.url, "PUT", "/v1/services/web-1/heartbeat", {});
  await api(server.url, "PUT", "/v1/services/web-2", { name: "web", address: "127.0.0.2", port: 8080, tcpCheck: true });
});
afterAll(() => server.stop());

const SAMPLE: Record<string, string> = { id: "web-1", name: "web", node: "test-node", state: "any", check: "service:web-1" };
const concrete = (path: string) => path.replace(/\{([^}]+)\}/g, (_, p: string) => SAMPLE[p] ?? p);
/** The documented schema of an answer, as a zod schema read back from the JSON Schema ($refs to components inlined). */
function documented(path: string, method: string, status: number): z.ZodType | undefined {
  const schema = doc.paths[path]?.[method]?.responses?.[String(status)]?.content?.["application/json"]?.schema;
  if (schema === undefined) return undefined;
  const inline = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(inline);
    if (v === null || typeof v !== "object") return v;
    const ref = (v as Json).$ref as string | undefined;
    if (ref?.startsWith("#/components/schemas/")) return inline(doc.components.schemas[ref.split("/").pop()!]);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, inline(x)]));
  };
  return z.fromJSONSchema(inline(schema) as never);
}

describe("GET /openapi.json", () => {
  it("is OpenAPI 3.1 and documents every route the app serves, and nothing it does not", () => {
    expect(doc.openapi).toBe("3.1.0");
    const app = createHttpApp(server.discovery, { logger: silent, metrics: { contentType: "text/plain", render: async () => "" } });
    const served = new Set(
      servedRoutes(app).filter((r) => r.method !== "ALL" && !r.path.includes("*")).map((r) => `${r.method} ${r.path.replace(/:([^/]+)/g, "{$1}")}`),
    );
    const inDoc = new Set(Object.entries(doc.paths as Record<string, Json>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)));
    expect([...served].filter((r) => !inDoc.has(r))).toEqual([]);
    expect([...inDoc].filter((r) => !served.has(r))).toEqual([]);
    expect(inDoc.size).toBe(DOCUMENTED.length);
  });

  it("every documented operation answers, and each JSON answer validates against its documented schema", async () => {
    const checked: string[] = [];
    for (const { method, path } of DOCUMENTED) {
      if (method !== "GET") continue;
      const url = concrete(path);
      if (url === "/v1/events") continue; // a stream: below
      const res = await fetch(`${server.url}${url}`, { redirect: "manual" });
      expect(res.status, `${method} ${url}`).not.toBe(405);
      const text = await res.text();
      expect(text, `${method} ${url}`).not.toMatch(/no route for/);
      const schema = documented(path, "get", res.status);
      const declared = doc.paths[path].get.responses[String(res.status)];
      expect(declared, `${method} ${url} answered ${res.status}, which is not documented`).toBeDefined();
      if (schema === undefined) continue;
      const parsed = schema.safeParse(JSON.parse(text));
      expect(parsed.success, `${method} ${url}: ${parsed.error?.message}`).toBe(true);
      checked.push(url);
    }
    expect(checked).toEqual(expect.arrayContaining(["/v1/services", "/v1/services/web-1", "/v1/stats", "/v1/health/service/web", "/v1/catalog/service/web", "/v1/agent/services", "/v1/prometheus/targets"]));
  });

  it("writes and errors validate too: register, bulk, check, heartbeat, maintenance, and a 400 with zod's issues", async () => {
    const cases: [string, string, string, unknown][] = [
      ["PUT", "/v1/services/{id}", "/v1/services/web-3", { name: "web", address: "127.0.0.3", port: 80 }],
      ["POST", "/v1/services/bulk", "/v1/services/bulk", { register: [{ id: "db-1", name: "db", address: "127.0.0.4", port: 5432 }] }],
      ["POST", "/v1/services/{id}/check", "/v1/services/web-2/check", undefined],
      ["PUT", "/v1/services/{id}/heartbeat", "/v1/services/web-1/heartbeat", { status: "degraded", note: "slow" }],
      ["PUT", "/v1/services/{id}/maintenance", "/v1/services/web-3/maintenance", { enable: true }],
      ["POST", "/v1/checks", "/v1/checks", undefined],
      ["DELETE", "/v1/cache", "/v1/cache", undefined],
      ["PUT", "/v1/services/{id}", "/v1/services/bad-1", { name: "Not A Label", address: "127.0.0.5", port: 0 }],
      ["GET", "/v1/services", "/v1/services?health=sick", undefined],
      ["GET", "/v1/services/{id}", "/v1/services/ghost", undefined],
      ["DELETE", "/v1/services/{id}", "/v1/services/db-1", undefined],
    ];
    const statuses: number[] = [];
    for (const [method, path, url, body] of cases) {
      const res = await api(server.url, method, url, body);
      statuses.push(res.status);
      const schema = documented(path, method.toLowerCase(), res.status);
      expect(schema, `${method} ${url} answered ${res.status}, which is not documented`).toBeDefined();
      const parsed = schema!.safeParse(res.body);
      expect(parsed.success, `${method} ${url} ${res.status}: ${parsed.error?.message}`).toBe(true);
    }
    expect(statuses).toEqual([201, 200, 200, 200, 200, 200, 200, 400, 400, 404, 200]);
    // A wrong answer fails the documented schema: the check can fail.
    expect(documented("/v1/services/{id}", "get", 200)!.safeParse({ id: "x" }).success).toBe(false);
  });

  it("documents the event stream's events, and a real event validates against ServiceEvent", async () => {
    const op = doc.paths["/v1/events"].get;
    expect(Object.keys(op.responses["200"].content)).toEqual(["text/event-stream"]);
    const controller = new AbortController();
    const res = await fetch(`${server.url}/v1/events?name=evdoc`, { signal: controller.signal });
    const reader = res.body!.getReader();
    await api(server.url, "PUT", "/v1/services/evdoc-1", { name: "evdoc", address: "127.0.0.6", port: 80 });
    let text = "";
    while (!text.includes("data: ")) text += new TextDecoder().decode((await reader.read()).value);
    while (!text.slice(text.indexOf("data: ")).includes("\n\n")) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    const data = JSON.parse(text.slice(text.indexOf("data: ") + 6).split("\n")[0]!);
    expect(z.fromJSONSchema(doc.components.schemas.ServiceEvent).safeParse(data).success).toBe(true);
    expect(z.fromJSONSchema(doc.components.schemas.ServiceEvent).safeParse({ ...data, type: "exploded" }).success).toBe(false);
  });
});

describe("GET /docs", () => {
  it("renders every documented operation from local assets only", async () => {
    const res = await fetch(`${server.url}/docs`);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const page = await res.text();
    for (const { method, path } of DOCUMENTED) expect(page).toContain(`${method} ${path}`);
    for (const [, url] of page.matchAll(/(?:src|href)="([^"#]*)"/g)) expect(url).toMatch(/^\/(ui\/|openapi\.json)/);
  });
});
