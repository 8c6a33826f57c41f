// The JSON API: routes turn requests into Discovery calls; schemas and errors live elsewhere, once.
import { Hono, type Context, type Next } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { Logger } from "pino";
import { ownerForwarder, type PeerTls } from "./forward.js";
import type { Discovery } from "../registry/index.js";
import { publicEntry, type ServiceEntry } from "../model/index.js";
import { InvalidError } from "../lib/errors.js";
import { Auth, authMiddleware } from "./auth.js";
import { errorBody, HttpError, renderError } from "./errors.js";
import { consulRoutes } from "./consul/index.js";
import { providerRoutes } from "./providers.js";
import { routedEntries, routingRoutes } from "./routing.js";
import { DEFAULT_EVENT_STREAM, eventRoutes, type EventStreamOptions } from "./events.js";
import { traefikRoutes } from "./traefik/index.js";
import { uiRoutes } from "./ui/index.js";
import { Compressor } from "./compress.js";
import { openApiRoutes } from "./openapi/index.js";
import { compileServiceQuery, jittered, searchOf, takeBlocking } from "./params.js";

export interface HttpOptions {
  /** The token of every scope (auth.ts): without a write token, writes take it; without any token, all is open. */
  adminToken?: string | undefined;
  /** Service writes (registrations, heartbeats, maintenance, routing); needs adminToken beside it. */
  writeToken?: string | undefined;
  /** Every read then needs a token (this one, the write or the admin token); /v1/status stays a health probe. */
  readToken?: string | undefined;
  /** GET /metrics stays open when a read token is set. */
  metricsOpen?: boolean | undefined;
  /** Largest accepted request body, in bytes. */
  maxBodyBytes?: number;
  logger: Logger;
  /** Serves GET /metrics (Prometheus text format) when set. */
  metrics?: MetricsSource;
  /** This node's address as the Consul-compatible routes show it (Consul's agent address); 127.0.0.1 by default. */
  nodeAddress?: string;
  /** JSON answers at least this long are compressed for a client that asks (0: never). Default 1024. */
  compressMinBytes?: number;
  /** GET /v1/events: the bound on a stream's queue and the heartbeat. */
  events?: EventStreamOptions;
  /** TLS toward the other nodes' APIs when a write is forwarded to its owner (their https:// URLs); read at each
   * forwarded write, so a reloaded certificate is used from then on. */
  peerTls?: () => PeerTls | undefined;
  /** Our DNS domain, for the default rule of /v1/traefik/config (Host(`<name>.<domain>`)); home.arpa by default. */
  domain?: string;
}

/** What GET /metrics serves: src/app's Metrics renders the registry's, DNS's and cluster's figures. */
export interface MetricsSource {
  readonly contentType: string;
  render(): Promise<string>;
}

/** The largest snapshot PUT /v1/snapshot takes (10k small instances are ~2.5 MB, so 100k fit many times over). */
export const SNAPSHOT_MAX_BYTES = 256 * 1024 * 1024;

const JSON_HEADERS = { "content-type": "application/json" } as const;
/** Might hold `index` or `wait` (or a metadata key ending so: those go the slow way and are told apart there). */
const BLOCKING_PARAM = /(?:^|&|\.)(?:index|wait)=/;
/** Might hold `routed` (or a metadata key ending so: takeRouted tells them apart). */
const ROUTED_PARAM = /(?:^|&|\.)routed=/;

/** The query string without its `routed` parameter, and whether it asked for routed answers ("true" or "false"). */
function takeRouted(search: string): { rest: string; routed: boolean } {
  const params = new URLSearchParams(search);
  const value = params.get("routed");
  if (value === null) return { rest: search, routed: false };
  if (value !== "true" && value !== "false") throw new InvalidError(`invalid query: routed: must be true or false, not ${JSON.stringify(value)}`);
  params.delete("routed");
  return { rest: params.toString(), routed: value === "true" };
}
/** Middleware runs on these only: any middleware on GET makes Hono compose per request (and bodyLimit reads the
 * body stream, which builds a full Request): that cost 65% of the query route's throughput (BENCHMARKS.md). */
const MUTATING = ["POST", "PUT", "PATCH", "DELETE"];

/** Where each app's routes start in app.routes (what is before is middleware). */
const firstRoutes = new WeakMap<Hono, number>();

/** The routes an app from createHttpApp serves (method and Hono path), without its middleware. */
export function servedRoutes(app: Hono): { method: string; path: string }[] {
  return app.routes.slice(firstRoutes.get(app) ?? 0).map((r) => ({ method: r.method, path: r.path }));
}

export function createHttpApp(discovery: Discovery, opts: HttpOptions): Hono {
  const app = new Hono();
  const maxBodyBytes = opts.maxBodyBytes ?? 1024 * 1024;
  const send = (c: Context, value: unknown, status: 200 | 201 = 200) => c.body(JSON.stringify(value), status, JSON_HEADERS);
  /** An entry as the API shows it: check header values (secrets) redacted. */
  const sendEntry = (c: Context, entry: ServiceEntry, status: 200 | 201 = 200) => send(c, publicEntry(entry), status);

  app.onError((err, c) => renderError(err, c, opts.logger));
  app.notFound((c) => {
    // A path we serve with other methods is 405 with Allow (RFC 9110 15.5.6), not a 404 that says it does not exist.
    const allow = allowed(c.req.path);
    if (allow.length > 0) {
      return c.body(errorBody("method_not_allowed", `${c.req.path} takes ${allow.join(", ")}, not ${c.req.method}`), 405, { ...JSON_HEADERS, allow: allow.join(", ") });
    }
    return c.body(errorBody("not_found", `no route for ${c.req.method} ${c.req.path}`), 404, JSON_HEADERS);
  });
  /** The methods of the routes whose path matches, read from the app once every route is on it. */
  let routeTable: { pattern: RegExp; method: string }[] | undefined;
  const allowed = (path: string): string[] => {
    routeTable ??= app.routes
      .slice(firstRoute)
      .map((r) => ({ pattern: new RegExp(`^${r.path.replace(/:[^/]+/g, "[^/]+")}$`), method: r.method }));
    const methods = new Set(routeTable.filter((r) => r.pattern.test(path)).map((r) => r.method));
    if (methods.has("GET")) methods.add("HEAD");
    return [...methods].sort();
  };

  // Tokens (auth.ts): the scope of the route a request is for. Registered first, so a caller without a token
  // learns nothing from a 413 or a forwarded write; not at all without tokens (GET stays on Hono's fast path).
  const auth = new Auth({ admin: opts.adminToken, write: opts.writeToken, read: opts.readToken });
  if (auth.enabled) app.on([...MUTATING, "GET"], "*", authMiddleware(app, auth, () => firstRoute, { metricsOpen: opts.metricsOpen }));
  // The size check: Content-Length when the request has one, before anything reads the body. Hono's bodyLimit
  // touches the body stream first, which makes @hono/node-server build a whole web Request (streams, an
  // AbortSignal) for every write; without that, c.req.text() reads the socket directly. Chunked bodies, which
  // declare no length, still go through bodyLimit, which counts them as they come.
  const tooLarge = (c: Context) =>
    // The rest of the body is left unread, so the connection cannot be reused: say so, or clients reuse it and fail.
    c.body(errorBody("payload_too_large", `request body is larger than ${maxBodyBytes} bytes`), 413, { ...JSON_HEADERS, connection: "close" });
  const countChunks = bodyLimit({ maxSize: maxBodyBytes, onError: tooLarge });
  const snapshotTooLarge = (c: Context) => c.body(errorBody("payload_too_large", `a snapshot is larger than ${SNAPSHOT_MAX_BYTES} bytes`), 413, { ...JSON_HEADERS, connection: "close" });
  const countSnapshotChunks = bodyLimit({ maxSize: SNAPSHOT_MAX_BYTES, onError: snapshotTooLarge });
  app.on(MUTATING, "*", async (c: Context, next: Next) => {
    // A snapshot is the whole registry: its own, larger bound.
    const snapshot = c.req.path === "/v1/snapshot";
    if (c.req.header("transfer-encoding") !== undefined) return (snapshot ? countSnapshotChunks : countChunks)(c, next);
    const length = c.req.header("content-length");
    if (length !== undefined && Number(length) > (snapshot ? SNAPSHOT_MAX_BYTES : maxBodyBytes)) return snapshot ? snapshotTooLarge(c) : tooLarge(c);
    await next();
  });

  // Cluster mode: a write for another node's instance runs there (one hop). Mutating routes only, as above.
  const forwardToOwner = ownerForwarder(opts.peerTls ?? (() => undefined));
  app.on(MUTATING, ["/v1/services/:id", "/v1/services/:id/*"], async (c, next) => {
    const id = c.req.param("id");
    const owner = id === undefined || c.req.path === "/v1/services/bulk" ? undefined : discovery.foreignOwner(id);
    return owner === undefined ? next() : forwardToOwner(c, owner, discovery.nodeId);
  });

  // The routes from here on (the middleware above matches every path): the 405 handler reads their methods.
  const firstRoute = app.routes.length;
  firstRoutes.set(app, firstRoute);
  const compressor = new Compressor(opts.compressMinBytes ?? 1024);
  providerRoutes(app, discovery, compressor);
  eventRoutes(app, discovery, opts.events ?? DEFAULT_EVENT_STREAM);
  uiRoutes(app, discovery, { readsClosed: auth.readsClosed });
  openApiRoutes(app, compressor);
  traefikRoutes(app, discovery, { domain: opts.domain ?? "home.arpa", logger: opts.logger, compressor });
  consulRoutes(app, discovery, { nodeAddress: opts.nodeAddress ?? "127.0.0.1", compressor });
  app.get("/v1/status", (c) => {
    const status = discovery.status();
    // A health probe answers anyone; what it says beyond up or down (rollouts, cluster, sources) is a read.
    const body = auth.allows(c, "read") ? status : { status: status.status };
    return c.body(JSON.stringify(body), status.status === "failed" ? 503 : 200, JSON_HEADERS);
  });
  const { metrics } = opts;
  if (metrics) app.get("/metrics", async (c) => c.body(await metrics.render(), 200, { "content-type": metrics.contentType }));

  // The hot route: a repeated query costs one cache lookup keyed by the raw query string. With `index` (and
  // `wait`) it is a blocking query: it answers once something that could change its answer has changed.
  const answer = (c: Context, search: string): Response | Promise<Response> => {
    const body = discovery.cachedRender(`h${search}`, () => {
      // ?routed=true: each service's instances as its routing policy sends traffic (routing.ts).
      const { rest, routed } = ROUTED_PARAM.test(search) ? takeRouted(search) : { rest: search, routed: false };
      const query = compileServiceQuery(rest);
      const found = discovery.discoverCompiled(query);
      const services = routed ? routedEntries(found, (name) => discovery.routing.get(name)) : found.map(publicEntry);
      return { body: JSON.stringify({ count: services.length, services }), name: query.name ?? null };
    });
    // A Response with plain headers: @hono/node-server writes those as they are, where c.body() with two headers
    // builds a Headers object (measured: a fifth of the selective query's throughput).
    const headers: Record<string, string> = { "content-type": "application/json", "x-index": String(discovery.changes.current) };
    // Cluster mode with etcd out of reach: the answer comes from the last replica, and says how old it may be.
    const staleMs = discovery.replicaStaleForMs();
    if (staleMs > 0) headers["x-replica-stale-ms"] = String(staleMs);
    // A large answer compressed when asked (the small, hot ones go straight through).
    return compressor.respond(c, body, 200, headers);
  };
  app.get("/v1/services", (c): Response | Promise<Response> => {
    const search = searchOf(c.req.url);
    if (!BLOCKING_PARAM.test(search)) return answer(c, search);
    const params = new URLSearchParams(search);
    const blocking = takeBlocking(params);
    const rest = params.toString();
    if (blocking === undefined) return answer(c, rest);
    const name = compileServiceQuery(ROUTED_PARAM.test(rest) ? takeRouted(rest).rest : rest).name ?? null;
    return discovery.changes.wait(name, blocking.index, jittered(blocking.waitMs), c.req.raw.signal).then(() => answer(c, rest));
  });

  routingRoutes(app, discovery, jsonBody);

  app.post("/v1/services/bulk", async (c) => {
    const result = await discovery.bulk((await jsonBody(c)) as never, { force: forceParam(c) });
    return send(c, { ...result, registered: result.registered.map(publicEntry) });
  });

  // One instance, with X-Index; with `index` (and `wait`) a blocking query that answers once the instance may
  // have changed: a watch can also wait for an id to appear, so the 404 carries the index too.
  app.get("/v1/services/:id", async (c) => {
    const id = c.req.param("id");
    const params = new URLSearchParams(searchOf(c.req.url));
    const blocking = takeBlocking(params);
    for (const param of params.keys()) throw new InvalidError(`invalid query: unknown parameter '${param}' (use index and wait)`);
    const watch = blocking && { index: blocking.index, waitMs: jittered(blocking.waitMs), signal: c.req.raw.signal };
    const { index, service } = await discovery.watchService(id, watch);
    const headers = { ...JSON_HEADERS, "x-index": String(index) };
    if (service === null) return c.body(errorBody("not_found", `service ${id} is not registered`), 404, headers);
    return c.body(JSON.stringify(publicEntry(service)), 200, headers);
  });

  app.put("/v1/services/:id", async (c) => {
    const id = c.req.param("id");
    const body = await jsonBody(c);
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw new InvalidError("invalid service: the body must be a JSON object");
    }
    const given = (body as { id?: unknown }).id;
    if (given !== undefined && given !== id) {
      throw new InvalidError(`invalid service: id ${JSON.stringify(given)} in the body does not match ${id} in the path`);
    }
    const existed = discovery.registry.get(id) !== undefined;
    const entry = await discovery.registerService({ ...(body as object), id } as never, { force: forceParam(c) });
    return sendEntry(c, entry, existed ? 200 : 201);
  });

  app.delete("/v1/services/:id", async (c) => {
    return sendEntry(c, await discovery.deregisterService(c.req.param("id"), { force: forceParam(c) }));
  });

  app.post("/v1/services/:id/check", async (c) => send(c, await discovery.healthCheckService(c.req.param("id"))));
  app.put("/v1/services/:id/heartbeat", async (c) => sendEntry(c, await discovery.heartbeat(c.req.param("id"), (await optionalJsonBody(c)) as never)));
  app.put("/v1/services/:id/maintenance", async (c) => sendEntry(c, await discovery.setMaintenance(c.req.param("id"), (await jsonBody(c)) as never)));
  app.post("/v1/checks", async (c) => send(c, await discovery.healthCheckAll()));

  // Snapshots (registry/snapshot.ts): the admin's backup and restore, all or nothing.
  app.get("/v1/snapshot", (c) => {
    const text = discovery.snapshot();
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    return c.body(text, 200, { "content-type": "application/json", "content-disposition": `attachment; filename="homelab-discovery-${discovery.nodeId}-${stamp}.snap.json"` });
  });
  app.put("/v1/snapshot", async (c) => {
    const type = c.req.header("content-type") ?? "";
    if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)|^application\/octet-stream\s*(?:;|$)/i.test(type)) {
      throw new HttpError(415, "unsupported_media_type", "send the snapshot file as the body with Content-Type: application/json");
    }
    return send(c, await discovery.restoreSnapshot(await c.req.text()));
  });

  app.get("/v1/stats", async (c) => send(c, await discovery.getRegistryStats()));
  app.delete("/v1/cache", async (c) => send(c, await discovery.clearCache()));
  app.post("/v1/sync", async (c) => {
    return send(c, await discovery.syncRegistry({ force: forceParam(c) }));
  });

  return app;
}

/** The `force` query parameter: absent or false -> false, true -> true, anything else a 400. */
function forceParam(c: Context): boolean {
  const force = c.req.query("force");
  if (force !== undefined && force !== "true" && force !== "false") throw new InvalidError("invalid query: force must be true or false");
  return force === "true";
}

/** The body as JSON: 415 unless it says it is JSON, 400 with the parser's message if it is not. */
async function jsonBody(c: Context): Promise<unknown> {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type)) {
    throw new HttpError(415, "unsupported_media_type", "send the body as JSON with Content-Type: application/json");
  }
  const text = await c.req.text();
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HttpError(400, "invalid_json", `the body is not valid JSON: ${(err as Error).message}`);
  }
}

/** Like jsonBody, but an empty body (no content) is an empty object: `curl -X PUT .../heartbeat` just works. */
async function optionalJsonBody(c: Context): Promise<unknown> {
  const length = c.req.header("content-length");
  if ((length === undefined || length === "0") && c.req.header("transfer-encoding") === undefined) return {};
  return jsonBody(c);
}
