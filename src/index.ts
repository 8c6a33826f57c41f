// The package's library API: embed the registry (startDiscovery) or talk to a server (DiscoveryClient)
// through the same DiscoveryApi. Everything here comes through a part's door.
export { startDiscovery, startServer, loadConfig, type EmbeddedOptions as DiscoveryOptions, type ServerHandle, type Config } from "./app/index.js";
export {
  Discovery,
  newServiceEntry,
  newServiceQuery,
  ServiceQueryBuilder,
  type DiscoveryApi,
  type RegistryStats,
  type HealthCheckResult,
  type HealthCheckSummary,
  type SyncResult,
  type BulkRequest,
  type BulkResult,
  type WatchOptions,
  type WatchResult,
  type WatchServiceResult,
  type ServiceQuery,
  type EventsOptions,
  type ServiceEvent,
  type ServiceEventType,
} from "./registry/index.js";
export { DiscoveryClient, serviceUpdates, type DiscoveryClientOptions, type UpdatesOptions } from "./client/index.js";
export { HEALTH_STATUSES, type HealthStatus, type ServiceEntry, type ServiceInput } from "./model/index.js";
export { FileStore, MemoryStore, StoreError, type Store, type StoreMutation } from "./store/index.js";
export type { CheckerSettings } from "./health/index.js";
export { DiscoveryError, InvalidError, NotFoundError, ConflictError, UnavailableError, UnauthorizedError, ForbiddenError, type ErrorKind, type ErrorIssue } from "./lib/errors.js";
export { ManualClock, systemClock, type Clock, type Timer } from "./lib/clock.js";
