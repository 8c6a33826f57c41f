// registry: the core. Instances by id with indexes, the change feed, all-or-nothing writes through the store
// (registry.ts); the query language and its cache (query.ts, cache.ts); blocking queries (watch.ts); and the
// Discovery facade every face calls (discovery.ts), which takes its health checker through checks.ts. It knows no
// transport: it imports model, store and leaves only.
export {
  DEFAULT_LIMITS,
  Discovery,
  bulkRequestSchema,
  heartbeatSchema,
  maintenanceSchema,
  defaultNodeId,
  newServiceEntry,
  type BulkRequest,
  type BulkResult,
  type ClusterLink,
  type DeclaredServices,
  type DiscoveryApi,
  type DiscoveryOptions,
  type EventsOptions,
  type HealthCheckSummary,
  type HeartbeatReport,
  type Limits,
  type MaintenanceRequest,
  type Owner,
  type RegistryStats,
  type SyncResult,
  type WatchOptions,
  type WatchResult,
  type WatchServiceResult,
} from "./discovery.js";
export type { CheckerStats, CheckOrigin, CheckRunReport, HealthCheckResult, HealthChecks, HealthChecksFactory } from "./checks.js";
export { Registry, BatchError, type ChangeCause, type RegistryChange, type RemoteUpdate, type WriteItemError } from "./registry.js";
export { compileQuery, newServiceQuery, serviceQuerySchema, toPlainQuery, ServiceQueryBuilder, type CompiledQuery, type ServiceQuery } from "./query.js";
export { DEFAULT_WAIT_MS, MAX_WAIT_MS } from "./watch.js";
export { decodeSnapshot, encodeSnapshot, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, type RestoreResult, type SnapshotBody } from "./snapshot.js";
export { RoutingTable, ROUTING_FILE, type StoredPolicy } from "./routing.js";
export {
  EventFeed,
  serviceEventSchema,
  resetEvent,
  passes,
  type FeedEvent,
  type ServiceEvent,
  type ServiceEventType,
  type Subscriber,
} from "./events.js";
