// The container's HEALTHCHECK (dist/src/healthcheck.js, built by `npm test` first) against real servers: plain
// HTTP, HTTPS with the committed self-signed fixture (no openssl needed), client certificates, and nothing there.
import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { closedPort, startTestServer } from "../helpers.js";

const run = promisify(execFile);
const PROBE = resolve(import.meta.dirname, "../../dist/src/healthcheck.js");
const fixture = (name: string) => resolve(import.meta.dirname, "../health/fixtures", name);
const probe = (env: Record<string, string>) =>
  run(process.execPath, [PROBE], { env: { PATH: process.env.PATH ?? "", ...env }, timeout: 10_000 }).then(() => 0, (err: { code: number }) => err.code);

describe("the container's healthcheck", () => {
  it("is healthy when the API answers, over HTTP or, with HD_TLS_CERT, HTTPS; unhealthy when nothing listens", async () => {
    const plain = await startTestServer();
    const tls = await startTestServer({ tlsCert: fixture("self-signed.crt"), tlsKey: fixture("self-signed.key") });
    try {
      expect(await probe({ HD_HTTP_LISTEN: `127.0.0.1:${plain.http.port}` })).toBe(0);
      expect(await probe({ HD_HTTP_LISTEN: `0.0.0.0:${plain.http.port}` })).toBe(0); // a wildcard is asked on loopback
      expect(await probe({ HD_HTTP_LISTEN: `127.0.0.1:${tls.http.port}`, HD_TLS_CERT: "/in/the/container.pem" })).toBe(0);
      expect(await probe({ HD_HTTP_LISTEN: `127.0.0.1:${tls.http.port}` })).toBe(1); // plain HTTP to a TLS port
      expect(await probe({ HD_HTTP_LISTEN: `127.0.0.1:${await closedPort()}` })).toBe(1);
    } finally {
      await Promise.all([plain.stop(), tls.stop()]);
    }
  });

  it("with HD_TLS_CLIENT_CA, which it has no certificate for, takes a TCP connect", async () => {
    const server = await startTestServer({ tlsCert: fixture("self-signed.crt"), tlsKey: fixture("self-signed.key"), tlsClientCa: fixture("self-signed.crt") });
    try {
      expect(await probe({ HD_HTTP_LISTEN: `127.0.0.1:${server.http.port}`, HD_TLS_CERT: "x", HD_TLS_CLIENT_CA: "y" })).toBe(0);
      expect(await probe({ HD_HTTP_LISTEN: `127.0.0.1:${server.http.port}`, HD_TLS_CERT: "x" })).toBe(1); // the handshake is refused
    } finally {
      await server.stop();
    }
  });
});
