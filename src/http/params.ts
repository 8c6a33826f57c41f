// `GET /v1/services?name=&version=&tag=a&tag=b&health=&node=&meta.team=platform` to a ServiceQuery.
// Unknown or repeated single-valued parameters are errors, so a typo (`tags=`) never widens a query silently.
import { InvalidError } from "../lib/errors.js";
import { compileQuery, serviceQuerySchema, type CompiledQuery, type ServiceQuery } from "../registry/index.js";
import { parseOrThrow } from "../model/index.js";
import { DEFAULT_WAIT_MS, MAX_WAIT_MS } from "../registry/index.js";

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
      const metadata = (query.metadata ??= {});
      // A key has one value: two would be a query nothing can match, or a silent "last one wins".
      if (Object.hasOwn(metadata, key)) throw new InvalidError(`invalid query: '${param}' may be given once`);
      metadata[key] = value;
    } else if (Object.hasOwn(SINGLE, param)) {
      if (seen.has(param)) throw new InvalidError(`invalid query: '${param}' may be given once`);
      seen.add(param);
      const field = SINGLE[param as keyof typeof SINGLE];
      (query as Record<string, string>)[field] = value;
    } else {
      throw new InvalidError(
        `invalid query: unknown parameter '${param}' (use name, version, tag, health, node, meta.<key>, and index and wait to block)`,
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

/** Consul's blocking-query parameters: wait up to `waitMs` for a change after `index`. */
export interface Blocking {
  index: number;
  waitMs: number;
}

const UNIT_MS = { ms: 1, s: 1000, m: 60_000 } as const;

/**
 * Takes `index` and `wait` out of `params` (what is left is the query). Undefined when there is no index:
 * `wait` alone answers at once, as in Consul. `wait` is `250ms`, `30s`, `5m` or bare milliseconds, at most 10m.
 */
export function takeBlocking(params: URLSearchParams): Blocking | undefined {
  const index = single(params, "index");
  const wait = single(params, "wait");
  params.delete("index");
  params.delete("wait");
  let waitMs = DEFAULT_WAIT_MS;
  if (wait !== undefined) {
    const m = /^(\d{1,9})(ms|s|m)?$/.exec(wait);
    if (!m) throw new InvalidError(`invalid query: wait must be a duration such as 250ms, 30s or 5m, not '${wait}'`);
    waitMs = Number(m[1]) * UNIT_MS[(m[2] ?? "ms") as keyof typeof UNIT_MS];
    if (waitMs > MAX_WAIT_MS) throw new InvalidError("invalid query: wait may be at most 10m");
  }
  if (index === undefined) return undefined;
  if (!/^\d{1,16}$/.test(index)) throw new InvalidError(`invalid query: index must be the X-Index of an earlier answer, not '${index}'`);
  return { index: Number(index), waitMs };
}

/** A blocking query's wait plus up to 1/16 of it, as Consul does: clients that waited from the same moment are
 * not all answered at the same one. */
export function jittered(waitMs: number): number {
  return waitMs + Math.floor(Math.random() * (waitMs / 16));
}

function single(params: URLSearchParams, name: string): string | undefined {
  const all = params.getAll(name);
  if (all.length > 1) throw new InvalidError(`invalid query: '${name}' may be given once`);
  return all[0];
}

/** A query's fields as the URL names them, for its errors (`health: ...`, not `healthStatus: ...`). */
const PARAM_OF_FIELD = { healthStatus: "health", nodeId: "node", tags: "tag", metadata: "meta" };

export function compileServiceQuery(search: string): CompiledQuery {
  return compileQuery(parseOrThrow(serviceQuerySchema, queryFromParams(new URLSearchParams(search)), "query", PARAM_OF_FIELD));
}

/** The raw query string of a URL, without the `?`. */
export function searchOf(url: string): string {
  const q = url.indexOf("?");
  return q === -1 ? "" : url.slice(q + 1);
}
