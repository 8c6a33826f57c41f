// The dashboard in a real browser: Debian's chromium driven by playwright-core against the built server. It lists
// what is registered, follows the event stream without a reload, filters with the query syntax, refuses admin
// actions without the token, maintenance from the page takes the instance out of real DNS answers, and each
// service's routing policy and rollout show and follow the API. The
// browser resolves no name (it talks to 127.0.0.1 by address only). Screenshots land in test-results/.
import { mkdirSync } from "node:fs";
import { Resolver } from "node:dns/promises";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api } from "../helpers.js";
import { root, startBuiltServer, type BuiltServer } from "./built-server.js";

const TOKEN = "dashboard-secret";
const auth = { authorization: `Bearer ${TOKEN}` };
const artifacts = join(root, "test-results");

let server: BuiltServer;
let browser: Browser;
let page: Page;
const resolver = new Resolver();

async function webAddresses(): Promise<string[]> {
  try {
    return (await resolver.resolve4("web.service.home.arpa")).sort();
  } catch (err) {
    if ((err as { code?: string }).code === "ENOTFOUND") return [];
    throw err;
  }
}

beforeAll(async () => {
  server = await startBuiltServer({ HD_ADMIN_TOKEN: TOKEN });
  resolver.setServers([`127.0.0.1:${server.dnsPort}`]);
  const ttl = { ttl: 600_000 };
  const register = [
    { id: "web-1", name: "web", version: "2.1.0", address: "127.0.0.1", port: 8080, tags: ["prod"], metadata: { team: "platform" }, ...ttl },
    { id: "web-2", name: "web", version: "2.1.0", address: "127.0.0.2", port: 8080, tags: ["prod"], metadata: { team: "platform" }, ...ttl },
    { id: "web-3", name: "web", version: "2.2.0", address: "127.0.0.3", port: 8080, tags: ["canary"], metadata: { team: "platform" }, ...ttl },
    { id: "db-1", name: "db", version: "16.1", address: "127.0.0.4", port: 5432, tags: ["primary"], metadata: { team: "data" }, ...ttl },
  ];
  expect((await api(server.url, "POST", "/v1/services/bulk", { register }, auth)).status).toBe(200);
  for (const { id } of register) await api(server.url, "PUT", `/v1/services/${id}/heartbeat`, { note: "ok" }, auth);
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.on("dialog", (dialog) => void dialog.accept());
  mkdirSync(artifacts, { recursive: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

const instance = (id: string) => page.locator(`.instance[data-id="${id}"]`);

describe("the dashboard at /ui", () => {
  it("lists the registered services and their instances, with health, tags, metadata, version and node", async () => {
    await page.goto(`${server.url}/ui`);
    await expect.poll(() => page.locator(".instance").count()).toBe(4);
    expect(await page.locator("article.service h2").allTextContents()).toEqual(["db 1 instance", "web 3 instances"]);
    const web1 = await instance("web-1").innerText();
    for (const text of ["web-1", "healthy", "127.0.0.1:8080", "v2.1.0", "prod", "team=platform"]) expect(web1).toContain(text);
    await expect.poll(() => page.locator("#live").textContent()).toBe("live");
  });

  it("shows an instance turning unhealthy without a reload, with the check's output, in the list and the event log", async () => {
    // In the page, where globalThis is its window (this file is compiled without the DOM's types).
    const marker = await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = Math.random()));
    await api(server.url, "PUT", "/v1/services/web-1/heartbeat", { status: "unhealthy", note: "disk full" }, auth);
    await expect.poll(() => instance("web-1").getAttribute("data-health")).toBe("unhealthy");
    expect(await instance("web-1").locator(".output").textContent()).toBe("heartbeat: disk full");
    expect(await page.locator('#events li[data-type="health"]').first().textContent()).toContain("web-1 health: healthy -> unhealthy (heartbeat: disk full)");
    // The same page: no reload happened.
    expect(await page.evaluate(() => (globalThis as unknown as { marker: number }).marker)).toBe(marker);
  });

  it("narrows the list with the filter box's query syntax", async () => {
    await page.fill("#filter", "name=web tag=prod");
    await expect.poll(() => page.locator(".instance").evaluateAll((els) => els.map((e) => e.getAttribute("data-id")))).toEqual(["web-1", "web-2"]);
    await page.fill("#filter", "health=sick");
    await expect.poll(() => page.locator("#message").textContent()).toMatch(/health/);
    await page.fill("#filter", "");
    await expect.poll(() => page.locator(".instance").count()).toBe(4);
  });

  it("refuses the admin actions without the token, and changes nothing", async () => {
    await instance("web-2").locator('button[data-action="maintenance"]').click();
    await expect.poll(() => page.locator("#message").textContent()).toMatch(/maintenance web-2: .*admin token/);
    await instance("db-1").locator('button[data-action="deregister"]').click();
    await expect.poll(() => page.locator("#message").textContent()).toMatch(/deregister db-1: .*admin token/);
    const web2 = await api(server.url, "GET", "/v1/services/web-2");
    expect(web2.body.maintenance).toBeUndefined();
    expect((await api(server.url, "GET", "/v1/services/db-1")).status).toBe(200);
    expect(await webAddresses()).toEqual(["127.0.0.2", "127.0.0.3"]);
  });

  it("with the token: maintenance from the page takes the instance out of DNS, a check runs, deregister removes", async () => {
    await page.fill("#token", TOKEN);
    await instance("web-2").locator('button[data-action="maintenance"]').click();
    await expect.poll(() => instance("web-2").getAttribute("data-maintenance")).toBe("on");
    // A real DNS query to the server's DNS port: web-2 is no longer an answer (web-1 is unhealthy).
    await expect.poll(webAddresses).toEqual(["127.0.0.3"]);
    await instance("web-3").locator('button[data-action="check"]').click();
    await expect.poll(() => instance("web-3").locator(".output").count()).toBe(1);
    expect(await instance("web-3").locator(".output").textContent()).not.toBe("");
    await instance("db-1").locator('button[data-action="deregister"]').click();
    await expect.poll(() => instance("db-1").count()).toBe(0);
    expect((await api(server.url, "GET", "/v1/services/db-1")).status).toBe(404);
    await page.screenshot({ path: join(artifacts, "dashboard.png"), fullPage: true });
    // Back out of maintenance from the page: web-2 answers again.
    await instance("web-2").locator('button[data-action="maintenance"]').click();
    await expect.poll(webAddresses).toEqual(["127.0.0.2", "127.0.0.3"]);
  });

  it("is readable on a phone: one column, nothing wider than the screen", async () => {
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await phone.goto(`${server.url}/ui`);
    await expect.poll(() => phone.locator(".instance").count()).toBe(3);
    const widest = await phone.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement.scrollWidth);
    expect(widest).toBeLessThanOrEqual(390);
    await phone.screenshot({ path: join(artifacts, "dashboard-phone.png"), fullPage: true });
    await phone.close();
  });

  it("shows each service's routing policy and its rollout, live: the split, each step as it comes, a rollback's reason, the panel gone with the policy", async () => {
    const web = page.locator('article[data-service="web"] .routing');
    const rollout = web.locator(".rollout");
    const slow = { timeout: 15_000 };
    expect(await web.count()).toBe(0);
    expect((await api(server.url, "PUT", "/v1/routing/web", { split: [{ version: "~2.1", weight: 90 }, { version: "~2.2", weight: 10 }] }, auth)).status).toBe(200);
    await expect.poll(() => web.locator(".split").textContent()).toBe("~2.1 90% \u00b7 ~2.2 10%");
    expect(await rollout.count()).toBe(0);
    // A policy set before its service registers: the service shows, with no instances.
    expect((await api(server.url, "PUT", "/v1/routing/api", { split: [{ version: "^1", weight: 100 }] }, auth)).status).toBe(200);
    await expect.poll(() => page.locator('article[data-service="api"] .split').textContent()).toBe("blue-green: ^1");
    expect(await page.locator('article[data-service="api"] h2').textContent()).toBe("api 0 instances");
    // A filter on the instances (a tag) leaves it out; one on its name keeps it.
    await page.fill("#filter", "tag=prod");
    await expect.poll(() => page.locator("article.service").evaluateAll((els) => els.map((e) => e.getAttribute("data-service")))).toEqual(["web"]);
    expect(await web.locator(".split").textContent()).toBe("~2.1 90% \u00b7 ~2.2 10%");
    await page.fill("#filter", "name=api");
    await expect.poll(() => page.locator("article.service").evaluateAll((els) => els.map((e) => e.getAttribute("data-service")))).toEqual(["api"]);
    await page.fill("#filter", "");
    await expect.poll(() => page.locator(".instance").count()).toBe(3);

    // A rollout with short pauses: the page follows it step by step from the events.
    const started = await api(server.url, "POST", "/v1/routing/web/rollout", { from: "~2.1", to: "~2.2", steps: [20, 60, 100], pauseMs: 3000 }, auth);
    expect(started.status).toBe(201);
    await expect.poll(() => rollout.getAttribute("data-step")).toBe("1");
    // The next step's time comes with the policy's read after the event.
    await expect.poll(() => rollout.innerText()).toContain("next step");
    const first = await rollout.innerText();
    for (const text of ["rollout running", "~2.1 -> ~2.2", "step 1 / 3", "~2.2 at 20%"]) expect(first).toContain(text);
    expect(await web.locator(".split").textContent()).toBe("~2.1 80% \u00b7 ~2.2 20%");
    await expect.poll(() => rollout.getAttribute("data-step"), slow).toBe("2");
    expect(await rollout.innerText()).toContain("~2.2 at 60%");
    expect(await web.locator(".split").textContent()).toBe("~2.1 40% \u00b7 ~2.2 60%");
    await expect.poll(() => rollout.getAttribute("data-state"), slow).toBe("completed");
    await expect.poll(() => rollout.innerText()).toContain("step 3 / 3");
    expect(await rollout.innerText()).not.toContain("next step");
    expect(await web.locator(".split").textContent()).toBe("blue-green: ~2.2");
    // Removed: the service without instances goes with its policy.
    expect((await api(server.url, "DELETE", "/v1/routing/api", undefined, auth)).status).toBe(200);
    await expect.poll(() => page.locator('article[data-service="api"]').count()).toBe(0);

    // Again, and the canary fails: rolled back at once, with the reason.
    expect((await api(server.url, "POST", "/v1/routing/web/rollout", { from: "~2.1", to: "~2.2", steps: [10, 100], pauseMs: 600_000 }, auth)).status).toBe(201);
    await expect.poll(() => rollout.getAttribute("data-state")).toBe("running");
    await api(server.url, "PUT", "/v1/services/web-3/heartbeat", { status: "unhealthy", note: "500s" }, auth);
    await expect.poll(() => rollout.getAttribute("data-state")).toBe("rolled-back");
    expect(await rollout.locator(".reason").textContent()).toBe('0 of 1 checked instances of "~2.2" are healthy (0%, below 100%)');
    await expect.poll(() => rollout.innerText()).toContain("at step 1 / 2");
    expect(await web.locator(".split").textContent()).toBe("blue-green: ~2.1");
    expect(await page.locator('#events li[data-type="routing"]').first().textContent()).toContain("web routing: ~2.1 100%, ~2.2 0% (rollout to ~2.2 rolled-back");

    // A long one, for the picture; a reload shows it from the page's own data.
    await api(server.url, "PUT", "/v1/services/web-3/heartbeat", { note: "ok" }, auth);
    expect((await api(server.url, "POST", "/v1/routing/web/rollout", { from: "~2.1", to: "~2.2", steps: [10, 25, 50, 100], pauseMs: 600_000 }, auth)).status).toBe(201);
    await expect.poll(() => rollout.getAttribute("data-state")).toBe("running");
    await expect.poll(() => instance("web-3").getAttribute("data-health")).toBe("healthy");
    // The README's picture (docs/dashboard.png is a copy of this one).
    await page.locator("#filter").blur();
    await page.screenshot({ path: join(artifacts, "dashboard-routing.png"), fullPage: true });
    await page.reload();
    await expect.poll(() => rollout.getAttribute("data-step")).toBe("1");
    expect(await rollout.innerText()).toContain("step 1 / 4");
    // Straight from the page's data: no read was needed for the schedule.
    expect(await rollout.locator(".due").textContent()).toMatch(/\(in \d+ s\)$/);
    await expect.poll(() => page.locator("#live").textContent()).toBe("live");

    // Removed while running: the panel goes, the instances stay.
    expect((await api(server.url, "DELETE", "/v1/routing/web", undefined, auth)).status).toBe(200);
    await expect.poll(() => web.count()).toBe(0);
    expect(await page.locator(".instance").count()).toBe(3);
  });
});

describe("the dashboard on a server with --read-token", () => {
  it("comes without data, asks for a token, then lists and follows the events with it", async () => {
    const closed = await startBuiltServer({ HD_ADMIN_TOKEN: TOKEN, HD_READ_TOKEN: "dashboard-read" });
    const reader = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    reader.on("dialog", (dialog) => void dialog.accept());
    try {
      const admin = { authorization: `Bearer ${TOKEN}` };
      expect((await api(closed.url, "PUT", "/v1/services/app-1", { name: "app", address: "127.0.0.9", port: 80, ttl: 600_000 }, admin)).status).toBe(201);
      expect((await api(closed.url, "PUT", "/v1/routing/app", { split: [{ version: "^1", weight: 100 }] }, admin)).status).toBe(200);
      await reader.goto(`${closed.url}/ui`);
      await expect.poll(() => reader.locator("#message").textContent()).toMatch(/needs a token to read/);
      expect(await reader.locator(".instance").count()).toBe(0);
      await reader.fill("#token", "wrong-token-1");
      await reader.locator("#token").dispatchEvent("change");
      await expect.poll(() => reader.locator("#message").textContent()).toMatch(/not one of this server's/);
      await reader.fill("#token", "dashboard-read");
      await reader.locator("#token").dispatchEvent("change");
      await expect.poll(() => reader.locator(".instance").count()).toBe(1);
      // The policies are read with the token too (the page came without them).
      expect(await reader.locator('article[data-service="app"] .split').textContent()).toBe("blue-green: ^1");
      await expect.poll(() => reader.locator("#live").textContent()).toBe("live");
      // The stream carries the token: a registration shows up without a reload.
      await api(closed.url, "PUT", "/v1/services/app-2", { name: "app", address: "127.0.0.10", port: 80, ttl: 600_000 }, admin);
      await expect.poll(() => reader.locator(".instance").count()).toBe(2);
      // A read token cannot write: the page says which token it needs.
      await reader.locator('.instance[data-id="app-1"] button[data-action="deregister"]').click();
      await expect.poll(() => reader.locator("#message").textContent()).toMatch(/deregister app-1: .*needs the admin token; the read token does not have the write scope/);
      expect((await api(closed.url, "GET", "/v1/services/app-1", undefined, admin)).status).toBe(200);
    } finally {
      await reader.close();
      await closed.stop();
    }
  });
});
