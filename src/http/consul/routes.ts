// The Consul-compatible routes beside our own /v1 API: the catalog, health and agent reads as blocking queries
// (X-Consul-Index, ?index=&wait=) on the registry's own change waiters, and the agent writes.
import type { Context, Hono } from "hono";
import type { Compressor } from "../compress.js";
import { ConflictError, InvalidError, NotFoundError } from "../../lib/errors.js";
import { VERSION } from "../../lib/version.js";
import { dnsLabelSchema, parseOrThrow, serviceInputSchema, type ServiceEntry } from "../../model/index.js";
import { compileQuery, MAX_WAIT_MS, DEFAULT_WAIT_MS, serviceQuerySchema, type Discovery } from "../../registry/index.js";
import { HttpError } from "../errors.js";
import { jittered, searchOf } from "../params.js";
import { parseDuration } from "./duration.js";
import { consulFieldNames, fromConsulDefinition } from "./register.js";
import {
  agentService,
  catalogService,
  checksOf,
  HEALTH_OF_STATUS,
  healthEntry,
  nodeAddress,
  nodeView,
  passing,
  type CheckStatus,
  type ConsulSite,
} from "./views.js";

/** The paths Consul's clients use: the admin token may come as X-Consul-Token or ?token= there. */
export const CONSUL_PATH = /^\/v1\/(?:agent|catalog|health|status)\//;

/** The admin token as Consul's clients send it: the X-Consul-Token header, or ?token=. */
export function consulToken(c: Context): string | undefined {
  return c.req.header("x-consul-token") ?? c.req.query("token");
}

/** Consul's common parameters that change nothing here: one server's memory is always consistent and current. */
const IGNORED = new Set(["stale", "consistent", "cached", "near", "pretty", "ns", "partition", "token"]);

interface ReadParams {
  /** What the route reads itself (`tag`, `passing`). */
  params: URLSearchParams;
  blocking: { index: number; waitMs: number } | undefined;
}

export interface ConsulOptions {
  /** This node's address as Consul's agent address (default Address of a registration, Member.Addr). */
  nodeAddress: string;
  /** Large answers compressed when asked (src/http/compress.ts). */
  compressor: Compressor;
}

export function consulRoutes(app: Hono, discovery: Discovery, opts: ConsulOptions): void {
  const site: ConsulSite = { datacenter: discovery.clusterName, nodeId: discovery.nodeId, nodeAddress: opts.nodeAddress };
  const { registry, changes } = discovery;

  /** Consul's parameters: common ones ignored, `dc` ours or refused, `index`/`wait` taken, the route's own kept. */
  const readParams = (c: Context, own: readonly string[]): ReadParams => {
    const params = new URLSearchParams(searchOf(c.req.url));
    let index: string | undefined;
    let wait: string | undefined;
    for (const [key, value] of [...params]) {
      if (own.includes(key)) continue;
      params.delete(key);
      if (IGNORED.has(key)) continue;
      if (key === "index") index = value;
      else if (key === "wait") wait = value;
      else if (key === "dc") {
        if (value !== "" && value !== site.datacenter) throw new InvalidError(`invalid query: dc '${value}' is not this cluster's ('${site.datacenter}'); there is one datacenter here`);
      } else if (key === "node-meta") throw new InvalidError("invalid query: node-meta: nodes carry no metadata here, so no node matches one");
      else if (key === "filter") throw new InvalidError("invalid query: filter expressions are not served here; use tag= (and passing on /v1/health/service)");
      else throw new InvalidError(`invalid query: unknown parameter '${key}' (${[...own, "index", "wait", "dc", ...IGNORED].join(", ")} are read here)`);
    }
    let waitMs = DEFAULT_WAIT_MS;
    if (wait !== undefined) {
      const ms = parseDuration(wait);
      if (ms === undefined) throw new InvalidError(`invalid query: wait must be a duration such as 120000ms, 30s or 5m, not '${wait}'`);
      // Consul clamps a longer wait to its maximum rather than refusing it.
      waitMs = Math.min(Math.max(ms, 1), MAX_WAIT_MS);
    }
    if (index === undefined || index === "" || index === "0") return { params, blocking: undefined };
    if (!/^\d{1,16}$/.test(index)) throw new InvalidError(`invalid query: index must be the X-Consul-Index of an earlier answer, not '${index}'`);
    return { params, blocking: { index: Number(index), waitMs } };
  };

  /**
   * A read as a blocking query: with `index`, waits until something that could change the answer has changed (or
   * the wait runs out), then answers from the cache. The index is the last change that could alter this answer,
   * so a wait that ran out answers with the index it was given.
   */
  const read = async (c: Context, name: string | null, key: string, blocking: ReadParams["blocking"], render: (index: number) => unknown): Promise<Response> => {
    if (blocking !== undefined) await changes.wait(name, blocking.index, jittered(blocking.waitMs), c.req.raw.signal);
    const index = changes.changedAt(name);
    const body = discovery.cachedRender(`c${key}`, () => ({ body: JSON.stringify(render(index)), name }));
    return opts.compressor.respond(c, body, 200, headers(index));
  };
  const headers = (index: number): Record<string, string> => {
    // Cluster mode with etcd out of reach: the replica is as old as the last contact, as Consul's stale reads say.
    const staleMs = discovery.replicaStaleForMs();
    return { "content-type": "application/json", "x-consul-index": String(index), "x-consul-knownleader": staleMs > 0 ? "false" : "true", "x-consul-lastcontact": String(staleMs) };
  };
  const now = (c: Context, value: unknown): Response => {
    readParams(c, []);
    return new Response(JSON.stringify(value), { status: 200, headers: headers(changes.changedAt(null)) });
  };

  /** A service name from a path: ours are DNS labels, so anything else names no service (Consul answers []). */
  const nameOf = (raw: string): string | undefined => {
    const parsed = dnsLabelSchema.safeParse(raw);
    return parsed.success ? parsed.data : undefined;
  };
  /** The instances of a service with every `tag` given, in our stable order. */
  const instances = (name: string | undefined, tags: string[]): readonly ServiceEntry[] => {
    if (name === undefined) return [];
    return discovery.discoverCompiled(compileQuery(parseOrThrow(serviceQuerySchema, { name, tags }, "query", { tags: "tag" })));
  };
  const flag = (params: URLSearchParams, key: string): boolean => {
    if (!params.has(key)) return false;
    const value = params.get(key)!;
    if (value === "" || value === "1" || value === "true") return true;
    if (value === "0" || value === "false") return false;
    throw new InvalidError(`invalid query: ${key} must be true or false, or given without a value`);
  };
  const nodes = (): Map<string, ServiceEntry | undefined> => {
    const found = new Map<string, ServiceEntry | undefined>([[site.nodeId, undefined]]);
    for (const e of registry.values()) if (!found.has(e.nodeId)) found.set(e.nodeId, e);
    return found;
  };

  app.get("/v1/agent/self", (c) =>
    now(c, {
      Config: { Datacenter: site.datacenter, PrimaryDatacenter: site.datacenter, NodeName: site.nodeId, NodeID: nodeView(site, site.nodeId, site.nodeAddress, 0).ID, Server: true, Version: VERSION, Product: "homelab-discovery" },
      Member: { Name: site.nodeId, Addr: site.nodeAddress, Port: 0, Tags: { dc: site.datacenter, role: "node", build: VERSION }, Status: 1 },
      Meta: {},
    }),
  );
  // The leader is this server: the address the client reached it at (one server's registry is its own leader).
  app.get("/v1/status/leader", (c) => now(c, new URL(c.req.url).host));
  app.get("/v1/status/peers", (c) => now(c, [new URL(c.req.url).host]));
  app.get("/v1/catalog/datacenters", (c) => now(c, [site.datacenter]));

  app.get("/v1/agent/services", (c) => {
    const { blocking } = readParams(c, []);
    return read(c, null, "agent/services", blocking, (index) =>
      Object.fromEntries(registry.instancesOnNode(site.nodeId).sort(byId).map((e) => [e.id, agentService(site, e, index)])),
    );
  });
  app.get("/v1/agent/checks", (c) => {
    const { blocking } = readParams(c, []);
    return read(c, null, "agent/checks", blocking, (index) =>
      Object.fromEntries(registry.instancesOnNode(site.nodeId).sort(byId).flatMap((e) => checksOf(e, index).map((check) => [check.CheckID, check]))),
    );
  });

  app.get("/v1/catalog/services", (c) => {
    const { blocking } = readParams(c, []);
    return read(c, null, "catalog/services", blocking, () => {
      const out: Record<string, string[]> = {};
      for (const name of registry.serviceNames()) out[name] = [...new Set(registry.instancesOf(name).sort(byId).flatMap((e) => e.tags))];
      return out;
    });
  });
  app.get("/v1/catalog/service/:name", (c) => {
    const { params, blocking } = readParams(c, ["tag"]);
    const name = nameOf(c.req.param("name"));
    const tags = params.getAll("tag");
    return read(c, name ?? null, `catalog/service/${name}?${JSON.stringify(tags)}`, blocking, (index) => instances(name, tags).map((e) => catalogService(site, e, index)));
  });
  app.get("/v1/catalog/nodes", (c) => {
    const { blocking } = readParams(c, []);
    return read(c, null, "catalog/nodes", blocking, (index) =>
      [...nodes()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([node, entry]) => nodeView(site, node, nodeAddress(site, node, entry), index)),
    );
  });
  app.get("/v1/catalog/node/:node", (c) => {
    const { blocking } = readParams(c, []);
    const node = c.req.param("node");
    return read(c, null, `catalog/node/${node}`, blocking, (index) => {
      const on = registry.instancesOnNode(node).sort(byId);
      // Consul answers null for a node it does not know.
      if (on.length === 0 && node !== site.nodeId) return null;
      return { Node: nodeView(site, node, nodeAddress(site, node, on[0]), index), Services: Object.fromEntries(on.map((e) => [e.id, agentService(site, e, index)])) };
    });
  });

  app.get("/v1/health/service/:name", (c) => {
    const { params, blocking } = readParams(c, ["tag", "passing"]);
    const name = nameOf(c.req.param("name"));
    const tags = params.getAll("tag");
    const onlyPassing = flag(params, "passing");
    return read(c, name ?? null, `health/service/${name}?${onlyPassing}${JSON.stringify(tags)}`, blocking, (index) =>
      instances(name, tags)
        .filter((e) => !onlyPassing || passing(e))
        .map((e) => healthEntry(site, e, index)),
    );
  });
  app.get("/v1/health/checks/:name", (c) => {
    const { blocking } = readParams(c, []);
    const name = nameOf(c.req.param("name"));
    return read(c, name ?? null, `health/checks/${name}`, blocking, (index) => instances(name, []).flatMap((e) => checksOf(e, index)));
  });
  app.get("/v1/health/state/:state", (c) => {
    const { blocking } = readParams(c, []);
    const state = c.req.param("state");
    if (!["any", "passing", "warning", "critical"].includes(state)) throw new InvalidError(`invalid state '${state}': any, passing, warning or critical`);
    return read(c, null, `health/state/${state}`, blocking, (index) =>
      [...registry.values()]
        .sort(byId)
        .flatMap((e) => checksOf(e, index))
        .filter((check) => state === "any" || check.Status === state),
    );
  });

  // Writes: Consul answers them 200 with an empty body.
  const done = (c: Context) => c.body(null, 200);

  app.put("/v1/agent/service/register", async (c) => {
    readParams(c, ["replace-existing-checks"]);
    const { input, initial, checkPath } = fromConsulDefinition(await consulJson(c), site.nodeAddress);
    // Our schema's messages under Consul's field names: "Check.TTL: must be at least 1000 ms".
    const parsed = parseOrThrow(serviceInputSchema, input, "Consul service definition", consulFieldNames(checkPath));
    const refused = discovery.checker.refusal(parsed);
    if (refused !== undefined) {
      const field = consulField(refused.field, checkPath);
      throw new InvalidError(`invalid Consul service definition: ${field}: ${refused.message}`, [{ path: field.split("."), message: refused.message }]);
    }
    await discovery.registerService(input);
    for (const { check, status } of initial) await discovery.heartbeat(parsed.id, { status: HEALTH_OF_STATUS[status], note: "initial status", ...(check !== undefined ? { check } : {}) });
    return done(c);
  });
  app.put("/v1/agent/service/deregister/:id", async (c) => {
    readParams(c, []);
    await discovery.deregisterService(c.req.param("id"));
    return done(c);
  });
  app.put("/v1/agent/service/maintenance/:id", async (c) => {
    const { params } = readParams(c, ["enable", "reason"]);
    const enable = params.get("enable");
    if (enable !== "true" && enable !== "false") throw new InvalidError("invalid query: enable must be true or false");
    const reason = params.get("reason") ?? undefined;
    await discovery.setMaintenance(c.req.param("id"), { enable: enable === "true", ...(reason !== undefined ? { reason } : {}) });
    return done(c);
  });

  const heartbeat = async (c: Context, status: CheckStatus, note: string | undefined) => {
    const { id, check } = instanceOfCheck(c.req.param("check") ?? "");
    // service:<id>:1 is also the one-check form's check (Consul's name for the first of a Checks list).
    const named = check !== undefined && registry.get(id)?.checks !== undefined ? { check } : {};
    await discovery.heartbeat(id, { status: HEALTH_OF_STATUS[status], ...(note ? { note: note.slice(0, 1024) } : {}), ...named });
    return done(c);
  };
  for (const [verb, status] of [["pass", "passing"], ["warn", "warning"], ["fail", "critical"]] as const) {
    app.put(`/v1/agent/check/${verb}/:check`, (c) => heartbeat(c, status, readParams(c, ["note"]).params.get("note") ?? undefined));
  }
  app.put("/v1/agent/check/update/:check", async (c) => {
    readParams(c, []);
    const body = (await consulJson(c)) as { Status?: unknown; Output?: unknown } | null;
    const status = body?.Status;
    if (status !== "passing" && status !== "warning" && status !== "critical") throw new InvalidError("invalid check update: Status must be passing, warning or critical");
    if (body?.Output !== undefined && typeof body.Output !== "string") throw new InvalidError("invalid check update: Output must be a string");
    return heartbeat(c, status, body?.Output as string | undefined);
  });
}

/** Our field (as a refusal names it: "healthEndpoint", "checks.1.url") by Consul's name: "Check.HTTP", "Checks.1.HTTP". */
function consulField(field: string, checkPath: string): string {
  const m = /^checks\.(\d+)\.?(.*)$/.exec(field);
  if (m === null) return consulFieldNames(checkPath)[field] ?? field;
  const inCheck: Record<string, string> = { kind: "Args", command: "Args", service: "GRPC", url: "HTTP", address: "HTTP", port: "TCP", ttl: "TTL", interval: "Interval", timeout: "Timeout", headers: "Header", method: "Method", tlsSkipVerify: "TLSSkipVerify", followRedirects: "DisableRedirects" };
  return `${checkPath === "Check" ? "Check" : `Checks.${m[1]}`}${m[2] ? `.${inCheck[m[2]] ?? m[2]}` : ""}`;
}

/** `service:<id>`, and `service:<id>:<check>` (Consul's names for a Checks list: service:<id>:1, ...), to the instance and check. */
function instanceOfCheck(checkId: string): { id: string; check: string | undefined } {
  if (checkId.startsWith("_service_maintenance:")) {
    throw new ConflictError("the maintenance check is set with PUT /v1/agent/service/maintenance/<id>?enable=");
  }
  const m = /^service:([A-Za-z0-9._-]+?)(?::([A-Za-z0-9._-]+))?$/.exec(checkId);
  if (!m) throw new NotFoundError(`unknown check ID '${checkId}': an instance's check here is service:<id>, or service:<id>:<check> for one of a list`);
  return { id: m[1]!, check: m[2] };
}

/** The body as JSON whatever its Content-Type says: Consul reads it so, and `curl --data @file` sends form type. */
async function consulJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === "") throw new InvalidError("the body is empty: send the definition as JSON");
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HttpError(400, "invalid_json", `the body is not valid JSON: ${(err as Error).message}`);
  }
}

function byId(a: ServiceEntry, b: ServiceEntry): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
