// Version-aware routing over the API (issue 21): GET /v1/routing lists the policies, GET/PUT/DELETE
// /v1/routing/<name> reads, sets and removes one (PUT and DELETE need the admin token when one is set, as every
// write), and routedEntries() is what /v1/services?routed=true answers: per service, the instances its policy
// routes to, each with its share of the service's traffic.
import type { Context, Hono } from "hono";
import { NotFoundError } from "../lib/errors.js";
import { publicEntry, route, serviceIdSchema, parseOrThrow, unmatchedSelectors, type RoutingPolicy, type ServiceEntry } from "../model/index.js";
import type { Discovery } from "../registry/index.js";

const JSON_HEADERS = { "content-type": "application/json" } as const;

export function routingRoutes(app: Hono, discovery: Discovery, body: (c: Context) => Promise<unknown>): void {
  const table = discovery.routing;
  const nameOf = (raw: string) => parseOrThrow(serviceIdSchema, raw, "service name").toLowerCase();
  const versions = (name: string) => new Set(discovery.registry.instancesOf(name).map((e) => e.version));

  app.get("/v1/routing", (c) => c.body(JSON.stringify({ policies: table.all() }), 200, JSON_HEADERS));
  app.get("/v1/routing/:name", (c) => {
    const name = nameOf(c.req.param("name"));
    const policy = table.get(name);
    if (policy === undefined) throw new NotFoundError(`service ${name} has no routing policy`);
    return c.body(JSON.stringify({ name, ...policy, unmatched: unmatchedSelectors(policy, versions(name)) }), 200, JSON_HEADERS);
  });
  app.put("/v1/routing/:name", async (c) => {
    const name = nameOf(c.req.param("name"));
    const policy = (await table.set(name, await body(c)))!;
    // A selector no registered version matches is allowed (a deployment sets the policy before it registers
    // the new version), and said: in the answer and the log.
    const unmatched = unmatchedSelectors(policy, versions(name));
    discovery.logger.info({ service: name, split: policy.split, ...(unmatched.length > 0 ? { unmatched } : {}) }, "routing policy set");
    const warnings = unmatched.map((v) => `no registered instance of ${name} has a version matching "${v}"`);
    return c.body(JSON.stringify({ name, ...policy, unmatched, ...(warnings.length > 0 ? { warnings } : {}) }), 200, JSON_HEADERS);
  });
  // Rollouts: a gradual shift, step by step while the canary stays healthy (registry/rollout.ts).
  app.post("/v1/routing/:name/rollout", async (c) => {
    const name = nameOf(c.req.param("name"));
    const rollout = await discovery.rollouts.start(name, await body(c));
    return c.body(JSON.stringify({ name, ...table.get(name), rollout }), 201, JSON_HEADERS);
  });
  app.get("/v1/routing/:name/rollout", (c) => {
    const name = nameOf(c.req.param("name"));
    const rollout = table.get(name)?.rollout;
    if (rollout === undefined) throw new NotFoundError(`service ${name} has had no rollout`);
    return c.body(JSON.stringify({ name, rollout }), 200, JSON_HEADERS);
  });
  app.delete("/v1/routing/:name/rollout", async (c) => {
    const name = nameOf(c.req.param("name"));
    const rollout = await discovery.rollouts.cancel(name);
    return c.body(JSON.stringify({ name, ...table.get(name), rollout }), 200, JSON_HEADERS);
  });
  app.delete("/v1/routing/:name", async (c) => {
    const name = nameOf(c.req.param("name"));
    if (table.get(name) === undefined) throw new NotFoundError(`service ${name} has no routing policy`);
    await table.set(name, undefined);
    discovery.logger.info({ service: name }, "routing policy removed");
    return c.body(JSON.stringify({ name, removed: true }), 200, JSON_HEADERS);
  });
}

/** An instance as ?routed=true shows it: its version's selector and its share of the service's traffic (percent). */
export interface RoutedEntry extends ReturnType<typeof publicEntry> {
  readonly routing: { readonly selector: string | null; readonly share: number };
}

/**
 * The entries (a query's answer, any services) as their policies route them: per service with a policy, only
 * the instances it sends traffic to (all of them when none of its selected versions has one: the fallback),
 * each with its share; services without a policy as they are. Health is the query's to filter (`health=healthy`).
 */
export function routedEntries(entries: readonly ServiceEntry[], policyOf: (name: string) => RoutingPolicy | undefined): (ReturnType<typeof publicEntry> | RoutedEntry)[] {
  const byName = new Map<string, ServiceEntry[]>();
  for (const e of entries) {
    const list = byName.get(e.name);
    if (list === undefined) byName.set(e.name, [e]);
    else list.push(e);
  }
  const out: (ReturnType<typeof publicEntry> | RoutedEntry)[] = [];
  for (const [name, list] of byName) {
    const policy = policyOf(name);
    if (policy === undefined) {
      for (const e of list) out.push(publicEntry(e));
      continue;
    }
    for (const g of route(policy, list).groups) {
      const share = Math.round((g.weight / g.instances.length) * 100) / 100;
      for (const e of g.instances) out.push({ ...publicEntry(e), routing: { selector: g.version ?? null, share } });
    }
  }
  return out;
}

/**
 * What a proxy provider serves (Traefik's): per service with a policy, the instances it routes to, and when it
 * splits between versions, each instance's server weight (its share, in hundredths of a percent); the rest as
 * they are. Callers pass the instances the proxy would serve (by health), so the fallback covers those.
 */
export function routedForProxy(entries: readonly ServiceEntry[], policyOf: (name: string) => RoutingPolicy | undefined): { entries: ServiceEntry[]; weights: Map<string, number> } {
  const weights = new Map<string, number>();
  const byName = new Map<string, ServiceEntry[]>();
  for (const e of entries) {
    const list = byName.get(e.name);
    if (list === undefined) byName.set(e.name, [e]);
    else list.push(e);
  }
  const out: ServiceEntry[] = [];
  for (const [name, list] of byName) {
    const policy = policyOf(name);
    if (policy === undefined) {
      out.push(...list);
      continue;
    }
    const { groups } = route(policy, list);
    for (const g of groups) {
      for (const e of g.instances) {
        out.push(e);
        if (groups.length > 1) weights.set(e.id, Math.max(1, Math.round((g.weight * 100) / g.instances.length)));
      }
    }
  }
  return { entries: out, weights };
}

