// GET /ui and its assets over real HTTP: the page carries the list as inert JSON, loads nothing from elsewhere,
// and every value stays text. (The page in a real browser: test/e2e/dashboard.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { api, startTestServer } from "../helpers.js";

let server: ServerHandle;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

describe("GET /ui", () => {
  it("serves the page with the list inlined as JSON, a value that looks like markup escaped", async () => {
    await api(server.url, "PUT", "/v1/services/ui-1", { name: "web", address: "10.0.0.1", port: 80, metadata: { note: "</script><b>x</b>" } });
    const res = await fetch(`${server.url}/ui`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.headers.get("content-security-policy")).toMatch(/default-src 'self'/);
    const page = await res.text();
    expect(page).not.toContain("</script><b>");
    const json = /<script id="initial" type="application\/json">(.*?)<\/script>/s.exec(page)?.[1];
    const data = JSON.parse(json!) as { services: { id: string; metadata: Record<string, string> }[]; index: number };
    expect(data.services.find((s) => s.id === "ui-1")?.metadata.note).toBe("</script><b>x</b>");
    expect(data.index).toBe(Number((await api(server.url, "GET", "/v1/services")).headers.get("x-index")));
    // Nothing from another origin: every src and href is a path of ours.
    for (const [, url] of page.matchAll(/(?:src|href)="([^"]*)"/g)) expect(url).toMatch(/^\/ui\//);
  });

  it("inlines the routing policies as GET /v1/routing lists them, a rollout's schedule with them", async () => {
    await api(server.url, "PUT", "/v1/services/ui-2", { name: "web", version: "3.0.0", address: "10.0.0.2", port: 80, ttl: 600_000 });
    await api(server.url, "PUT", "/v1/services/ui-2/heartbeat", {});
    expect((await api(server.url, "PUT", "/v1/routing/db", { split: [{ version: "^16", weight: 100 }] })).status).toBe(200);
    expect((await api(server.url, "POST", "/v1/routing/web/rollout", { from: "^2", to: "^3", steps: [10, 100], pauseMs: 600_000 })).status).toBe(201);
    const page = await (await fetch(`${server.url}/ui`)).text();
    const data = JSON.parse(/<script id="initial" type="application\/json">(.*?)<\/script>/s.exec(page)![1]!) as { routing: Record<string, unknown> };
    expect(data.routing).toEqual((await api(server.url, "GET", "/v1/routing")).body.policies);
    expect(data.routing.db).toMatchObject({ split: [{ version: "^16", weight: 100 }] });
    expect(data.routing.web).toMatchObject({ split: [{ version: "^2", weight: 90 }, { version: "^3", weight: 10 }], rollout: { state: "running", step: 0, steps: [10, 100], nextAt: expect.any(Number) } });
    // The script shows them, and follows them by the policy's own read after each routing event.
    const script = await (await fetch(`${server.url}/ui/app.js`)).text();
    expect(script).toContain('"/v1/routing/" + encodeURIComponent(name)');
  });

  it("serves its script and style, and nothing else under /ui", async () => {
    const js = await fetch(`${server.url}/ui/app.js`);
    expect(js.headers.get("content-type")).toMatch(/^text\/javascript/);
    const script = await js.text();
    // The stream is read with fetch, so it can carry the token as a header; it resumes with Last-Event-ID.
    expect(script).toContain('fetch("/v1/events?"');
    expect(script).toContain('"last-event-id"');
    const css = await fetch(`${server.url}/ui/app.css`);
    expect(css.headers.get("content-type")).toMatch(/^text\/css/);
    expect((await fetch(`${server.url}/ui/other.js`)).status).toBe(404);
  });
});
