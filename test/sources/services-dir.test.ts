// --services-dir wired to the registry: file-declared services are registered, marked, kept in step on reload.
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { MemoryStore } from "../../src/store/index.js";
import { resolverFor } from "../dns/helpers.js";
import { api, startTestServer } from "../helpers.js";

let dir: string;
let server: ServerHandle;
const store = new MemoryStore();
const nas = (port: number) => JSON.stringify({ services: [{ id: "nas-smb", name: "nas", address: "192.168.1.10", port, tags: ["smb"] }] });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "hd-services-"));
  await writeFile(join(dir, "nas.json"), nas(445));
  await writeFile(join(dir, "printer.json"), JSON.stringify({ id: "printer", name: "printer", address: "192.168.1.30", port: 631 }));
  server = await startTestServer({ servicesDir: dir }, { store });
});
afterAll(async () => {
  await server.stop();
  await rm(dir, { recursive: true });
});

describe("services from files", () => {
  it("registers them at startup, marked as from a file, in DNS", async () => {
    const r = await api(server.url, "GET", "/v1/services/nas-smb");
    expect(r.body).toMatchObject({ name: "nas", port: 445, source: "file", healthStatus: "healthy" });
    expect(await resolverFor(server.dnsAddress.port).resolve4("nas.service.home.arpa")).toEqual(["192.168.1.10"]);
  });

  it("refuses API re-registration unless forced: the file is where it changes", async () => {
    const refused = await api(server.url, "PUT", "/v1/services/nas-smb", { name: "nas", address: "192.168.1.11", port: 445 });
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toContain("declared in a services file: change it there (and reload), or re-register with force");
    expect((await api(server.url, "GET", "/v1/services/nas-smb")).body).toMatchObject({ address: "192.168.1.10", source: "file" });
  });

  it("refuses API deregistration unless forced", async () => {
    const refused = await api(server.url, "DELETE", "/v1/services/printer");
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toContain("declared in a services file");
    expect((await api(server.url, "DELETE", "/v1/services/printer?force=true")).status).toBe(200);
    expect((await api(server.url, "GET", "/v1/services/printer")).status).toBe(404);
  });

  it("keeps the same rule in bulk calls: a file's instance is changed or removed only with force", async () => {
    const other = { id: "bulk-x", name: "x", address: "192.168.1.40", port: 1 };
    const register = await api(server.url, "POST", "/v1/services/bulk", { register: [other, { id: "nas-smb", name: "nas", address: "192.168.1.11", port: 445 }] });
    expect(register.status).toBe(409);
    expect(register.body.error.items).toEqual([expect.objectContaining({ index: 1, id: "nas-smb", code: "file_declared" })]);
    const deregister = await api(server.url, "POST", "/v1/services/bulk", { deregister: ["nas-smb"] });
    expect(deregister.status).toBe(409);
    expect(deregister.body.error.items[0].message).toContain("declared in a services file");
    // Nothing of either call was applied, and the file's instances are unchanged.
    expect((await api(server.url, "GET", "/v1/services/bulk-x")).status).toBe(404);
    expect((await api(server.url, "GET", "/v1/services/nas-smb")).body).toMatchObject({ address: "192.168.1.10", source: "file" });
    // With force the call goes through, as a PUT or DELETE with force does; the next reload puts the file's back.
    const forced = await api(server.url, "POST", "/v1/services/bulk?force=true", { deregister: ["nas-smb"] });
    expect(forced.status).toBe(200);
    expect(forced.body.deregistered).toEqual(["nas-smb"]);
    expect((await server.reload()).ok).toBe(true);
    expect((await api(server.url, "GET", "/v1/services/nas-smb")).body).toMatchObject({ address: "192.168.1.10", source: "file" });
  });

  it("follows the files on reload: changed, removed and restored services", async () => {
    const registeredAt = (await api(server.url, "GET", "/v1/services/nas-smb")).body.registeredAt;
    await writeFile(join(dir, "nas.json"), nas(446));
    expect((await server.reload()).ok).toBe(true);
    expect((await api(server.url, "GET", "/v1/services/nas-smb")).body.port).toBe(446);
    expect((await api(server.url, "GET", "/v1/services/printer")).status).toBe(200); // force-deregistered, declared again
    await rm(join(dir, "printer.json"));
    await server.reload();
    expect((await api(server.url, "GET", "/v1/services/printer")).status).toBe(404);
    expect(registeredAt).toBeDefined();
  });

  it("leaves unchanged services alone on reload and restart", async () => {
    const before = (await api(server.url, "GET", "/v1/services/nas-smb")).body;
    await server.reload();
    expect((await api(server.url, "GET", "/v1/services/nas-smb")).body.registeredAt).toBe(before.registeredAt);
    const again = await startTestServer({ servicesDir: dir }, { store });
    expect((await api(again.url, "GET", "/v1/services/nas-smb")).body.registeredAt).toBe(before.registeredAt);
    await again.stop();
  });

  it("keeps everything on a reload when the directory is gone (moved, unmounted): it does not mean 'no services'", async () => {
    await rename(dir, `${dir}.moved`);
    try {
      const r = await server.reload();
      expect(r.ok).toBe(false);
      expect(!r.ok && r.error).toContain("the services directory does not exist (any more)");
      expect((await api(server.url, "GET", "/v1/services/nas-smb")).status).toBe(200);
    } finally {
      await rename(`${dir}.moved`, dir);
    }
  });

  it("keeps everything on a reload with a broken file, and refuses to start with one", async () => {
    await writeFile(join(dir, "bad.json"), JSON.stringify({ id: "bad", name: "bad", address: "192.168.1.40", port: 70000 }));
    const r = await server.reload();
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toContain("bad.json: port: must be 1-65535");
    expect((await api(server.url, "GET", "/v1/services/nas-smb")).body.port).toBe(446);
    await expect(startTestServer({ servicesDir: dir })).rejects.toThrow(/bad\.json: port: must be 1-65535/);
    await rm(join(dir, "bad.json"));
  });
});
