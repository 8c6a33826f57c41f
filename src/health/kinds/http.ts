// HTTP(S): a request to the instance's endpoint. Without `expectStatus`, 2xx is healthy (degraded when slower than
// --check-degraded-after), 429 degraded, anything else unhealthy, as Consul's HTTP checks; `expectStatus` names the
// healthy codes instead, `expectBody` a text the body must hold. Redirects are not followed unless
// `followRedirects` (up to 5, only to hosts the instance's checks may reach). TLS is verified against the system
// CAs plus --check-ca-file and the check's `caFile`, or not at all with `tlsSkipVerify`. Header values are sent,
// never shown: the output holds the status and the start of the body.
import { readFileSync } from "node:fs";
import { rootCertificates } from "node:tls";
import { X509Certificate } from "node:crypto";
import { z } from "zod";
import { urlHost } from "../../lib/hostport.js";
import { errnoOf } from "../../lib/errno.js";
import { loadUndici } from "../../lib/undici.js";
import type { HealthStatus } from "../../model/index.js";
import { defineKind, type ProbeContext } from "../kind.js";
import { MAX_OUTPUT_BYTES, readCapped } from "./output.js";

/** A path on the instance ("/health") or an absolute http(s) URL, as healthEndpoint. */
const urlOption = z
  .string({ error: (i) => (i.input === undefined ? "is required" : "must be a string") })
  .max(1024, "must be at most 1024 characters")
  .refine((v) => v.startsWith("/") || /^https?:\/\/[^/]+/i.test(v), { message: "must be a path starting with '/' or an absolute http:// or https:// URL" });

/** 200, "200-299", or a list of those. */
const statusItem = z.union([
  z.number().int().min(100, "status codes are 100-599").max(599, "status codes are 100-599"),
  z
    .string()
    .regex(/^[1-5]\d\d-[1-5]\d\d$/, 'a range is written "200-299"')
    .refine((r) => Number(r.slice(0, 3)) <= Number(r.slice(4)), "a range goes from low to high"),
]);

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const headersOption = z
  .record(z.string().regex(HEADER_NAME, "header names are HTTP tokens (letters, digits, '-', ...)").max(128), z.string().max(4096, "header values are at most 4096 characters").regex(/^[\t\x20-\x7e\x80-\uffff]*$/, "header values must not hold control characters (CR, LF)"))
  .refine((h) => Object.keys(h).length <= 32, "at most 32 headers");

const options = z.strictObject({
  url: urlOption,
  method: z.enum(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]).default("GET"),
  headers: headersOption.optional(),
  expectStatus: z.union([statusItem, z.array(statusItem).min(1).max(32)]).optional(),
  expectBody: z.string().min(1, "must not be empty").max(1024, "must be at most 1024 characters").optional(),
  followRedirects: z.boolean().default(false),
  tlsSkipVerify: z.boolean().default(false),
  caFile: z.string().min(1).max(4096).optional(),
});
type Options = z.output<typeof options>;

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

/** The codes `expectStatus` accepts, as a test. */
function expected(spec: Options["expectStatus"]): ((code: number) => boolean) | undefined {
  if (spec === undefined) return undefined;
  const ranges = (Array.isArray(spec) ? spec : [spec]).map((s) => (typeof s === "number" ? [s, s] : [Number(s.slice(0, 3)), Number(s.slice(4))]));
  return (code) => ranges.some(([lo, hi]) => code >= lo! && code <= hi!);
}

/** A URL's host as an address or name: an IPv6 one without its brackets. */
const hostOf = (url: URL): string => url.hostname.replace(/^\[|\]$/g, "");

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
/** With `expectBody`, this much of the body is searched; the output keeps 4 KB. */
const MAX_BODY_SEARCH = 65_536;

/** A CA file's PEM, or why it cannot be used (its error code only: the file's content is never shown). */
export function readCa(path: string): { pem: string } | { problem: string } {
  try {
    const pem = readFileSync(path, "utf8");
    new X509Certificate(pem);
    return { pem };
  } catch (err) {
    return { problem: `${path} cannot be read as a PEM certificate (${errnoOf(err) ?? "not PEM"})` };
  }
}

/** The pool for a check's TLS setting: the system CAs plus the global and the check's CA file, or no verification. */
async function poolFor(o: Options, ctx: ProbeContext, globalCa: string | undefined) {
  if (o.tlsSkipVerify) return ctx.pools.agent("insecure", { rejectUnauthorized: false });
  const files = [globalCa, o.caFile].filter((f): f is string => f !== undefined);
  if (files.length === 0) return ctx.pools.agent();
  const pems: string[] = [];
  for (const file of files) {
    const ca = readCa(file);
    if ("problem" in ca) throw new Error(`caFile: ${ca.problem}`);
    pems.push(ca.pem);
  }
  return ctx.pools.agent(`ca:${files.join("\0")}`, { ca: [...rootCertificates, ...pems] });
}

export const httpKind = defineKind({
  kind: "http",
  options,
  target: (o, instance) => (o.url.startsWith("/") ? { host: instance.address, field: "address" } : { host: hostOf(new URL(o.url)), field: "url" }),
  refusal: (o) => {
    if (o.caFile === undefined) return undefined;
    const ca = readCa(o.caFile);
    return "problem" in ca ? { field: "caFile", message: ca.problem } : undefined;
  },
  probe: (o, ctx) => {
    const url = checkUrl(o.url, ctx);
    const accepts = expected(o.expectStatus);
    const headers = { "user-agent": "homelab-discovery health check", ...o.headers };
    // The pool (and the CA files it read) is found once per registration; a file that could not be read is tried again.
    let pool: ReturnType<typeof poolFor> | undefined;
    return {
      label: `${o.method} ${url}`,
      run: async (signal) => {
        const { request } = await loadUndici();
        const dispatcher = await (pool ??= poolFor(o, ctx, ctx.caFile).catch((err: unknown) => {
          pool = undefined;
          throw err;
        }));
        const started = performance.now();
        let target = url;
        let method: string = o.method;
        for (let hop = 0; ; hop++) {
          const res = await request(target, { method: method as "GET", dispatcher, signal, headers });
          const location = res.headers.location;
          if (o.followRedirects && REDIRECTS.has(res.statusCode) && typeof location === "string") {
            await res.body.dump();
            const next = new URL(location, target);
            if (hop >= MAX_REDIRECTS) return { status: "unhealthy", output: `HTTP ${res.statusCode}: more than ${MAX_REDIRECTS} redirects (last to ${next.href})` };
            if (!/^https?:$/.test(next.protocol)) return { status: "unhealthy", output: `HTTP ${res.statusCode}: a redirect to ${next.protocol} is not followed` };
            if (!ctx.reachable(hostOf(next))) return { status: "unhealthy", output: `HTTP ${res.statusCode}: the redirect to ${next.origin} is not followed: checks go to the instance's own address or --check-allow-hosts` };
            if (res.statusCode === 303) method = "GET";
            target = next.href;
            continue;
          }
          const body = await readCapped(res.body, o.expectBody === undefined ? MAX_OUTPUT_BYTES : MAX_BODY_SEARCH);
          const ms = performance.now() - started;
          const code = res.statusCode;
          const where = target === url ? "" : ` (from ${target})`;
          let status = accepts === undefined ? statusOfHttp(code) : accepts(code) ? "healthy" : code === 429 ? "degraded" : "unhealthy";
          if (status === "unhealthy" && accepts !== undefined) return { status, output: `HTTP ${code}${where}, expected ${JSON.stringify(o.expectStatus)}: ${body}` };
          if (status === "healthy" && o.expectBody !== undefined && !body.includes(o.expectBody)) {
            return { status: "unhealthy", output: `HTTP ${code}${where}: the body does not contain ${JSON.stringify(o.expectBody)}: ${body}` };
          }
          if (status === "healthy" && ms > ctx.degradedAfterMs) {
            status = "degraded";
            return { status, output: `HTTP ${code}${where} after ${Math.round(ms)} ms (slower than ${ctx.degradedAfterMs} ms): ${body}` };
          }
          return { status, output: `HTTP ${code}${where}: ${body}` };
        }
      },
    };
  },
});
