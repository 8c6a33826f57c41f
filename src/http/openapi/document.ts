// GET /openapi.json: an OpenAPI 3.1 description built from the zod schemas the routes parse with (zod 4's own
// z.toJSONSchema, draft 2020-12, which is OpenAPI 3.1's dialect): request bodies and parameters on their input
// side, answers on their output side, every error as the one error shape. Built once, on first request.
import { z } from "zod";
import { rolloutRequestSchema, routingPolicySchema, serviceInputSchema, serviceIdSchema, serviceEntrySchema } from "../../model/index.js";
import { bulkRequestSchema, heartbeatSchema, maintenanceSchema, serviceEventSchema, serviceQuerySchema } from "../../registry/index.js";
import { consulServiceSchema } from "../consul/index.js";
import { scopeOf, type Scope } from "../auth.js";
import { VERSION } from "../../lib/version.js";
import * as s from "./schemas.js";

type Json = Record<string, unknown>;

interface Param {
  name: string;
  in: "query" | "path" | "header";
  schema: z.ZodType;
  description?: string;
  required?: boolean;
  array?: boolean;
}

interface Operation {
  method: "get" | "put" | "post" | "delete";
  path: string;
  summary: string;
  tag: string;
  params?: Param[];
  body?: z.ZodType;
  /** Status -> schema (JSON), "text" (a text answer), "empty" (no body), or "events" (the SSE stream). */
  responses: Record<number, z.ZodType | "text" | "empty" | "events" | "html">;
}

const q = serviceQuerySchema.shape;
const QUERY: Param[] = [
  { name: "name", in: "query", schema: q.name.unwrap() },
  { name: "version", in: "query", schema: q.version.unwrap(), description: "an exact version or a semver range (^2.1, >=1.2 <2)" },
  { name: "tag", in: "query", schema: z.string(), array: true, description: "repeat it, or a,b: every tag must be present" },
  { name: "health", in: "query", schema: q.healthStatus.unwrap() },
  { name: "node", in: "query", schema: q.nodeId.unwrap() },
  { name: "meta.{key}", in: "query", schema: z.string(), description: "meta.<key>=<value>: the metadata pair must be present (any key)" },
];
const BLOCKING: Param[] = [
  { name: "index", in: "query", schema: z.string().regex(/^\d{1,16}$/), description: "the X-Index of an earlier answer: wait for a change after it" },
  { name: "wait", in: "query", schema: z.string().regex(/^\d{1,9}(ms|s|m)?$/), description: "how long to wait (250ms, 30s, 5m; at most 10m; default 5m)" },
];
const FORCE: Param = { name: "force", in: "query", schema: z.enum(["true", "false"]), description: "change an instance a services file or a container declares" };
const ID: Param = { name: "id", in: "path", schema: serviceIdSchema, required: true };
const NAME: Param = { name: "name", in: "path", schema: z.string(), required: true };
const CONSUL_BLOCKING = BLOCKING;

const E = s.errorSchema;
const ROUTING_OUT = z.object({ split: z.array(z.object({ version: z.string(), weight: z.number().int() })), updatedAt: z.string() });
const ROLLOUT_OUT = z.object({
  from: z.string(),
  to: z.string(),
  steps: z.array(z.number().int()),
  pauseMs: z.number().int(),
  minHealthyPercent: z.number(),
  state: z.enum(["running", "completed", "rolled-back", "cancelled"]),
  step: z.number().int().describe("index into steps of the step in force"),
  startedAt: z.string(),
  nextAt: z.number().int().optional().describe("when the next step is due (ms since the epoch), while running"),
  endedAt: z.string().optional(),
  reason: z.string().optional().describe("why it rolled back, or was cancelled"),
});
const ROLLOUT_ONE = ROUTING_OUT.extend({ name: z.string(), rollout: ROLLOUT_OUT });
const ROUTING_ONE = ROUTING_OUT.extend({ name: z.string(), unmatched: z.array(z.string()), warnings: z.array(z.string()).optional() });
const SNAPSHOT = z.object({
  format: z.literal("homelab-discovery/registry-snapshot"),
  version: z.literal(1),
  createdAt: z.string(),
  nodeId: z.string(),
  count: z.number().int(),
  sha256: z.string().describe("hex sha256 of the body as JSON.stringify writes it"),
  body: z.object({ entries: z.array(serviceEntrySchema), routing: z.record(z.string(), ROUTING_OUT) }),
});
const RESTORED = z.object({ restored: z.number().int(), removed: z.number().int(), skipped: z.array(z.object({ id: z.string(), reason: z.string() })), routingPolicies: z.number().int() });
const OPERATIONS: Operation[] = [
  { method: "get", path: "/v1/services", tag: "services", summary: "Query instances (a blocking query with index and wait)", params: [...QUERY, ...BLOCKING], responses: { 200: s.serviceListSchema, 400: E, 503: E } },
  { method: "post", path: "/v1/services/bulk", tag: "services", summary: "Register and deregister many, all or nothing", params: [FORCE], body: bulkRequestSchema, responses: { 200: s.bulkResultSchema, 400: E, 409: E } },
  { method: "get", path: "/v1/services/{id}", tag: "services", summary: "One instance (a blocking query with index and wait)", params: [ID, ...BLOCKING], responses: { 200: serviceEntrySchema, 400: E, 404: E } },
  { method: "put", path: "/v1/services/{id}", tag: "services", summary: "Register or replace an instance (201 when new)", params: [ID, FORCE], body: serviceInputSchema, responses: { 200: serviceEntrySchema, 201: serviceEntrySchema, 400: E, 409: E, 413: E, 415: E } },
  { method: "delete", path: "/v1/services/{id}", tag: "services", summary: "Deregister an instance", params: [ID, FORCE], responses: { 200: serviceEntrySchema, 404: E, 409: E } },
  { method: "post", path: "/v1/services/{id}/check", tag: "health", summary: "Run an instance's check now", params: [ID], responses: { 200: s.checkResultSchema, 404: E } },
  { method: "put", path: "/v1/services/{id}/heartbeat", tag: "health", summary: "A TTL instance's heartbeat (healthy unless a status is given)", params: [ID], body: heartbeatSchema, responses: { 200: serviceEntrySchema, 400: E, 404: E } },
  { method: "put", path: "/v1/services/{id}/maintenance", tag: "health", summary: "Maintenance on (hidden from DNS and healthy queries) or off", params: [ID], body: maintenanceSchema, responses: { 200: serviceEntrySchema, 400: E, 404: E } },
  { method: "get", path: "/v1/routing", tag: "services", summary: "Every version-aware routing policy, by service name", responses: { 200: z.object({ policies: z.record(z.string(), ROUTING_OUT) }) } },
  { method: "get", path: "/v1/routing/{name}", tag: "services", summary: "A service's routing policy", params: [NAME], responses: { 200: ROUTING_ONE, 400: E, 404: E } },
  { method: "put", path: "/v1/routing/{name}", tag: "services", summary: "Set a service's routing policy (weighted version selectors summing to 100)", params: [NAME], body: routingPolicySchema, responses: { 200: ROUTING_ONE, 400: E } },
  { method: "post", path: "/v1/routing/{name}/rollout", tag: "services", summary: "Start a gradual shift from one version to another: steps of percent, a pause between them, rolled back at once when the canary's healthy share falls below minHealthyPercent", params: [NAME], body: rolloutRequestSchema, responses: { 201: ROLLOUT_ONE, 400: E, 409: E } },
  { method: "get", path: "/v1/routing/{name}/rollout", tag: "services", summary: "A service's rollout, running or the last one ended", params: [NAME], responses: { 200: z.object({ name: z.string(), rollout: ROLLOUT_OUT }), 404: E } },
  { method: "delete", path: "/v1/routing/{name}/rollout", tag: "services", summary: "Cancel a running rollout; the split in force stays", params: [NAME], responses: { 200: ROLLOUT_ONE, 404: E } },
  { method: "delete", path: "/v1/routing/{name}", tag: "services", summary: "Remove a service's routing policy", params: [NAME], responses: { 200: z.object({ name: z.string(), removed: z.boolean() }), 404: E } },
  { method: "post", path: "/v1/checks", tag: "health", summary: "Run every check now", responses: { 200: s.checkSummarySchema } },
  {
    method: "get",
    path: "/v1/events",
    tag: "services",
    summary: "What happens to instances, as Server-Sent Events (registered, deregistered, health, maintenance, routing, reset)",
    params: [...QUERY, { name: "after", in: "query", schema: z.string().regex(/^\d{1,16}$/), description: "replay from this index (X-Index of a list read)" }, { name: "Last-Event-ID", in: "header", schema: z.string().regex(/^\d{1,16}$/), description: "the browser's reconnect: replay after it" }],
    responses: { 200: "events", 400: E, 503: E },
  },
  { method: "get", path: "/v1/snapshot", tag: "server", summary: "A snapshot of this node's registry (instances as stored, maintenance, routing policies), with format, version and sha256; admin token when one is set", responses: { 200: SNAPSHOT, 401: E } },
  { method: "put", path: "/v1/snapshot", tag: "server", summary: "Restore a snapshot, all or nothing (a damaged, truncated or foreign file is a 400 and changes nothing)", body: SNAPSHOT, responses: { 200: RESTORED, 400: E, 409: E, 413: E, 415: E } },
  { method: "get", path: "/v1/stats", tag: "server", summary: "Counts, cache, checks and the other parts' figures", responses: { 200: s.statsSchema } },
  { method: "delete", path: "/v1/cache", tag: "server", summary: "Clear the query cache", responses: { 200: s.cacheClearedSchema } },
  { method: "post", path: "/v1/sync", tag: "server", summary: "Cluster mode: read the replica again from etcd", params: [FORCE], responses: { 200: s.syncSchema, 503: E } },
  { method: "get", path: "/v1/status", tag: "server", summary: "Liveness and version (503 when the store refuses writes)", responses: { 200: s.statusSchema, 503: s.statusSchema } },
  { method: "get", path: "/metrics", tag: "server", summary: "Prometheus metrics (text exposition format)", responses: { 200: "text" } },
  { method: "get", path: "/openapi.json", tag: "server", summary: "This description", responses: { 200: z.looseObject({ openapi: z.literal("3.1.0") }) } },
  { method: "get", path: "/docs", tag: "server", summary: "This description as a page", responses: { 200: "html" } },
  { method: "get", path: "/ui", tag: "dashboard", summary: "The dashboard", responses: { 200: "html" } },
  { method: "get", path: "/ui/", tag: "dashboard", summary: "Redirects to /ui", responses: { 301: "empty" } },
  { method: "get", path: "/ui/app.js", tag: "dashboard", summary: "The dashboard's script", responses: { 200: "text" } },
  { method: "get", path: "/ui/app.css", tag: "dashboard", summary: "The dashboard's style", responses: { 200: "text" } },
  { method: "get", path: "/v1/prometheus/targets", tag: "providers", summary: "Prometheus http_sd_configs targets (healthy instances)", params: QUERY, responses: { 200: s.prometheusTargetsSchema, 400: E } },
  { method: "get", path: "/v1/traefik/config", tag: "providers", summary: "Traefik's HTTP provider configuration", params: [...QUERY, { name: "exposedByDefault", in: "query", schema: z.enum(["true", "false"]) }, { name: "strictChecks", in: "query", schema: z.string() }, { name: "defaultRule", in: "query", schema: z.string() }], responses: { 200: s.traefikConfigSchema, 400: E } },
  // The Consul-compatible subset (src/http/consul).
  { method: "get", path: "/v1/agent/self", tag: "consul", summary: "Consul: the agent", responses: { 200: s.consulSelfSchema } },
  { method: "get", path: "/v1/status/leader", tag: "consul", summary: "Consul: the leader (this server)", responses: { 200: z.string() } },
  { method: "get", path: "/v1/status/peers", tag: "consul", summary: "Consul: the peers (this server)", responses: { 200: z.array(z.string()) } },
  { method: "get", path: "/v1/catalog/datacenters", tag: "consul", summary: "Consul: datacenters", responses: { 200: z.array(z.string()) } },
  { method: "get", path: "/v1/agent/services", tag: "consul", summary: "Consul: this node's services by id", params: CONSUL_BLOCKING, responses: { 200: z.record(z.string(), s.consulAgentServiceSchema) } },
  { method: "get", path: "/v1/agent/checks", tag: "consul", summary: "Consul: this node's checks by id", params: CONSUL_BLOCKING, responses: { 200: z.record(z.string(), s.consulCheckSchema) } },
  { method: "get", path: "/v1/catalog/services", tag: "consul", summary: "Consul: service names with their tags", params: CONSUL_BLOCKING, responses: { 200: z.record(z.string(), z.array(z.string())) } },
  { method: "get", path: "/v1/catalog/service/{name}", tag: "consul", summary: "Consul: a service's instances", params: [NAME, { name: "tag", in: "query", schema: z.string(), array: true }, ...CONSUL_BLOCKING], responses: { 200: z.array(s.consulCatalogServiceSchema), 400: E } },
  { method: "get", path: "/v1/catalog/nodes", tag: "consul", summary: "Consul: nodes", params: CONSUL_BLOCKING, responses: { 200: z.array(s.consulNodeSchema) } },
  { method: "get", path: "/v1/catalog/node/{node}", tag: "consul", summary: "Consul: a node and its services (null for an unknown node)", params: [{ name: "node", in: "path", schema: z.string(), required: true }, ...CONSUL_BLOCKING], responses: { 200: z.strictObject({ Node: s.consulNodeSchema, Services: z.record(z.string(), s.consulAgentServiceSchema) }).nullable() } },
  { method: "get", path: "/v1/health/service/{name}", tag: "consul", summary: "Consul: a service's instances with node and checks", params: [NAME, { name: "tag", in: "query", schema: z.string(), array: true }, { name: "passing", in: "query", schema: z.string() }, ...CONSUL_BLOCKING], responses: { 200: z.array(s.consulHealthEntrySchema), 400: E } },
  { method: "get", path: "/v1/health/checks/{name}", tag: "consul", summary: "Consul: a service's checks", params: [NAME, ...CONSUL_BLOCKING], responses: { 200: z.array(s.consulCheckSchema) } },
  { method: "get", path: "/v1/health/state/{state}", tag: "consul", summary: "Consul: checks in a state", params: [{ name: "state", in: "path", schema: z.enum(["any", "passing", "warning", "critical"]), required: true }, ...CONSUL_BLOCKING], responses: { 200: z.array(s.consulCheckSchema), 400: E } },
  { method: "put", path: "/v1/agent/service/register", tag: "consul", summary: "Consul: register a service definition", params: [{ name: "replace-existing-checks", in: "query", schema: z.string() }], body: consulServiceSchema, responses: { 200: "empty", 400: E } },
  { method: "put", path: "/v1/agent/service/deregister/{id}", tag: "consul", summary: "Consul: deregister", params: [ID], responses: { 200: "empty", 404: E } },
  { method: "put", path: "/v1/agent/service/maintenance/{id}", tag: "consul", summary: "Consul: maintenance on or off", params: [ID, { name: "enable", in: "query", schema: z.enum(["true", "false"]), required: true }, { name: "reason", in: "query", schema: z.string() }], responses: { 200: "empty", 400: E, 404: E } },
  ...(["pass", "warn", "fail"] as const).map(
    (verb): Operation => ({ method: "put", path: `/v1/agent/check/${verb}/{check}`, tag: "consul", summary: `Consul: a TTL check ${verb}`, params: [{ name: "check", in: "path", schema: z.string(), required: true }, { name: "note", in: "query", schema: z.string() }], responses: { 200: "empty", 404: E } }),
  ),
  { method: "put", path: "/v1/agent/check/update/{check}", tag: "consul", summary: "Consul: a TTL check's status and output", params: [{ name: "check", in: "path", schema: z.string(), required: true }], body: z.strictObject({ Status: z.enum(["passing", "warning", "critical"]), Output: z.string().optional() }), responses: { 200: "empty", 400: E, 404: E } },
];

/** The documented operations, for the test that holds them to the routes. */
export const DOCUMENTED = OPERATIONS.map((o) => ({ method: o.method.toUpperCase(), path: o.path }));

const jsonSchema = (schema: z.ZodType, io: "input" | "output"): Json => {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any", target: "draft-2020-12" }) as Json;
  return rest;
};

const STATUS_TEXT: Record<number, string> = { 200: "OK", 201: "Created", 301: "Moved", 400: "Invalid input (zod's issues)", 401: "No token, or one the server does not know", 403: "The token does not have this route's scope", 404: "Not found", 409: "Conflict", 413: "Body too large", 415: "Not JSON", 503: "Unavailable" };

function response(status: number, what: Operation["responses"][number]): Json {
  const description = STATUS_TEXT[status] ?? String(status);
  if (what === "empty") return { description };
  if (what === "text") return { description, content: { "text/plain": { schema: { type: "string" } } } };
  if (what === "html") return { description, content: { "text/html": { schema: { type: "string" } } } };
  if (what === "events") {
    return {
      description: "An event stream: each event's `data` is a ServiceEvent (components.schemas.ServiceEvent), its `id` the registry index",
      headers: { "X-Index": { schema: { type: "string" } } },
      content: { "text/event-stream": { schema: { type: "string" }, "x-event-schema": { $ref: "#/components/schemas/ServiceEvent" } } },
    };
  }
  return { description, content: { "application/json": { schema: what === s.errorSchema ? { $ref: "#/components/schemas/Error" } : jsonSchema(what, "output") } } };
}

/** The security schemes that open each scope. */
const SCOPE_TOKENS: Record<Exclude<Scope, "open">, string[]> = { read: ["readToken", "writeToken", "adminToken"], write: ["writeToken", "adminToken"], admin: ["adminToken"] };

function build(): Json {
  const paths: Record<string, Record<string, Json>> = {};
  for (const op of OPERATIONS) {
    const responses: Record<string, Json> = {};
    for (const [status, what] of Object.entries(op.responses)) responses[status] = response(Number(status), what);
    // The scope comes from the route table the middleware enforces (auth.ts), so the two cannot disagree.
    const scope = scopeOf(op.method.toUpperCase(), op.path.replace(/\{([^}]+)\}/g, ":$1")) ?? "admin";
    if (scope !== "open") {
      responses["401"] ??= response(401, s.errorSchema);
      responses["403"] ??= response(403, s.errorSchema);
    }
    const parameters = (op.params ?? []).map((p) => ({
      name: p.name,
      in: p.in,
      required: p.in === "path" || p.required === true,
      ...(p.description ? { description: p.description } : {}),
      schema: p.array ? { type: "array", items: jsonSchema(p.schema, "input") } : jsonSchema(p.schema, "input"),
      ...(p.array ? { style: "form", explode: true } : {}),
    }));
    (paths[op.path] ??= {})[op.method] = {
      summary: op.summary,
      tags: [op.tag],
      operationId: `${op.method}${op.path.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? "").toUpperCase())}`,
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(op.body ? { requestBody: { required: op.path.endsWith("/heartbeat") ? false : true, content: { "application/json": { schema: jsonSchema(op.body, "input") } } } } : {}),
      responses,
      "x-scope": scope,
      // {}: the route is open on a server without a token of that scope (reads without --read-token, say).
      ...(scope !== "open" ? { security: [...SCOPE_TOKENS[scope].map((name) => ({ [name]: [] })), {}] } : {}),
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "homelab-discovery",
      version: VERSION,
      description: "Service discovery: the JSON API, the event stream, the providers and the Consul-compatible subset. Each operation's x-scope says which token it takes: open (none), read (--read-token, when the server has one; the write and admin tokens read too), write (--write-token or the admin token; without a write token, the admin token) or admin (--admin-token). No token, or an unknown one: 401; a token without the scope: 403. Every error is {error: {code, message, issues?, items?}}.",
    },
    servers: [{ url: "/" }],
    paths,
    components: {
      schemas: { Error: jsonSchema(s.errorSchema, "output"), ServiceEvent: jsonSchema(serviceEventSchema, "output"), ServiceEntry: jsonSchema(serviceEntrySchema, "output") },
      securitySchemes: {
        readToken: { type: "http", scheme: "bearer", description: "--read-token: every read, when the server has one (Consul's routes also take X-Consul-Token)" },
        writeToken: { type: "http", scheme: "bearer", description: "--write-token: service writes and reads (Consul's routes also take X-Consul-Token)" },
        adminToken: { type: "http", scheme: "bearer", description: "--admin-token: everything (Consul's routes also take X-Consul-Token)" },
      },
    },
  };
}

let built: string | undefined;
/** The description as JSON text, built on first use. */
export function openApiJson(): string {
  return (built ??= JSON.stringify(build()));
}
export function openApiDocument(): Json {
  return JSON.parse(openApiJson()) as Json;
}
