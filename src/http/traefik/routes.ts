// GET /v1/traefik/config: the endpoint of Traefik's HTTP provider (`providers.http.endpoint`). Traefik polls it
// every pollInterval and reloads when the body's hash changes, so the body is deterministic and cached until the
// registry changes; ETag and X-Index let other pollers ask cheaply, and `index`/`wait` block as on /v1/services.
import { createHash } from "node:crypto";
import type { Context, Hono } from "hono";
import type { Logger } from "pino";
import type { Compressor } from "../compress.js";
import { InvalidError } from "../../lib/errors.js";
import type { Discovery } from "../../registry/index.js";
import { jittered, searchOf, takeBlocking } from "../params.js";
import { buildConfiguration, statusOf, type CheckStatus } from "./build.js";
import { routedForProxy } from "../routing.js";
import { compileRule } from "./rule.js";

export interface TraefikOptions {
  /** Our DNS domain: the default rule is Host(`<name>.<domain>`). */
  domain: string;
  logger: Logger;
  /** Large answers compressed when asked (src/http/compress.ts). */
  compressor: Compressor;
}

const STATUSES = new Set(["passing", "warning", "critical", "maintenance"]);
/** Rendered answers kept beside the body cache for their headers; bounded, since the key is the client's query. */
const MAX_META = 64;

interface Meta {
  body: string;
  etag: string;
  skipped: string;
  conflicts: string;
}

export function traefikRoutes(app: Hono, discovery: Discovery, opts: TraefikOptions): void {
  /** Instance id -> the reason last logged: one warning per instance and reason, not one per poll. */
  const warned = new Map<string, string>();
  const metas = new Map<string, Meta>();

  const render = (search: string): Meta => {
    const params = new URLSearchParams(search);
    const exposedByDefault = boolParam(params, "exposedByDefault") ?? false;
    const rule = compileRule(single(params, "defaultRule") ?? `Host(\`{{ normalize .Name }}.${opts.domain}\`)`);
    const statuses = strictChecks(single(params, "strictChecks") ?? "passing,warning");
    for (const param of params.keys()) {
      if (!["exposedByDefault", "defaultRule", "strictChecks"].includes(param)) {
        throw new InvalidError(`invalid query: unknown parameter '${param}' (use exposedByDefault, defaultRule, strictChecks, and index and wait to block)`);
      }
    }
    // Routed (issue 21): over the instances Traefik would serve, those the policies send traffic to, weighted.
    const routed = routedForProxy(discovery.discover({}).filter((e) => statuses.has(statusOf(e))), (name) => discovery.routing.get(name));
    const result = buildConfiguration(routed.entries, { exposedByDefault, statuses, defaultRule: rule, weights: routed.weights });
    for (const id of result.built) warned.delete(id);
    for (const { id, reason } of result.skipped) {
      if (warned.get(id) === reason) continue;
      if (warned.size >= 10_000) warned.clear();
      warned.set(id, reason);
      opts.logger.warn({ component: "traefik", id, reason }, "traefik tags not usable: this instance is left out of /v1/traefik/config");
    }
    for (const conflict of result.conflicts) {
      const key = `conflict:${conflict}`;
      if (warned.has(key)) continue;
      warned.set(key, conflict);
      opts.logger.warn({ component: "traefik", resource: conflict }, "defined differently by two instances: left out of /v1/traefik/config, as Traefik does");
    }
    const body = JSON.stringify(result.config);
    return {
      body,
      etag: `"${createHash("sha1").update(body).digest("base64url")}"`,
      skipped: result.skipped.map((s) => s.id).join(","),
      conflicts: result.conflicts.join(","),
    };
  };

  const answer = (c: Context, search: string, ifNoneMatch: string | undefined): Response | Promise<Response> => {
    const body = discovery.cachedRender(`t${search}`, () => {
      const meta = render(search);
      if (metas.size >= MAX_META) metas.clear();
      metas.set(search, meta);
      return { body: meta.body, name: null };
    });
    let meta = metas.get(search);
    if (meta?.body !== body) {
      meta = render(search);
      metas.set(search, meta);
    }
    // A compressed answer is other bytes: its own tag (RFC 9110 8.8.3), so a cache never mixes the two.
    const encoding = opts.compressor.encodingFor(c, body.length);
    const etag = encoding === undefined ? meta.etag : `${meta.etag.slice(0, -1)}-${encoding}"`;
    const headers: Record<string, string> = { "content-type": "application/json", "x-index": String(discovery.changes.current), etag };
    if (opts.compressor.wants(body.length)) headers.vary = "accept-encoding";
    if (meta.skipped !== "") headers["x-traefik-skipped"] = meta.skipped;
    if (meta.conflicts !== "") headers["x-traefik-conflicts"] = meta.conflicts;
    if (ifNoneMatch !== undefined && ifNoneMatch.split(",").some((t) => t.trim() === etag)) return new Response(null, { status: 304, headers });
    return opts.compressor.respondAs(body, 200, headers, encoding);
  };

  app.get("/v1/traefik/config", (c): Response | Promise<Response> => {
    const params = new URLSearchParams(searchOf(c.req.url));
    const blocking = takeBlocking(params);
    params.sort();
    const search = params.toString();
    const ifNoneMatch = c.req.header("if-none-match");
    if (blocking === undefined) return answer(c, search, ifNoneMatch);
    return discovery.changes.wait(null, blocking.index, jittered(blocking.waitMs), c.req.raw.signal).then(() => answer(c, search, ifNoneMatch));
  });
}

function single(params: URLSearchParams, name: string): string | undefined {
  const all = params.getAll(name);
  if (all.length > 1) throw new InvalidError(`invalid query: '${name}' may be given once`);
  return all[0];
}

function boolParam(params: URLSearchParams, name: string): boolean | undefined {
  const value = single(params, name);
  if (value === undefined) return undefined;
  if (value !== "true" && value !== "false") throw new InvalidError(`invalid query: ${name} must be true or false`);
  return value === "true";
}

/** Traefik's strictChecks, case-insensitive: passing, warning, critical, maintenance, or any. */
function strictChecks(value: string): Set<CheckStatus> {
  const out = new Set<CheckStatus>();
  for (const raw of value.split(",")) {
    const status = raw.trim().toLowerCase();
    if (status === "any") return new Set(STATUSES) as Set<CheckStatus>;
    if (!STATUSES.has(status)) throw new InvalidError(`invalid query: strictChecks takes passing, warning, critical, maintenance or any, not '${raw}'`);
    out.add(status as CheckStatus);
  }
  return out;
}
