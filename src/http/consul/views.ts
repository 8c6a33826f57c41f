// Our instances in Consul's shapes, with Consul's field names: the catalog's service nodes, the health
// endpoint's {Node, Service, Checks}, agent services and health checks. Pure: the routes pass the index.
import { createHash } from "node:crypto";
import { checkKind, type HealthStatus, type ServiceEntry } from "../../model/index.js";
import { formatDuration } from "./duration.js";

/** What every view needs besides the entry: our cluster as Consul's datacenter, and this node. */
export interface ConsulSite {
  readonly datacenter: string;
  readonly nodeId: string;
  /** This node's address (Consul's agent address): the HTTP listen address, or 127.0.0.1 on a wildcard. */
  readonly nodeAddress: string;
}

export type CheckStatus = "passing" | "warning" | "critical";

/** healthy -> passing, degraded -> warning, unhealthy and unknown -> critical (a new Consul check starts critical). */
export const STATUS_OF_HEALTH: Record<HealthStatus, CheckStatus> = { healthy: "passing", degraded: "warning", unhealthy: "critical", unknown: "critical" };
export const HEALTH_OF_STATUS: Record<CheckStatus, "healthy" | "degraded" | "unhealthy"> = { passing: "healthy", warning: "degraded", critical: "unhealthy" };

const DEFAULT_WEIGHTS = { Passing: 1, Warning: 1 } as const;

/** Consul's check id for an instance's one check (or one of its list), and for its maintenance mode. */
export const serviceCheckId = (id: string, check?: string): string => (check === undefined ? `service:${id}` : `service:${id}:${check}`);
export const maintenanceCheckId = (id: string): string => `_service_maintenance:${id}`;

const uuids = new Map<string, string>();
/** A node's ID: Consul's are UUIDs; ours is derived from the node id, so it is the same on every server. */
export function nodeUuid(nodeId: string): string {
  let id = uuids.get(nodeId);
  if (id === undefined) {
    const h = createHash("sha256").update(`homelab-discovery node ${nodeId}`).digest("hex");
    id = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
    if (uuids.size < 10_000) uuids.set(nodeId, id);
  }
  return id;
}

/**
 * A node's address: this node's own, or for another node of the cluster (whose address we do not hold) the
 * address of the instance at hand, so a client that falls back on the node's address still reaches it.
 */
export function nodeAddress(site: ConsulSite, nodeId: string, entry: ServiceEntry | undefined): string {
  return nodeId === site.nodeId || entry === undefined ? site.nodeAddress : entry.address;
}

export function nodeView(site: ConsulSite, nodeId: string, address: string, index: number) {
  return {
    ID: nodeUuid(nodeId),
    Node: nodeId,
    Address: address,
    Datacenter: site.datacenter,
    TaggedAddresses: { lan: address, wan: address },
    Meta: {},
    CreateIndex: index,
    ModifyIndex: index,
  };
}

/** An instance as /v1/agent/services and /v1/health/service's `Service` show it. */
export function agentService(site: ConsulSite, e: ServiceEntry, index: number) {
  return {
    ID: e.id,
    Service: e.name,
    Tags: e.tags,
    Meta: e.metadata,
    Port: e.port,
    Address: e.address,
    Weights: DEFAULT_WEIGHTS,
    EnableTagOverride: false,
    Datacenter: site.datacenter,
    CreateIndex: index,
    ModifyIndex: index,
  };
}

/** An instance as /v1/catalog/service/<name> lists it: node fields, then the service's under Service*. */
export function catalogService(site: ConsulSite, e: ServiceEntry, index: number) {
  const address = nodeAddress(site, e.nodeId, e);
  return {
    ID: nodeUuid(e.nodeId),
    Node: e.nodeId,
    Address: address,
    Datacenter: site.datacenter,
    TaggedAddresses: { lan: address, wan: address },
    NodeMeta: {},
    ServiceKind: "",
    ServiceID: e.id,
    ServiceName: e.name,
    ServiceTags: e.tags,
    ServiceAddress: e.address,
    ServiceWeights: DEFAULT_WEIGHTS,
    ServiceMeta: e.metadata,
    ServicePort: e.port,
    ServiceEnableTagOverride: false,
    CreateIndex: index,
    ModifyIndex: index,
  };
}

/**
 * An instance's checks: its one check (HTTP, TCP or TTL) with its health as a status, and while it is in
 * maintenance Consul's critical `_service_maintenance:<id>` check. No check declared: none.
 */
export function checksOf(e: ServiceEntry, index: number) {
  const kind = checkKind(e);
  const common = { Node: e.nodeId, ServiceID: e.id, ServiceName: e.name, ServiceTags: e.tags, Definition: {}, CreateIndex: index, ModifyIndex: index };
  const checks = [];
  if (e.checks !== undefined) {
    // Each check of the list with its own status and output; Consul names a Checks list's checks service:<id>:<n>.
    for (const c of e.checks) {
      const ttl = c.kind === "ttl" ? (c as { ttl?: number }).ttl : undefined;
      checks.push({
        ...common,
        CheckID: serviceCheckId(e.id, c.id),
        Name: c.name ?? `Service '${e.name}' check ${c.id}`,
        Status: STATUS_OF_HEALTH[c.status ?? "unknown"],
        Notes: "",
        Output: c.output ?? "not checked yet",
        Type: c.kind,
        Interval: ttl !== undefined ? "" : formatDuration(c.interval ?? e.healthCheckInterval),
        ...(ttl !== undefined ? { TTL: formatDuration(ttl) } : {}),
      });
    }
  } else if (kind !== "none") {
    const checked = e.lastHealthCheck === null ? "not checked yet" : `last result at ${e.lastHealthCheck}`;
    checks.push({
      ...common,
      CheckID: serviceCheckId(e.id),
      Name: `Service '${e.name}' check`,
      Status: STATUS_OF_HEALTH[e.healthStatus],
      Notes: "",
      Output: `${kind.toUpperCase()} check: ${e.healthStatus}, ${checked}`,
      Type: kind,
      Interval: kind === "ttl" ? "" : formatDuration(e.healthCheckInterval),
      ...(kind === "ttl" ? { TTL: formatDuration(e.ttl!) } : {}),
    });
  }
  if (e.maintenance !== undefined) {
    checks.push({
      ...common,
      CheckID: maintenanceCheckId(e.id),
      Name: "Service Maintenance Mode",
      Status: "critical" as const,
      Notes: e.maintenance.reason || "Maintenance mode is enabled for this service, but no reason was provided. This is a default message.",
      Output: "",
      Type: "maintenance",
      Interval: "",
    });
  }
  return checks;
}

/** One entry of /v1/health/service/<name>. */
export function healthEntry(site: ConsulSite, e: ServiceEntry, index: number) {
  return {
    Node: nodeView(site, e.nodeId, nodeAddress(site, e.nodeId, e), index),
    Service: agentService(site, e, index),
    Checks: checksOf(e, index),
  };
}

/** Consul's `?passing`: every check passing (an instance without checks passes). */
export function passing(e: ServiceEntry): boolean {
  return e.maintenance === undefined && (checkKind(e) === "none" || e.healthStatus === "healthy");
}
