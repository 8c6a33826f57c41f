// Routes for tools that poll over HTTP for their targets. Prometheus' http_sd_configs: GET /v1/prometheus/targets
// answers [{"targets": ["host:port"], "labels": {...}}], one group per instance, healthy instances only unless
// `health` says otherwise, with our query filters (name, version, tag, health, node, meta.<key>).
import type { Hono } from "hono";
import type { Compressor } from "./compress.js";
import { urlHost } from "../lib/hostport.js";
import type { ServiceEntry } from "../model/index.js";
import type { Discovery } from "../registry/index.js";
import { compileServiceQuery, searchOf } from "./params.js";

/** Prometheus label names: [a-zA-Z_][a-zA-Z0-9_]*; anything else in a metadata key becomes '_'. */
export function labelName(key: string): string {
  const name = key.replace(/[^a-zA-Z0-9_]/g, "_");
  return /^[0-9]/.test(name) ? `_${name}` : name;
}

/**
 * One instance as a target group. Tags are joined with the separators at both ends (",prod,eu,"), as Prometheus'
 * Consul discovery does, so a relabel rule can match ",prod," whatever the order.
 */
export function targetGroup(e: ServiceEntry): { targets: string[]; labels: Record<string, string> } {
  const labels: Record<string, string> = {
    __meta_homelab_service: e.name,
    __meta_homelab_id: e.id,
    __meta_homelab_version: e.version,
    __meta_homelab_node: e.nodeId,
    __meta_homelab_address: e.address,
    __meta_homelab_port: String(e.port),
    __meta_homelab_health: e.healthStatus,
    __meta_homelab_tags: e.tags.length > 0 ? `,${e.tags.join(",")},` : "",
  };
  for (const key in e.metadata) labels[`__meta_homelab_meta_${labelName(key)}`] = e.metadata[key]!;
  return { targets: [`${urlHost(e.address)}:${e.port}`], labels };
}

export function providerRoutes(app: Hono, discovery: Discovery, compressor: Compressor): void {
  app.get("/v1/prometheus/targets", (c) => {
    const given = searchOf(c.req.url);
    // Healthy instances unless the query asks for a health: a target that fails its check is not scraped.
    const search = /(?:^|&)health=/.test(given) ? given : given === "" ? "health=healthy" : `${given}&health=healthy`;
    const body = discovery.cachedRender(`p${search}`, () => {
      const query = compileServiceQuery(search);
      return { body: JSON.stringify(discovery.discoverCompiled(query).map(targetGroup)), name: query.name ?? null };
    });
    return compressor.respond(c, body, 200, { "content-type": "application/json", "x-index": String(discovery.changes.current) });
  });
}
