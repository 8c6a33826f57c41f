// Checks go where the operator allows: an instance's own address, or hosts named in --check-allow-hosts;
// link-local and metadata addresses only when named. A registration that would check elsewhere is refused and
// changes nothing; nothing is ever sent to a refused host.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { loadConfig } from "../../src/app/config.js";
import { CheckTargets } from "../../src/health/targets.js";
import { api, startTestServer } from "../helpers.js";

/** A "secret" page on 127.0.0.2: another host than the instances' 127.0.0.1. */
let secret: Server;
let secretPort: number;
let secretHits = 0;
beforeAll(async () => {
  secret = createServer((_req, res) => {
    secretHits += 1;
    res.end("the admin password is hunter2");
  });
  await new Promise<void>((resolve) => secret.listen(0, "127.0.0.2", resolve));
  secretPort = (secret.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => secret.close(() => resolve())));

describe("where checks may go", () => {
  let server: ServerHandle;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.stop());

  it("refuses a check of another host, and registers nothing", async () => {
    const r = await api(server.url, "PUT", "/v1/services/peek", { name: "peek", address: "127.0.0.1", port: 80, healthEndpoint: `http://127.0.0.2:${secretPort}/admin` });
    expect(r.status).toBe(400);
    expect(r.body.error.issues).toEqual([{ path: ["healthEndpoint"], message: expect.stringContaining("add 127.0.0.2 to --check-allow-hosts") }]);
    expect((await api(server.url, "GET", "/v1/services/peek")).status).toBe(404);
    expect(secretHits).toBe(0);
  });

  it("refuses link-local and metadata addresses, even as the instance's own", async () => {
    for (const [address, healthEndpoint] of [
      ["169.254.169.254", "/latest/meta-data/"],
      ["127.0.0.1", "http://169.254.169.254/latest/meta-data/"],
      ["fe80::1", "/"],
    ] as const) {
      const r = await api(server.url, "PUT", "/v1/services/meta", { name: "meta", address, port: 80, healthEndpoint });
      expect(r.status, `${address} ${healthEndpoint}`).toBe(400);
      expect(r.body.error.message).toMatch(/--check-allow-hosts/);
    }
    const tcp = await api(server.url, "PUT", "/v1/services/meta", { name: "meta", address: "169.254.1.1", port: 22, tcpCheck: true });
    expect(tcp.status).toBe(400);
    // Without a check nothing is contacted: any address may be registered.
    expect((await api(server.url, "PUT", "/v1/services/meta", { name: "meta", address: "169.254.1.1", port: 22 })).status).toBe(201);
  });

  it("refuses the same in a bulk call, as one item of an all-or-nothing batch", async () => {
    const r = await api(server.url, "POST", "/v1/services/bulk", {
      register: [
        { id: "ok-1", name: "ok", address: "127.0.0.1", port: 1 },
        { id: "peek-2", name: "peek", address: "127.0.0.1", port: 1, healthEndpoint: `http://127.0.0.2:${secretPort}/` },
      ],
    });
    expect(r.status).toBe(400);
    expect(r.body.error.items).toEqual([expect.objectContaining({ index: 1, id: "peek-2", code: "invalid", message: expect.stringContaining("healthEndpoint:") })]);
    expect((await api(server.url, "GET", "/v1/services/ok-1")).status).toBe(404);
  });
});

describe("--check-allow-hosts", () => {
  it("lets checks go to the hosts, addresses and blocks it names", async () => {
    const server = await startTestServer({ checkAllowHosts: ["127.0.0.0/8"] });
    try {
      const r = await api(server.url, "PUT", "/v1/services/other", { name: "other", address: "127.0.0.1", port: 80, healthEndpoint: `http://127.0.0.2:${secretPort}/` });
      expect(r.status).toBe(201);
      const check = await api(server.url, "POST", "/v1/services/other/check");
      expect(check.body).toMatchObject({ status: "healthy" });
      expect(secretHits).toBeGreaterThan(0);
    } finally {
      await server.stop();
    }
  });

  it("is parsed with a clear message", () => {
    const config = loadConfig(["--check-allow-hosts", "nas.lan, 192.168.1.20,10.0.0.0/8,fd00::/8"], {});
    expect(config.kind === "serve" && config.config.checkAllowHosts).toEqual(["nas.lan", "192.168.1.20", "10.0.0.0/8", "fd00::/8"]);
    for (const bad of ["10.0.0.0/33", "nas.lan/8", "not a host"]) {
      expect(() => loadConfig(["--check-allow-hosts", bad], {}), bad).toThrow(/is not a host name, an address or a CIDR block/);
    }
  });

  it("refuses, when a check connects, a name that resolves to a metadata address (DNS rebinding)", async () => {
    const targets = new CheckTargets([]);
    const resolved = (host: string, allowed = targets) =>
      new Promise<string>((resolve) => allowed.lookup(host, {}, (err, address) => resolve(err ? `refused: ${err.message}` : String(address))));
    expect(await resolved("127.0.0.1")).toBe("127.0.0.1");
    expect(await resolved("169.254.169.254")).toMatch(/^refused: 169.254.169.254 resolves to 169.254.169.254: link-local/);
    expect(await resolved("169.254.169.254", new CheckTargets(["169.254.169.254"]))).toBe("169.254.169.254");
  });
});

describe("services files", () => {
  it("refuse to load a file whose instance would be checked on another host, naming the file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hd-targets-"));
    try {
      await writeFile(join(dir, "peek.json"), JSON.stringify({ id: "peek", name: "peek", address: "127.0.0.1", port: 1, healthEndpoint: "http://169.254.169.254/" }));
      await expect(startTestServer({ servicesDir: dir })).rejects.toThrow(/peek\.json: peek: healthEndpoint: .*--check-allow-hosts/);
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});
