// What the facade needs from a health checker, and the shapes of what checks report. The health part implements
// it and writes its results into the registry; the registry never imports health (src/app wires the two).
import type { Logger } from "pino";
import type { Clock } from "../lib/clock.js";
import type { CheckKind, HealthStatus, ServiceEntry } from "../model/index.js";
import type { Registry } from "./registry.js";

export interface HealthCheckResult {
  id: string;
  kind: CheckKind;
  /** What this check saw. */
  status: HealthStatus;
  /** The instance's status before and after it (thresholds may keep the two apart from `status`). */
  previousStatus: HealthStatus;
  healthStatus: HealthStatus;
  output: string;
  checkedAt: string;
  durationMs: number;
  /** An instance with a list of checks: each one's run. */
  checks?: CheckRunReport[];
}

export interface CheckRunReport {
  id: string;
  kind: string;
  /** What this run saw (the check's status after the thresholds is in the entry). */
  status: HealthStatus;
  output: string;
  checkedAt: string;
  durationMs: number;
}

export interface CheckerStats {
  running: number;
  scheduled: number;
  checks: number;
  /** How late scheduled checks started, ms (waiting for a concurrency slot included). */
  startDelayMs: { p50: number; p99: number; max: number; samples: number };
  /** Checks by kind and their status now (after the thresholds). */
  byKind: Record<string, Record<HealthStatus, number>>;
  /** Runs by kind and what they saw, since the start (heartbeats and expired TTLs count as ttl runs). */
  runsByKind: Record<string, Record<HealthStatus, number>>;
  /** Services with more than the alarm share of their checked instances unhealthy at once (the service-level guard). */
  alarms: { service: string; unhealthy: number; instances: number; since: string }[];
  /** Times a service's alarm was raised, since the start. */
  alarmsRaised: number;
}

export interface HealthChecks {
  /** Follows the registry from now on and checks every instance already in it. */
  start(): void;
  stop(): Promise<void>;
  /** Resolves once no check is running. */
  settled(): Promise<void>;
  /** Runs an instance's check now and returns its result. */
  checkNow(id: string): Promise<HealthCheckResult>;
  /** Runs every check now; results sorted by id. */
  checkAll(): Promise<HealthCheckResult[]>;
  /** A TTL heartbeat: sets the status (healthy unless said otherwise) and restarts the TTL; `check` names which
   * TTL check when the instance has several. */
  heartbeat(id: string, status?: HealthStatus, note?: string, check?: string): ServiceEntry;
  stats(): CheckerStats;
  /** Why an instance's check may not run here (a host the operator did not allow), or undefined: such a
   * registration is refused. */
  refusal(input: Pick<ServiceEntry, "address" | "port" | "healthEndpoint" | "tcpCheck" | "ttl" | "healthCheckInterval" | "checks">, origin?: CheckOrigin): { field: string; message: string } | undefined;
}

/** Where a registration comes from: the API, a services file, a container's labels, the server itself (some checks
 * are refused from some; the server's own may check it over loopback). */
export type CheckOrigin = "api" | "file" | "docker" | "self";

/** Builds the checker for a registry: it reads the clock and logs through the logger it is given. */
export type HealthChecksFactory = (registry: Registry, clock: Clock, logger: Logger) => HealthChecks;
