// HTTP(S): a GET of the instance's endpoint. 2xx is healthy (degraded when slower than --check-degraded-after),
// 429 degraded, anything else unhealthy, as Consul's HTTP checks; the start of the body is the output.
import { z } from "zod";
import { urlHost } from "../../lib/hostport.js";
import { loadUndici } from "../../lib/undici.js";
import type { HealthStatus } from "../../model/index.js";
import { defineKind } from "../kind.js";
import { MAX_OUTPUT_BYTES, readCapped } from "./output.js";

/** A path on the instance ("/health") or an absolute http(s) URL, as healthEndpoint. */
const urlOption = z
  .string({ error: (i) => (i.input === undefined ? "is required" : "must be a string") })
  .max(1024, "must be at most 1024 characters")
  .refine((v) => v.startsWith("/") || /^https?:\/\/[^/]+/i.test(v), { message: "must be a path starting with '/' or an absolute http:// or https:// URL" });

/** The URL a check's `url` (or healthEndpoint) names: a path is on the instance's address and port. */
export function checkUrl(url: string, instance: { address: string; port: number }): string {
  return url.startsWith("/") ? `http://${urlHost(instance.address)}:${instance.port}${url}` : url;
}

/** HTTP status to health, as Consul does: 2xx healthy, 429 degraded, anything else unhealthy. */
export function statusOfHttp(code: number): HealthStatus {
  if (code >= 200 && code < 300) return "healthy";
  if (code === 429) return "degraded";
  return "unhealthy";
}

export const httpKind = defineKind({
  kind: "http",
  options: z.strictObject({ url: urlOption }),
  target: (o, instance) => (o.url.startsWith("/") ? { host: instance.address, field: "address" } : { host: new URL(o.url).hostname.replace(/^\[|\]$/g, ""), field: "url" }),
  probe: (o, ctx) => {
    const url = checkUrl(o.url, ctx);
    return {
      label: `GET ${url}`,
      run: async (signal) => {
        const { request } = await loadUndici();
        const dispatcher = await ctx.pools.agent();
        const started = performance.now();
        const res = await request(url, { method: "GET", dispatcher, signal, headers: { "user-agent": "homelab-discovery health check" } });
        const body = await readCapped(res.body, MAX_OUTPUT_BYTES);
        const ms = performance.now() - started;
        const status = statusOfHttp(res.statusCode);
        if (status === "healthy" && ms > ctx.degradedAfterMs) {
          return { status: "degraded", output: `HTTP ${res.statusCode} after ${Math.round(ms)} ms (slower than ${ctx.degradedAfterMs} ms): ${body}` };
        }
        return { status, output: `HTTP ${res.statusCode}: ${body}` };
      },
    };
  },
});
