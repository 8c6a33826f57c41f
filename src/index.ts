// The package's library API: embed the registry (startDiscovery) or talk to a server (DiscoveryClient)
// through the same DiscoveryApi.
export {
  Discovery,
  startDiscovery,
  newServiceEntry,
  type DiscoveryApi,
  type DiscoveryOptions,
  type RegistryStats,
  type HealthCheckResult,
  type HealthCheckSummary,
  type SyncResult,
  type BulkRequest,
  type BulkResult,
  type WatchOptions,
  type WatchResult,
  type WatchServiceResult,
} from "./discovery.js";
export { DiscoveryClient, type DiscoveryClientOptions } from "./client/client.js";
export { serviceUpdates, type UpdatesOptions } from "./client/updates.js";
export { newServiceQuery, ServiceQueryBuilder, type ServiceQuery } from "./registry/query.js";
export { HEALTH_STATUSES, type HealthStatus, type ServiceEntry, type ServiceInput } from "./registry/schema.js";
export { DiscoveryError, InvalidError, NotFoundError, ConflictError, UnavailableError, UnauthorizedError, type ErrorKind, type ErrorIssue } from "./errors.js";
export { startServer, type ServerHandle } from "./server.js";
export { loadConfig, type Config } from "./config.js";
export { FileStore, MemoryStore, StoreError, type Store, type StoreMutation } from "./store/index.js";
export { ManualClock, systemClock, type Clock, type Timer } from "./clock.js";
export type { CheckerSettings } from "./health/checker.js";
