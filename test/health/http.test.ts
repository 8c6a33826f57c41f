// The HTTP kind against real servers on 127.0.0.1: HTTPS with a self-signed certificate (test/health/fixtures:
// a committed test-only certificate), methods, headers, expected statuses and bodies, redirects.
import { readFileSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { httpKind } from "../../src/health/kinds/http.js";
import { HttpPools } from "../../src/health/pools.js";
import { CheckTargets } from "../../src/health/targets.js";
import type { CheckOutcome } from "../../src/health/kind.js";
import { describe as describeError } from "../../src/health/kinds/output.js";
import { api, startPeer, startTestServer } from "../helpers.js";

const CERT = new URL("./fixtures/self-signed.crt", import.meta.url).pathname;
const KEY = new URL("./fixtures/self-signed.key", import.meta.url).pathname;

const targets = new CheckTargets([]);
const pools = new HttpPools(targets.lookup);
afterAll(() => pools.close());

/** One run of an HTTP check as the checker makes it: an error is unhealthy, its code and message the output. */
async function check(options: Record<string, unknown>, port: number, caFile?: string): Promise<CheckOutcome> {
  const parsed = httpKind.options.parse(options);
  const probe = httpKind.probe!(parsed, {
    address: "127.0.0.1",
    port,
    lookup: targets.lookup,
    degradedAfterMs: 2_000,
    caFile,
    pools,
    reachable: (host) => targets.reachable(host, "127.0.0.1"),
  });
  try {
    return await probe.run(AbortSignal.timeout(2_000));
  } catch (err) {
    return { status: "unhealthy", output: `${probe.label}: ${describeError(err)}` };
  }
}

let seen: { method: string; url: string; headers: IncomingHttpHeaders }[] = [];
const handler = (req: IncomingMessage, res: ServerResponse) => {
  seen.push({ method: req.method!, url: req.url!, headers: req.headers });
  const url = new URL(req.url!, "http://x");
  if (url.pathname === "/status") res.writeHead(Number(url.searchParams.get("code"))).end(`answered ${url.searchParams.get("code")}`);
  else if (url.pathname === "/json") res.writeHead(200, { "content-type": "application/json" }).end('{"status":"UP","db":"ok"}');
  else if (url.pathname === "/moved") res.writeHead(302, { location: "/json" }).end();
  else if (url.pathname === "/away") res.writeHead(302, { location: `http://127.0.0.2:${url.searchParams.get("port")}/json` }).end();
  else if (url.pathname === "/loop") res.writeHead(307, { location: "/loop" }).end();
  else res.writeHead(200).end("ok");
};

let https: ReturnType<typeof createHttpsServer>;
let httpsPort: number;
let plain: Awaited<ReturnType<typeof startPeer>>;
beforeAll(async () => {
  https = createHttpsServer({ cert: readFileSync(CERT), key: readFileSync(KEY) }, handler);
  await new Promise<void>((resolve) => https.listen(0, "127.0.0.1", resolve));
  httpsPort = (https.address() as AddressInfo).port;
  plain = await startPeer(handler);
});
afterAll(async () => {
  https.closeAllConnections();
  await new Promise((resolve) => https.close(resolve));
  await plain.close();
});

describe("HTTPS with a self-signed certificate", () => {
  const url = () => `https://127.0.0.1:${httpsPort}/`;

  it("is unhealthy by default: the certificate is verified", async () => {
    const r = await check({ url: url() }, httpsPort);
    expect(r.status).toBe("unhealthy");
    expect(r.output).toMatch(/SELF_SIGNED|unable to verify/i);
  });

  it("is healthy with tlsSkipVerify", async () => {
    expect(await check({ url: url(), tlsSkipVerify: true }, httpsPort)).toEqual({ status: "healthy", output: "HTTP 200: ok" });
  });

  it("is healthy with the certificate as the check's caFile, or as --check-ca-file", async () => {
    expect((await check({ url: url(), caFile: CERT }, httpsPort)).status).toBe("healthy");
    expect((await check({ url: url() }, httpsPort, CERT)).status).toBe("healthy");
  });

  it("names a CA file that is not a certificate, without showing what the file holds", async () => {
    const r = await check({ url: url(), caFile: KEY }, httpsPort);
    expect(r.status).toBe("unhealthy");
    expect(r.output).toContain("cannot be read as a PEM certificate");
    expect(r.output).not.toContain("PRIVATE KEY");
    expect(httpKind.refusal!(httpKind.options.parse({ url: url(), caFile: "/nonexistent/ca.pem" }), { origin: "api", allowExec: false, authenticatedApi: false })).toEqual({
      field: "caFile",
      message: "/nonexistent/ca.pem cannot be read as a PEM certificate (ENOENT)",
    });
  });
});

describe("--check-ca-file", () => {
  it("is read at start: a server with one it cannot use does not start", async () => {
    await expect(startTestServer({ checkCaFile: KEY })).rejects.toThrow(`--check-ca-file: ${KEY} cannot be read as a PEM certificate`);
    const server = await startTestServer({ checkCaFile: CERT });
    const r = await api(server.url, "PUT", "/v1/services/tls-1", { name: "tls", address: "127.0.0.1", port: httpsPort, checks: [{ kind: "http", url: `https://127.0.0.1:${httpsPort}/` }] });
    expect(r.status).toBe(201);
    await server.discovery.checker.settled();
    expect((await api(server.url, "GET", "/v1/services/tls-1")).body.healthStatus).toBe("healthy");
    await server.stop();
  });
});

describe("the request", () => {
  it("sends the method and headers asked for, and never shows the header values", async () => {
    seen = [];
    const r = await check({ url: "/", method: "HEAD", headers: { Authorization: "Bearer s3cret-token-value", "X-Probe": "yes" } }, plain.port);
    expect(r.status).toBe("healthy");
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe("HEAD");
    expect(seen[0]!.headers.authorization).toBe("Bearer s3cret-token-value");
    expect(seen[0]!.headers["x-probe"]).toBe("yes");
    expect(JSON.stringify(r)).not.toContain("s3cret");
  });

  it("refuses headers that could split the request", () => {
    const r = httpKind.options.safeParse({ url: "/", headers: { "X-A": "a\r\nX-Injected: 1" } });
    expect(r.success).toBe(false);
    expect(httpKind.options.safeParse({ url: "/", headers: { "Bad Name": "x" } }).success).toBe(false);
  });
});

describe("expected statuses and bodies", () => {
  it("defaults to 2xx healthy, 429 degraded, anything else unhealthy", async () => {
    expect((await check({ url: "/status?code=204" }, plain.port)).status).toBe("healthy");
    expect((await check({ url: "/status?code=429" }, plain.port)).status).toBe("degraded");
    expect((await check({ url: "/status?code=401" }, plain.port)).status).toBe("unhealthy");
  });

  it("takes a list or a range of codes instead", async () => {
    expect((await check({ url: "/status?code=401", expectStatus: [200, 401] }, plain.port)).status).toBe("healthy");
    expect((await check({ url: "/status?code=302", expectStatus: "300-399" }, plain.port)).status).toBe("healthy");
    const miss = await check({ url: "/status?code=200", expectStatus: ["300-399", 401] }, plain.port);
    expect(miss).toEqual({ status: "unhealthy", output: 'HTTP 200, expected ["300-399",401]: answered 200' });
    expect(httpKind.options.safeParse({ url: "/", expectStatus: "299-200" }).success).toBe(false);
    expect(httpKind.options.safeParse({ url: "/", expectStatus: 700 }).success).toBe(false);
  });

  it("is unhealthy when the body lacks the expected text", async () => {
    expect((await check({ url: "/json", expectBody: '"status":"UP"' }, plain.port)).status).toBe("healthy");
    const r = await check({ url: "/json", expectBody: '"db":"down"' }, plain.port);
    expect(r.status).toBe("unhealthy");
    expect(r.output).toContain('does not contain "\\"db\\":\\"down\\""');
  });
});

describe("redirects", () => {
  it("are not followed by default: a 302 is unhealthy", async () => {
    expect(await check({ url: "/moved" }, plain.port)).toMatchObject({ status: "unhealthy", output: "HTTP 302: " });
  });

  it("are followed with followRedirects, on the instance's own address only, at most 5", async () => {
    expect(await check({ url: "/moved", followRedirects: true, expectBody: "UP" }, plain.port)).toEqual({ status: "healthy", output: `HTTP 200 (from http://127.0.0.1:${plain.port}/json): {"status":"UP","db":"ok"}` });
    seen = [];
    const away = await check({ url: `/away?port=${plain.port}`, followRedirects: true }, plain.port);
    expect(away.status).toBe("unhealthy");
    expect(away.output).toContain("redirect to http://127.0.0.2");
    expect(seen).toHaveLength(1); // nothing was sent to 127.0.0.2
    const loop = await check({ url: "/loop", followRedirects: true }, plain.port);
    expect(loop).toMatchObject({ status: "unhealthy", output: expect.stringContaining("more than 5 redirects") });
  });
});
