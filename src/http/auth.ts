// Who may call what: every route's scope in one table, and the middleware that holds requests to it. A token is
// read from `Authorization: Bearer`, or on the Consul-compatible paths the way Consul's clients send it
// (X-Consul-Token, ?token=), and compared with each configured token in constant time (digests, timingSafeEqual).
// No token, or one the server does not know: 401. A known token without the route's scope: 403, naming the scope.
import { createHash, timingSafeEqual } from "node:crypto";
import type { Context, Hono, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { ForbiddenError, UnauthorizedError } from "../lib/errors.js";
import { consulToken, CONSUL_PATH } from "./consul/index.js";

/** open: no token ever; read < write < admin, each token opening its own scope and the ones below it. */
export type Scope = "open" | "read" | "write" | "admin";

/**
 * Every route the app serves (method and Hono path, as servedRoutes lists them) and its scope. A route missing
 * here needs the admin token (closed by default), and test/http/auth.test.ts fails until it has its line.
 *
 * open:  a health probe (/v1/status answers its status to anyone, its details with a read token; Consul keeps
 *        /v1/status/leader and /peers open too), the dashboard's page and assets (the page holds no data when reads
 *        need a token: the script reads with the token typed in) and the API's description (/openapi.json, /docs).
 * read:  everything that shows the registry: queries, the event stream, the providers, the Consul views, stats.
 * write: what a service does to itself and to its service (Consul's service:write): register, deregister,
 *        heartbeats and TTL checks, maintenance, a check of one instance now, routing policies and rollouts.
 * admin: the whole registry at once: snapshots (a full copy, check secrets included) and restore, every check
 *        now, the cache, a cluster sync.
 */
export const ROUTE_SCOPES: Readonly<Record<string, Scope>> = {
  "GET /v1/status": "open",
  "GET /v1/status/leader": "open",
  "GET /v1/status/peers": "open",
  "GET /ui": "open",
  "GET /ui/": "open",
  "GET /ui/app.js": "open",
  "GET /ui/app.css": "open",
  "GET /openapi.json": "open",
  "GET /docs": "open",

  "GET /metrics": "read", // open with --metrics-open
  "GET /v1/services": "read",
  "GET /v1/services/:id": "read",
  "GET /v1/events": "read",
  "GET /v1/stats": "read",
  "GET /v1/routing": "read",
  "GET /v1/routing/:name": "read",
  "GET /v1/routing/:name/rollout": "read",
  "GET /v1/prometheus/targets": "read",
  "GET /v1/traefik/config": "read",
  "GET /v1/agent/self": "read",
  "GET /v1/agent/services": "read",
  "GET /v1/agent/checks": "read",
  "GET /v1/catalog/datacenters": "read",
  "GET /v1/catalog/services": "read",
  "GET /v1/catalog/service/:name": "read",
  "GET /v1/catalog/nodes": "read",
  "GET /v1/catalog/node/:node": "read",
  "GET /v1/health/service/:name": "read",
  "GET /v1/health/checks/:name": "read",
  "GET /v1/health/state/:state": "read",

  "PUT /v1/services/:id": "write",
  "DELETE /v1/services/:id": "write",
  "POST /v1/services/bulk": "write",
  "POST /v1/services/:id/check": "write",
  "PUT /v1/services/:id/heartbeat": "write",
  "PUT /v1/services/:id/maintenance": "write",
  "PUT /v1/routing/:name": "write",
  "DELETE /v1/routing/:name": "write",
  "POST /v1/routing/:name/rollout": "write",
  "DELETE /v1/routing/:name/rollout": "write",
  "PUT /v1/agent/service/register": "write",
  "PUT /v1/agent/service/deregister/:id": "write",
  "PUT /v1/agent/service/maintenance/:id": "write",
  "PUT /v1/agent/check/pass/:check": "write",
  "PUT /v1/agent/check/warn/:check": "write",
  "PUT /v1/agent/check/fail/:check": "write",
  "PUT /v1/agent/check/update/:check": "write",

  "GET /v1/snapshot": "admin",
  "PUT /v1/snapshot": "admin",
  "POST /v1/checks": "admin",
  "DELETE /v1/cache": "admin",
  "POST /v1/sync": "admin",
};

export interface Tokens {
  admin?: string | undefined;
  write?: string | undefined;
  read?: string | undefined;
  /** GET /metrics without a token even when a read token is set. */
  metricsOpen?: boolean | undefined;
}

/** The scope of a route as the app serves it; undefined when the table has no line for it. */
export function scopeOf(method: string, path: string, tokens: Pick<Tokens, "metricsOpen"> = {}): Scope | undefined {
  if (method === "GET" && path === "/metrics" && tokens.metricsOpen) return "open";
  return ROUTE_SCOPES[`${method} ${path}`];
}

const LEVEL = { open: 0, read: 1, write: 2, admin: 3 } as const;
type Level = (typeof LEVEL)[Scope];

/** The checks a server with these tokens makes: which scopes need a token at all, and which token a request has. */
export class Auth {
  private readonly known: { level: Level; digest: Buffer }[];
  /** The lowest level each scope takes; undefined: the scope is open on this server. */
  private readonly needs: Record<Scope, Level | undefined>;

  constructor(private readonly tokens: Tokens) {
    this.known = (
      [
        [LEVEL.admin, tokens.admin],
        [LEVEL.write, tokens.write],
        [LEVEL.read, tokens.read],
      ] as const
    ).flatMap(([level, token]) => (token ? [{ level, digest: digest(token) }] : []));
    const any = this.known.length > 0;
    // With an admin token alone, reads are open and writes take it (as before scoped tokens). Every scope closes
    // once any token is set, even when no token of its own opens it: no write token and no admin token means no
    // writes, not open ones (config.ts refuses those combinations; a library caller gets the closed door).
    this.needs = {
      open: undefined,
      read: tokens.read ? LEVEL.read : undefined,
      write: any ? LEVEL.write : undefined,
      admin: any ? LEVEL.admin : undefined,
    };
  }

  /** Any route needs a token at all (no middleware otherwise: GET routes stay on Hono's fast path). */
  get enabled(): boolean {
    return this.known.length > 0;
  }

  /** Reads need a token (the dashboard's page then carries no data). */
  get readsClosed(): boolean {
    return this.needs.read !== undefined;
  }

  /** The level of the token a request carries: 0 for none, -1 for one the server does not know. */
  levelOf(c: Context): number {
    const token = tokenOf(c);
    if (token === undefined) return 0;
    const given = digest(token);
    let level = -1;
    // Every configured token is compared, whichever matches: the time does not say which scope a guess hit.
    for (const k of this.known) if (timingSafeEqual(given, k.digest) && k.level > level) level = k.level;
    return level;
  }

  /** Whether a request may do what `scope` covers (the handlers that show more to a reader ask this). */
  allows(c: Context, scope: Scope): boolean {
    const need = this.needs[scope];
    return need === undefined || this.levelOf(c) >= need;
  }

  /** Throws the 401 or 403 for a request that may not call a route of `scope`. */
  check(c: Context, scope: Scope): void {
    const need = this.needs[scope];
    if (need === undefined) return;
    const level = this.levelOf(c);
    if (level >= need) return;
    const wanted = this.wanted(scope as Exclude<Scope, "open">);
    const consulWay = CONSUL_PATH.test(c.req.path) ? " (or X-Consul-Token: <token>, or ?token=)" : "";
    if (level <= 0) {
      const what = level === 0 ? "" : "the token sent is not one of this server's; ";
      throw new UnauthorizedError(`${what}this route needs ${wanted}: Authorization: Bearer <token>${consulWay}`);
    }
    const had = Object.entries(LEVEL).find(([, l]) => l === level)![0];
    throw new ForbiddenError(`${c.req.method} ${c.req.path} needs ${wanted}; the ${had} token does not have the ${scope} scope`);
  }

  /** "the write token (or the admin token)", naming only the tokens this server has. */
  private wanted(scope: Exclude<Scope, "open">): string {
    const order = (["read", "write", "admin"] as const).filter((s) => LEVEL[s] >= LEVEL[scope] && this.tokens[s]);
    if (order.length === 0) return `the ${scope} token, which this server does not have`;
    const [first, ...rest] = order;
    return `the ${first} token${rest.length ? ` (or the ${rest.join(" or the ")} token)` : ""}`;
  }
}

/**
 * The middleware: finds the route a request is for (the handler Hono matched after the middleware) and checks
 * its scope. A request no route matches (a 404 or 405 to come) is taken as a read for GET and HEAD, a write
 * otherwise, so an unknown path tells nothing to a caller without a token.
 */
export function authMiddleware(app: Hono, auth: Auth, firstRoute: () => number, tokens: Pick<Tokens, "metricsOpen"> = {}): MiddlewareHandler {
  let scopes: Map<object, Scope> | undefined;
  return async (c, next) => {
    scopes ??= new Map(app.routes.slice(firstRoute()).map((r) => [r, scopeOf(r.method, r.path, tokens) ?? "admin"]));
    let scope: Scope | undefined;
    for (const route of matchedRoutes(c)) {
      scope = scopes.get(route);
      if (scope !== undefined) break;
    }
    auth.check(c, scope ?? (c.req.method === "GET" || c.req.method === "HEAD" ? "read" : "write"));
    await next();
  };
}

/** The token a request carries: Authorization: Bearer, or on Consul's paths X-Consul-Token or ?token=. */
function tokenOf(c: Context): string | undefined {
  const header = c.req.header("authorization");
  if (header !== undefined) {
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (match) return match[1]!.trim();
  }
  return CONSUL_PATH.test(c.req.path) ? consulToken(c) : undefined;
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}
