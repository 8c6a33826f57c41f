// The shapes of the answers that are built in code rather than parsed (stats, status, the Consul views, ...), as
// zod schemas for the OpenAPI description; what the routes parse with (entries, queries, bodies) is imported
// from where it lives, so the description cannot drift from the validation.
import { z } from "zod";
import { HEALTH_STATUSES, serviceEntrySchema } from "../../model/index.js";

const int = z.number().int();
export const errorSchema = z.strictObject({
  error: z.looseObject({
    code: z.string().describe("invalid, invalid_json, unauthorized, not_found, conflict, payload_too_large, unsupported_media_type, method_not_allowed, unavailable, internal"),
    message: z.string(),
    issues: z.array(z.strictObject({ path: z.array(z.union([z.string(), int])), message: z.string() })).optional().describe("zod's issues, for invalid input"),
    items: z.array(z.looseObject({ index: int, id: z.string(), code: z.string(), message: z.string() })).optional().describe("a refused bulk call's items"),
  }),
});
export const serviceListSchema = z.strictObject({ count: int, services: z.array(serviceEntrySchema) });
const byStatus = z.strictObject(Object.fromEntries(HEALTH_STATUSES.map((s) => [s, int])) as Record<(typeof HEALTH_STATUSES)[number], typeof int>);
export const checkResultSchema = z.strictObject({
  id: z.string(),
  kind: z.enum(["http", "tcp", "ttl", "none"]),
  status: z.enum(HEALTH_STATUSES),
  previousStatus: z.enum(HEALTH_STATUSES),
  healthStatus: z.enum(HEALTH_STATUSES),
  output: z.string(),
  checkedAt: z.string(),
  durationMs: z.number(),
});
export const checkSummarySchema = z.strictObject({ checked: int, byStatus, results: z.array(checkResultSchema) });
export const bulkResultSchema = z.strictObject({ registered: z.array(serviceEntrySchema), deregistered: z.array(z.string()), generation: int });
export const statsSchema = z.looseObject({
  nodeId: z.string(),
  clusterName: z.string(),
  generation: int,
  index: int,
  blockingQueries: int,
  localCount: int,
  totalCount: int,
  services: int,
  byHealth: byStatus,
  cache: z.looseObject({}),
  store: z.string(),
  checks: z.looseObject({}),
});
export const statusSchema = z.looseObject({
  status: z.enum(["ok", "stale", "failed"]),
  version: z.string(),
  nodeId: z.string(),
  uptimeMs: z.number(),
  tls: z
    .looseObject({ subject: z.string(), issuer: z.string(), names: z.array(z.string()), notBefore: z.string(), notAfter: z.string(), fingerprint: z.string(), clientCertificates: z.enum(["required", "off"]), loadedAt: z.string() })
    .optional()
    .describe("with --tls-cert: the certificate the API serves now (reloaded on SIGHUP)"),
});
export const cacheClearedSchema = z.strictObject({ cleared: int });
export const syncSchema = z.looseObject({ mode: z.enum(["standalone", "cluster"]), synced: z.boolean(), message: z.string(), generation: int });
export const prometheusTargetsSchema = z.array(z.strictObject({ targets: z.array(z.string()), labels: z.record(z.string(), z.string()) }));
export const traefikConfigSchema = z.looseObject({ http: z.looseObject({}).optional(), tcp: z.looseObject({}).optional() });

// Consul's shapes, as src/http/consul/views.ts builds them.
const strings = z.array(z.string());
const meta = z.record(z.string(), z.string());
const indexes = { CreateIndex: int, ModifyIndex: int };
export const consulNodeSchema = z.looseObject({ ID: z.string(), Node: z.string(), Address: z.string(), Datacenter: z.string(), TaggedAddresses: z.looseObject({}), Meta: meta, ...indexes });
export const consulAgentServiceSchema = z.looseObject({ ID: z.string(), Service: z.string(), Tags: strings, Meta: meta, Port: int, Address: z.string(), Datacenter: z.string(), ...indexes });
export const consulCatalogServiceSchema = z.looseObject({ Node: z.string(), Address: z.string(), ServiceID: z.string(), ServiceName: z.string(), ServiceTags: strings, ServiceAddress: z.string(), ServiceMeta: meta, ServicePort: int, ...indexes });
export const consulCheckSchema = z.looseObject({ Node: z.string(), CheckID: z.string(), Name: z.string(), Status: z.enum(["passing", "warning", "critical"]), Output: z.string(), ServiceID: z.string(), ServiceName: z.string(), ...indexes });
export const consulHealthEntrySchema = z.strictObject({ Node: consulNodeSchema, Service: consulAgentServiceSchema, Checks: z.array(consulCheckSchema) });
export const consulSelfSchema = z.looseObject({ Config: z.looseObject({ Datacenter: z.string(), NodeName: z.string() }) });
