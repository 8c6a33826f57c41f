// GET/PUT /v1/snapshot against real servers on loopback: a 10k round trip on durable stores, refusals that change
// nothing, the admin token, and a restore that DNS (c-ares) sees at once.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startTestServer } from "../helpers.js";
import { resolverFor } from "../dns/helpers.js";
import type { ServerHandle } from "../../src/app/server.js";

const running: ServerHandle[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function start(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<ServerHandle> {
  const server = await startTestServer(overrides);
  running.push(server);
  return server;
}
async function durable(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<ServerHandle> {
  const dir = await mkdtemp(join(tmpdir(), "hd-snap-"));
  dirs.push(dir);
  return start({ inMemory: false, dataDir: dir, ...overrides });
}

const json = { "content-type": "application/json" };

async function bulk(url: string, services: object[]): Promise<void> {
  for (let i = 0; i < services.length; i += 1000) {
    const res = await fetch(`${url}/v1/services/bulk`, { method: "POST", headers: json, body: JSON.stringify({ register: services.slice(i, i + 1000) }) });
    expect(res.status).toBe(200);
  }
}

async function all(url: string): Promise<unknown[]> {
  const res = await fetch(`${url}/v1/services`);
  return ((await res.json()) as { services: unknown[] }).services;
}

describe("snapshots", () => {
  it("round-trips 10k instances, maintenance and routing between two durable servers, and after a restart", async () => {
    const a = await durable();
    const services = Array.from({ length: 10_000 }, (_, i) => ({ id: `svc-${i}`, name: `s${i % 50}`, version: `1.${i % 3}.0`, address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 1000 + (i % 5000), tags: [`t${i % 7}`], metadata: { n: String(i) } }));
    await bulk(a.url, services);
    expect((await fetch(`${a.url}/v1/services/svc-7/maintenance`, { method: "PUT", headers: json, body: JSON.stringify({ enable: true, reason: "disk swap" }) })).status).toBe(200);
    const policy = { split: [{ version: "1.0.x", weight: 70 }, { version: "1.1.x", weight: 30 }] };
    expect((await fetch(`${a.url}/v1/routing/s1`, { method: "PUT", headers: json, body: JSON.stringify(policy) })).status).toBe(200);

    const saved = await fetch(`${a.url}/v1/snapshot`);
    expect(saved.status).toBe(200);
    expect(saved.headers.get("content-disposition")).toMatch(/attachment; filename="homelab-discovery-test-node-.*\.snap\.json"/);
    const file = await saved.text();
    const header = JSON.parse(file) as { format: string; version: number; count: number; sha256: string };
    expect(header).toMatchObject({ format: "homelab-discovery/registry-snapshot", version: 1, count: 10_000 });
    expect(header.sha256).toMatch(/^[0-9a-f]{64}$/);

    const b = await durable();
    await bulk(b.url, [{ id: "old-1", name: "old", address: "10.9.9.9", port: 1 }]);
    const restored = await fetch(`${b.url}/v1/snapshot`, { method: "PUT", headers: json, body: file });
    expect(restored.status).toBe(200);
    expect(await restored.json()).toEqual({ restored: 10_000, removed: 1, skipped: [], routingPolicies: 1 });
    const want = await all(a.url);
    expect(await all(b.url)).toEqual(want);
    expect(((await (await fetch(`${b.url}/v1/services/svc-7`)).json()) as { maintenance?: { reason: string } }).maintenance?.reason).toBe("disk swap");
    expect(await (await fetch(`${b.url}/v1/routing/s1`)).json()).toMatchObject(policy);

    // Durable: the same state after b restarts on its directory.
    const dir = dirs[1]!;
    await b.stop();
    running.splice(running.indexOf(b), 1);
    const again = await start({ inMemory: false, dataDir: dir });
    expect(await all(again.url)).toEqual(want);
    expect(await (await fetch(`${again.url}/v1/routing/s1`)).json()).toMatchObject(policy);
  }, 60_000);

  it("refuses a corrupted, truncated, foreign or invalid file with a 400 that says why, and changes nothing", async () => {
    const a = await start();
    await bulk(a.url, [{ id: "web-1", name: "web", address: "10.0.0.1", port: 80 }]);
    const file = await (await fetch(`${a.url}/v1/snapshot`)).text();
    const b = await start();
    await bulk(b.url, [{ id: "keep-1", name: "keep", address: "10.0.0.2", port: 81 }]);
    const before = await all(b.url);
    const indexBefore = (await fetch(`${b.url}/v1/services`)).headers.get("x-index");

    const doc = JSON.parse(file) as { body: { entries: { port: number; name: string }[] }; sha256: string; count: number };
    const flipped = file.replace('"address":"10.0.0.1"', '"address":"10.0.0.9"');
    expect(flipped).not.toBe(file);
    const invalid = structuredClone(doc);
    invalid.body.entries[0]!.port = 0;
    const { createHash } = await import("node:crypto");
    invalid.sha256 = createHash("sha256").update(JSON.stringify(invalid.body)).digest("hex");
    const cases: [string, string, RegExp][] = [
      ["corrupted", flipped, /checksum mismatch/],
      ["truncated", file.slice(0, Math.floor(file.length / 2)), /not JSON, or truncated/],
      ["foreign", JSON.stringify({ format: "consul-snapshot", version: 1, sha256: doc.sha256, count: 1, body: doc.body }), /not a homelab-discovery snapshot/],
      ["future version", file.replace('"version":1', '"version":2'), /snapshot version must be 1/],
      ["invalid entry (checksum right)", JSON.stringify(invalid), /entries\.0\.port/],
      ["count mismatch", file.replace('"count":1', '"count":2'), /1 entries where the header says 2/],
    ];
    for (const [what, body, message] of cases) {
      const res = await fetch(`${b.url}/v1/snapshot`, { method: "PUT", headers: json, body });
      expect(res.status, what).toBe(400);
      const error = (await res.json()) as { error: { message: string } };
      expect(error.error.message, what).toMatch(message);
    }
    expect((await fetch(`${b.url}/v1/snapshot`, { method: "PUT", headers: { "content-type": "text/plain" }, body: file })).status).toBe(415);
    expect(await all(b.url)).toEqual(before);
    expect((await fetch(`${b.url}/v1/services`)).headers.get("x-index")).toBe(indexBefore);
  });

  it("needs the admin token for both routes when one is set", async () => {
    const a = await start({ adminToken: "s3cret-token" });
    expect((await fetch(`${a.url}/v1/snapshot`)).status).toBe(401);
    expect((await fetch(`${a.url}/v1/snapshot`, { method: "PUT", headers: json, body: "{}" })).status).toBe(401);
    const auth = { authorization: "Bearer s3cret-token" };
    const file = await fetch(`${a.url}/v1/snapshot`, { headers: auth });
    expect(file.status).toBe(200);
    expect((await fetch(`${a.url}/v1/snapshot`, { method: "PUT", headers: { ...json, ...auth }, body: await file.text() })).status).toBe(200);
    // Other reads stay open.
    expect((await fetch(`${a.url}/v1/services`)).status).toBe(200);
  });

  it("a restore on a running server is seen by DNS at once", async () => {
    const a = await start();
    await bulk(a.url, [{ id: "api-1", name: "api", address: "10.1.2.3", port: 8080 }]);
    const file = await (await fetch(`${a.url}/v1/snapshot`)).text();
    const b = await start();
    await bulk(b.url, [{ id: "api-9", name: "api", address: "10.9.9.9", port: 8080 }]);
    const resolver = resolverFor(b.dnsAddress.port);
    expect(await resolver.resolve4("api.service.home.arpa")).toEqual(["10.9.9.9"]);
    expect((await fetch(`${b.url}/v1/snapshot`, { method: "PUT", headers: json, body: file })).status).toBe(200);
    expect(await resolver.resolve4("api.service.home.arpa")).toEqual(["10.1.2.3"]);
  });

  it("leaves instances a services file declares to the file, on both sides", async () => {
    const files = await mkdtemp(join(tmpdir(), "hd-snap-files-"));
    dirs.push(files);
    await writeFile(join(files, "nas.json"), JSON.stringify({ id: "nas-smb", name: "nas", address: "192.168.1.10", port: 445 }));
    const a = await start({ servicesDir: files });
    await bulk(a.url, [{ id: "web-1", name: "web", address: "10.0.0.1", port: 80 }]);
    const file = await (await fetch(`${a.url}/v1/snapshot`)).text();
    expect(JSON.parse(file)).toMatchObject({ count: 2 });

    const other = await mkdtemp(join(tmpdir(), "hd-snap-files-"));
    dirs.push(other);
    await writeFile(join(other, "printer.json"), JSON.stringify({ id: "printer", name: "printer", address: "192.168.1.30", port: 631 }));
    const b = await start({ servicesDir: other });
    const res = await fetch(`${b.url}/v1/snapshot`, { method: "PUT", headers: json, body: file });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ restored: 1, removed: 0, skipped: [{ id: "nas-smb", reason: "declared by a services file: its source re-asserts it" }], routingPolicies: 0 });
    expect(((await all(b.url)) as { id: string; source?: string }[]).map((e) => [e.id, e.source])).toEqual([
      ["printer", "file"],
      ["web-1", undefined],
    ]);
  });

  it("restores onto a full registry: the instances it removes free their places (--max-instances)", async () => {
    const a = await start();
    await bulk(a.url, [1, 2, 3].map((i) => ({ id: `new-${i}`, name: "new", address: `10.0.1.${i}`, port: 80 })));
    const file = await (await fetch(`${a.url}/v1/snapshot`)).text();
    const b = await start({ maxInstances: 3 });
    await bulk(b.url, [1, 2, 3].map((i) => ({ id: `old-${i}`, name: "old", address: `10.0.2.${i}`, port: 80 })));
    const res = await fetch(`${b.url}/v1/snapshot`, { method: "PUT", headers: json, body: file });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ restored: 3, removed: 3 });
    // Still full: one more is refused.
    const more = await fetch(`${b.url}/v1/services/x-1`, { method: "PUT", headers: json, body: JSON.stringify({ name: "x", address: "10.0.3.1", port: 1 }) });
    expect(more.status).toBe(409);
  });
});
