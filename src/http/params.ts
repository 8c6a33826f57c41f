// `GET /v1/services?name=&version=&tag=a&tag=b&health=&node=&meta.team=platform` to a ServiceQuery.
// Unknown or repeated single-valued parameters are errors, so a typo (`tags=`) never widens a query silently.
import { InvalidError } from "../errors.js";
import type { ServiceQuery } from "../registry/query.js";

const SINGLE = { name: "name", version: "version", health: "healthStatus", node: "nodeId" } as const;

export function queryFromParams(params: URLSearchParams): ServiceQuery {
  const query: ServiceQuery = {};
  const seen = new Set<string>();
  for (const [param, value] of params) {
    if (param === "tag") {
      const tags = (query.tags ??= []);
      for (const tag of value.split(",")) tags.push(tag);
    } else if (param.startsWith("meta.")) {
      const key = param.slice(5);
      if (key.length === 0) throw new InvalidError("invalid query: 'meta.' needs a key, as in meta.team=platform");
      (query.metadata ??= {})[key] = value;
    } else if (Object.hasOwn(SINGLE, param)) {
      if (seen.has(param)) throw new InvalidError(`invalid query: '${param}' may be given once`);
      seen.add(param);
      const field = SINGLE[param as keyof typeof SINGLE];
      (query as Record<string, string>)[field] = value;
    } else {
      throw new InvalidError(
        `invalid query: unknown parameter '${param}' (use name, version, tag, health, node or meta.<key>)`,
      );
    }
  }
  return query;
}

/** The inverse of queryFromParams, for clients: a ServiceQuery as URL parameters. */
export function paramsFromQuery(query: ServiceQuery): URLSearchParams {
  const params = new URLSearchParams();
  if (query.name !== undefined) params.set("name", query.name);
  if (query.version !== undefined) params.set("version", query.version);
  for (const tag of query.tags ?? []) params.append("tag", tag);
  if (query.healthStatus !== undefined) params.set("health", query.healthStatus);
  if (query.nodeId !== undefined) params.set("node", query.nodeId);
  for (const [key, value] of Object.entries(query.metadata ?? {})) params.append(`meta.${key}`, value);
  return params;
}
