// Compressed answers over real HTTP (raw bytes through node:http, which does not decompress): large JSON answers
// in the encoding the client prefers among those it accepts, small answers and the event stream never.
import { get as httpGet, type IncomingHttpHeaders } from "node:http";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import zlib from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { ENCODINGS, negotiate } from "../../src/http/compress.js";
import { api, startTestServer } from "../helpers.js";

function raw(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; bytes: Buffer }> {
  return new Promise((resolve, reject) => {
    httpGet(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, bytes: Buffer.concat(chunks) }));
    }).on("error", reject);
  });
}

let server: ServerHandle;
beforeAll(async () => {
  server = await startTestServer();
  const register = Array.from({ length: 300 }, (_, i) => ({ id: `big-${i}`, name: "big", address: `10.0.${i >> 8}.${i & 255}`, port: 80, tags: ["prod"], metadata: { team: "platform" } }));
  expect((await api(server.url, "POST", "/v1/services/bulk", { register })).status).toBe(200);
  await api(server.url, "PUT", "/v1/services/small-1", { name: "small", address: "10.1.0.1", port: 80 });
});
afterAll(() => server.stop());

describe("compression", () => {
  it("compresses a large answer with gzip or br as asked, the same JSON once decoded, with Vary", async () => {
    const plain = await raw(`${server.url}/v1/services?name=big`);
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.headers.vary).toBe("accept-encoding");
    const gz = await raw(`${server.url}/v1/services?name=big`, { "accept-encoding": "gzip" });
    expect(gz.headers["content-encoding"]).toBe("gzip");
    expect(gunzipSync(gz.bytes).equals(plain.bytes)).toBe(true);
    expect(gz.bytes.length).toBeLessThan(plain.bytes.length / 5);
    const br = await raw(`${server.url}/v1/services?name=big`, { "accept-encoding": "gzip, deflate, br" });
    // The client did not offer zstd: br, whatever this Node can send.
    expect(br.headers["content-encoding"]).toBe("br");
    expect(brotliDecompressSync(br.bytes).equals(plain.bytes)).toBe(true);
    expect(br.headers["x-index"]).toBe(plain.headers["x-index"]);
  });

  it("sends zstd where this Node has it, and identity to a client that accepts only what we cannot send", async () => {
    const res = await raw(`${server.url}/v1/services?name=big`, { "accept-encoding": "zstd" });
    const unzstd = (zlib as unknown as { zstdDecompressSync?: (b: Buffer) => Buffer }).zstdDecompressSync;
    if (unzstd) {
      expect(res.headers["content-encoding"]).toBe("zstd");
      expect(JSON.parse(unzstd(res.bytes).toString()).count).toBe(300);
    } else {
      expect(res.headers["content-encoding"]).toBeUndefined();
      expect(JSON.parse(res.bytes.toString()).count).toBe(300);
    }
  });

  it("honours q=0 and *", () => {
    expect(negotiate("gzip;q=0, br")).toBe("br");
    expect(negotiate("gzip;q=0")).toBeUndefined();
    expect(negotiate("identity")).toBeUndefined();
    expect(negotiate("*")).toBe(ENCODINGS[0]);
    expect(negotiate("br;q=0.5, gzip;q=0.9")).toBe("gzip");
    expect(negotiate(undefined)).toBeUndefined();
  });

  it("never compresses a small answer", async () => {
    const res = await raw(`${server.url}/v1/services?name=small`, { "accept-encoding": "gzip, br" });
    expect(res.headers["content-encoding"]).toBeUndefined();
    expect(res.headers.vary).toBeUndefined();
    expect(JSON.parse(res.bytes.toString()).count).toBe(1);
  });

  it("compresses the Consul views, the providers and /openapi.json too", async () => {
    for (const path of ["/v1/health/service/big", "/v1/catalog/service/big", "/v1/prometheus/targets?name=big", "/openapi.json"]) {
      const res = await raw(`${server.url}${path}`, { "accept-encoding": "gzip" });
      expect(res.headers["content-encoding"], path).toBe("gzip");
      JSON.parse(gunzipSync(res.bytes).toString());
    }
  });

  it("gives a compressed Traefik answer its own ETag, and If-None-Match with it answers 304", async () => {
    await api(server.url, "PUT", "/v1/services/big-0", { name: "big", address: "10.0.0.0", port: 80, tags: ["traefik.enable=true"] });
    const path = "/v1/traefik/config?exposedByDefault=true";
    const plain = await raw(`${server.url}${path}`);
    const gz = await raw(`${server.url}${path}`, { "accept-encoding": "gzip" });
    expect(gz.headers["content-encoding"]).toBe("gzip");
    expect(gz.headers.etag).not.toBe(plain.headers.etag);
    expect((await raw(`${server.url}${path}`, { "accept-encoding": "gzip", "if-none-match": gz.headers.etag! })).status).toBe(304);
    expect((await raw(`${server.url}${path}`, { "if-none-match": plain.headers.etag! })).status).toBe(304);
  });

  it("never encodes the event stream: an event arrives as it happens, in plain text", async () => {
    const events = await new Promise<{ headers: IncomingHttpHeaders; first: Promise<string> }>((resolve) => {
      httpGet(`${server.url}/v1/events?name=live`, { headers: { "accept-encoding": "gzip, br" } }, (res) => {
        let text = "";
        resolve({
          headers: res.headers,
          first: new Promise((done) => res.on("data", (d: Buffer) => (text += d.toString()).includes("event: registered") && (res.destroy(), done(text)))),
        });
      });
    });
    expect(events.headers["content-encoding"]).toBeUndefined();
    await api(server.url, "PUT", "/v1/services/live-1", { name: "live", address: "10.2.0.1", port: 80 });
    expect(await events.first).toContain('"id":"live-1"');
  });

  it("--http-compress-min-bytes 0 turns it off", async () => {
    const off = await startTestServer({ httpCompressMinBytes: 0 });
    try {
      const register = Array.from({ length: 100 }, (_, i) => ({ id: `b-${i}`, name: "b", address: `10.3.0.${i}`, port: 80 }));
      await api(off.url, "POST", "/v1/services/bulk", { register });
      const res = await raw(`${off.url}/v1/services`, { "accept-encoding": "gzip" });
      expect(res.headers["content-encoding"]).toBeUndefined();
      expect(JSON.parse(res.bytes.toString()).count).toBe(100);
    } finally {
      await off.stop();
    }
  });
});
