// TLS for the API (--tls-cert, --tls-key, --tls-client-ca), with certificates openssl makes here: clients with the
// CA get in and clients without it are refused (DiscoveryClient, curl, the CLI), a client certificate is asked when
// a client CA is set, a certificate renewed on disk is served after SIGHUP (the built binary) or reload() while a
// broken one keeps the one in use, a handshake that never comes is cut off, and the server's own registration is
// checked over HTTPS; in a cluster, writes forwarded to their owner go over HTTPS too.
import { execFile, spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { promisify } from "node:util";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { DiscoveryClient } from "../../src/client/index.js";
import { metricSamples, startTestServer } from "../helpers.js";
import { startEtcd, type EtcdCluster } from "../cluster/etcd.js";
import { startNode, until, type TestNode } from "../cluster/nodes.js";
import { root, startBuiltServer } from "./built-server.js";

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "hd-api-tls-"));
const at = (name: string) => join(dir, name);
const pem = (name: string) => readFileSync(at(name));

function ssl(...args: string[]): void {
  const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
}

/** A CA, and certificates it signs: EC P-256, valid a day. */
function makeCa(name: string): void {
  ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}-key.pem`, "-out", `${name}.pem`, "-days", "1", "-subj", `/CN=${name}`);
}
function makeCert(name: string, ca: string, ext: string): void {
  writeFileSync(at(`${name}.ext`), ext);
  ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}-key.pem`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
  ssl("x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}-key.pem`, "-CAcreateserial", "-out", `${name}.pem`, "-days", "1", "-extfile", `${name}.ext`);
}
const fingerprint = (name: string) => new X509Certificate(pem(name)).fingerprint256;

/** The certificate a fresh TLS connection is shown (no keep-alive: a new handshake each time). */
function servedFingerprint(port: number, opts: { cert?: Buffer; key?: Buffer } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, ca: pem("ca.pem"), servername: "localhost", ...opts }, () => {
      const fp = socket.getPeerX509Certificate()?.fingerprint256;
      socket.end();
      if (fp === undefined) reject(new Error("no peer certificate"));
      else resolve(fp);
    });
    socket.on("error", reject);
  });
}

beforeAll(() => {
  makeCa("ca");
  makeCa("other-ca");
  const serverExt = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth";
  makeCert("server", "ca", serverExt);
  makeCert("renewed", "ca", serverExt);
  makeCert("client", "ca", "extendedKeyUsage=clientAuth");
  makeCert("stranger", "other-ca", "extendedKeyUsage=clientAuth");
  // What the server reads: copies, so a test can "renew" them in place.
  copyFileSync(at("server.pem"), at("live.pem"));
  copyFileSync(at("server-key.pem"), at("live-key.pem"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the API over HTTPS (--tls-cert, --tls-key)", () => {
  let server: ServerHandle;
  const lines: string[] = [];
  beforeAll(async () => {
    const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(line) });
    server = await startTestServer({ tlsCert: at("live.pem"), tlsKey: at("live-key.pem"), selfRegister: true, httpHeadersTimeout: 500 }, { logger });
  });
  afterAll(() => server.stop());

  it("serves https://, which a client with the CA reads and one without it refuses", async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const trusting = new DiscoveryClient({ url: server.url, ca: pem("ca.pem") });
    await trusting.registerService({ id: "web-1", name: "web", version: "1.0.0", address: "10.0.0.1", port: 80 });
    expect((await trusting.discoverServices({ name: "web" })).map((e) => e.id)).toEqual(["web-1"]);
    const untrusting = new DiscoveryClient({ url: server.url });
    await expect(untrusting.discoverServices({ name: "web" })).rejects.toThrow(/certificate/i);

    const port = String(server.http.port);
    const ok = await run("curl", ["-sS", "--cacert", at("ca.pem"), `https://127.0.0.1:${port}/v1/services/web-1`]);
    expect(JSON.parse(ok.stdout).id).toBe("web-1");
    // curl's exit 60: the peer's certificate cannot be verified with the CAs it knows.
    const refused = await run("curl", ["-sS", `https://127.0.0.1:${port}/v1/status`]).then(() => 0, (err: { code: number }) => err.code);
    expect(refused).toBe(60);
    // Plain HTTP to the TLS port is a 400 that says why, never the API.
    const plain = await run("curl", ["-sS", "--max-time", "5", "-w", "\n%{http_code}", `http://127.0.0.1:${port}/v1/services/web-1`]);
    expect(plain.stdout).toBe("this port speaks HTTPS: ask for https:// (--tls-cert is set)\n\n400");
  });

  it("says what it serves: the log, /v1/status and /metrics name the certificate and its expiry", async () => {
    const loaded = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "TLS certificate loaded");
    expect(loaded).toMatchObject({ subject: "CN=server", names: ["IP Address:127.0.0.1", "DNS:localhost"], fingerprint: fingerprint("server.pem"), clientCertificates: "off" });
    const client = new DiscoveryClient({ url: server.url, ca: pem("ca.pem") });
    const status = (await client.status()) as unknown as { tls: { notAfter: string; fingerprint: string } };
    expect(status.tls.fingerprint).toBe(fingerprint("server.pem"));
    expect(Date.parse(status.tls.notAfter)).toBe(Date.parse(new X509Certificate(pem("server.pem")).validTo));
    const metrics = await run("curl", ["-sS", "--cacert", at("ca.pem"), `${server.url}/metrics`]);
    expect(metricSamples(metrics.stdout).get("homelab_discovery_tls_certificate_expiry_timestamp_seconds")).toBe(Date.parse(status.tls.notAfter) / 1000);
  });

  it("registers itself as an https API and checks it over HTTPS", async () => {
    const self = [...server.discovery.registry.values()].find((e) => e.metadata.role === "api")!;
    expect(self.tags).toContain("https");
    expect(self.metadata.scheme).toBe("https");
    expect(self.checks?.[0]).toMatchObject({ kind: "http", url: `https://127.0.0.1:${server.http.port}/v1/status`, tlsSkipVerify: true });
    const end = Date.now() + 15_000;
    while (server.discovery.registry.get(self.id)?.healthStatus !== "healthy" && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    expect(server.discovery.registry.get(self.id)?.healthStatus).toBe("healthy");
  });

  it("serves a renewed certificate after reload, keeps the old one when the new files are broken", async () => {
    const port = server.http.port;
    expect(await servedFingerprint(port)).toBe(fingerprint("server.pem"));
    // A key that is not the certificate's (a renewal half copied): refused, the old certificate still served.
    copyFileSync(at("renewed.pem"), at("live.pem"));
    const broken = await server.reload();
    expect(broken.ok).toBe(false);
    expect(!broken.ok && broken.error).toMatch(/the key in .*live-key\.pem is not the key of the certificate in .*live\.pem/);
    expect(await servedFingerprint(port)).toBe(fingerprint("server.pem"));
    copyFileSync(at("renewed-key.pem"), at("live-key.pem"));
    expect(await server.reload()).toEqual({ ok: true, zones: 0 });
    expect(await servedFingerprint(port)).toBe(fingerprint("renewed.pem"));
    const client = new DiscoveryClient({ url: server.url, ca: pem("ca.pem") });
    expect(((await client.status()) as unknown as { tls: { fingerprint: string } }).tls.fingerprint).toBe(fingerprint("renewed.pem"));
  });

  it("closes a connection whose handshake does not come within --http-headers-timeout", async () => {
    const socket = netConnect(server.http.port, "127.0.0.1");
    const t0 = Date.now();
    await new Promise<void>((resolve) => socket.on("close", () => resolve()).on("error", () => undefined));
    const held = Date.now() - t0;
    expect(held).toBeGreaterThanOrEqual(400);
    expect(held).toBeLessThan(5_000);
  });
});

describe("client certificates (--tls-client-ca)", () => {
  let server: ServerHandle;
  beforeAll(async () => {
    server = await startTestServer({ tlsCert: at("server.pem"), tlsKey: at("server-key.pem"), tlsClientCa: at("ca.pem"), selfRegister: true });
  });
  afterAll(() => server.stop());

  it("lets in a client with a certificate the CA signed, and refuses one without or with another CA's", async () => {
    const withCert = new DiscoveryClient({ url: server.url, ca: pem("ca.pem"), cert: pem("client.pem"), key: pem("client-key.pem") });
    await withCert.registerService({ id: "db-1", name: "db", version: "1.0.0", address: "10.0.0.2", port: 5432 });
    expect((await withCert.getService("db-1")).name).toBe("db");
    const without = new DiscoveryClient({ url: server.url, ca: pem("ca.pem") });
    await expect(without.getService("db-1")).rejects.toThrow();
    const stranger = new DiscoveryClient({ url: server.url, ca: pem("ca.pem"), cert: pem("stranger.pem"), key: pem("stranger-key.pem") });
    await expect(stranger.getService("db-1")).rejects.toThrow();
    // curl: the handshake fails without a certificate (exit 56 or 35), succeeds with one.
    const bare = await run("curl", ["-sS", "--cacert", at("ca.pem"), `${server.url}/v1/services/db-1`]).then(() => 0, (err: { code: number }) => err.code);
    expect([35, 56]).toContain(bare);
    const ok = await run("curl", ["-sS", "--cacert", at("ca.pem"), "--cert", at("client.pem"), "--key", at("client-key.pem"), `${server.url}/v1/services/db-1`]);
    expect(JSON.parse(ok.stdout).id).toBe("db-1");
    expect(server.discovery.registry.get("db-1")?.port).toBe(5432); // nothing changed by the refused clients
  });

  it("checks its own API with a TCP connect, since it holds no client certificate", async () => {
    const self = [...server.discovery.registry.values()].find((e) => e.metadata.role === "api")!;
    expect(self.checks?.[0]).toMatchObject({ kind: "tcp" });
    const end = Date.now() + 15_000;
    while (server.discovery.registry.get(self.id)?.healthStatus !== "healthy" && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    expect(server.discovery.registry.get(self.id)?.healthStatus).toBe("healthy");
  });
});

describe("the built binary with TLS", () => {
  it("reloads the certificate on SIGHUP; the CLI reads it with --ca, --cert and --key", async () => {
    copyFileSync(at("server.pem"), at("hup.pem"));
    copyFileSync(at("server-key.pem"), at("hup-key.pem"));
    const server = await startBuiltServer({}, ["--in-memory", "--tls-cert", at("hup.pem"), "--tls-key", at("hup-key.pem"), "--tls-client-ca", at("ca.pem")]);
    try {
      expect(server.url).toMatch(/^https:/);
      const port = Number(new URL(server.url).port);
      const client = { cert: pem("client.pem"), key: pem("client-key.pem") };
      expect(await servedFingerprint(port, client)).toBe(fingerprint("server.pem"));
      const cli = (...args: string[]) => run(process.execPath, [join(root, "dist/src/main.js"), ...args, "--addr", server.url, "--json"], { env: { ...process.env, HD_CA_FILE: at("ca.pem"), HD_CERT_FILE: at("client.pem"), HD_KEY_FILE: at("client-key.pem") } });
      expect(JSON.parse((await cli("status")).stdout).status).toBe("ok");
      // Without the client certificate the CLI fails, with a non-zero exit.
      const refused = await run(process.execPath, [join(root, "dist/src/main.js"), "status", "--addr", server.url, "--ca", at("ca.pem")]).then(() => 0, (err: { code: number }) => err.code);
      expect(refused).not.toBe(0);

      copyFileSync(at("renewed.pem"), at("hup.pem"));
      copyFileSync(at("renewed-key.pem"), at("hup-key.pem"));
      process.kill(server.pid, "SIGHUP");
      const end = Date.now() + 10_000;
      while (!server.log().includes("TLS certificate reloaded") && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      expect(server.log()).toContain("TLS certificate reloaded: new connections get it");
      expect(await servedFingerprint(port, client)).toBe(fingerprint("renewed.pem"));
    } finally {
      await server.stop();
    }
  });

  it("refuses to start on a key that is not the certificate's, saying which files", async () => {
    const r = spawnSync(process.execPath, [join(root, "dist/src/main.js"), "--in-memory", "--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--tls-cert", at("server.pem"), "--tls-key", at("renewed-key.pem")], { encoding: "utf8", timeout: 15_000 });
    expect(r.status).toBe(1);
    expect(r.stdout + r.stderr).toContain(`the key in ${at("renewed-key.pem")} is not the key of the certificate in ${at("server.pem")}`);
  });
});

describe("a cluster over HTTPS", () => {
  let etcd: EtcdCluster;
  beforeAll(async () => {
    etcd = await startEtcd({ members: 1 });
  }, 30_000);
  afterAll(() => etcd?.stop());

  it("forwards a write for another node's instance over HTTPS, trusting --tls-client-ca and showing its certificate", async () => {
    const tls = { tlsCert: at("server.pem"), tlsKey: at("server-key.pem"), tlsClientCa: at("ca.pem") };
    const a = await startNode("tls-a", etcd.endpoints, tls);
    const b = await startNode("tls-b", etcd.endpoints, tls);
    try {
      const client = (n: TestNode) => new DiscoveryClient({ url: n.server.url, ca: pem("ca.pem"), cert: pem("client.pem"), key: pem("client-key.pem") });
      await client(a).registerService({ id: "cache-1", name: "cache", version: "1.0.0", address: "10.0.0.3", port: 6379 });
      await until("cache-1 on b", async () => (await client(b).getService("cache-1").then(() => true, () => false)));
      const changed = await client(b).registerService({ id: "cache-1", name: "cache", version: "1.0.0", address: "10.0.0.3", port: 6379, tags: ["primary"] });
      expect(changed.tags).toEqual(["primary"]);
      expect(changed.nodeId).toBe("tls-a"); // a applied it: forwarded, not taken over
      expect(a.server.discovery.registry.get("cache-1")?.tags).toEqual(["primary"]);
    } finally {
      await Promise.allSettled([a.stop(), b.stop()]);
    }
  });

  it("without --tls-client-ca a node's private CA is not trusted for forwarding: a 503 naming the certificate error", async () => {
    const tls = { tlsCert: at("server.pem"), tlsKey: at("server-key.pem") };
    const a = await startNode("tls-c", etcd.endpoints, tls);
    const b = await startNode("tls-d", etcd.endpoints, tls);
    try {
      const client = (n: TestNode) => new DiscoveryClient({ url: n.server.url, ca: pem("ca.pem") });
      await client(a).registerService({ id: "queue-1", name: "queue", version: "1.0.0", address: "10.0.0.4", port: 5672 });
      await until("queue-1 on b", async () => (await client(b).getService("queue-1").then(() => true, () => false)));
      const res = await run("curl", ["-sS", "--cacert", at("ca.pem"), "-X", "PUT", "-H", "content-type: application/json", "-w", "\n%{http_code}", "-d", JSON.stringify({ enable: true, reason: "x" }), `${b.server.url}/v1/services/queue-1/maintenance`]);
      const [body, status] = res.stdout.trim().split("\n");
      expect(status).toBe("503");
      expect(JSON.parse(body!).error.message).toMatch(/node tls-c, which cannot be reached: https:\/\/127\.0\.0\.1:\d+: .*certificate/);
      expect(a.server.discovery.registry.get("queue-1")?.maintenance).toBeUndefined(); // nothing applied
    } finally {
      await Promise.allSettled([a.stop(), b.stop()]);
    }
  });
});
