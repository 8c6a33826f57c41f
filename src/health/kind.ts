// What a check kind is: a name, a zod schema for its options, where it connects (for the target rule), and a
// probe whose run(signal) returns a status and an output. The scheduler (checker.ts) knows kinds only through
// this; a new kind is one file in kinds/ plus its line in kinds/index.ts.
import type { LookupFunction } from "node:net";
import type { z } from "zod";
import type { HealthStatus } from "../model/index.js";
import type { CheckOrigin } from "../registry/index.js";
import type { HttpPools } from "./pools.js";

/** What one run saw. A run that throws is unhealthy, its error the output (and "timed out" once the signal fired). */
export interface CheckOutcome {
  readonly status: HealthStatus;
  readonly output: string;
}

export interface Probe {
  /** How the output of a failed run starts: "GET http://127.0.0.1:8080/health", "TCP 127.0.0.1:22". */
  readonly label: string;
  /** One check; it ends (resolves or throws) once `signal` aborts: the timeout, or the checker stopping. */
  run(signal: AbortSignal): Promise<CheckOutcome>;
  /** Releases what the probe holds between runs (a gRPC channel) once the check is no longer run. */
  close?(): void;
}

/** The instance a check belongs to, and the shared means probes use. */
export interface ProbeContext {
  readonly address: string;
  readonly port: number;
  /** dns.lookup that refuses link-local and metadata addresses (targets.ts). */
  readonly lookup: LookupFunction;
  /** A 2xx slower than this is degraded (HTTP), ms. */
  readonly degradedAfterMs: number;
  /** --check-ca-file: a CA that HTTPS checks trust besides the system's. */
  readonly caFile: string | undefined;
  /** Keep-alive pools for HTTP(S), one per TLS setting. */
  readonly pools: HttpPools;
  /** Whether a host (a redirect's, say) is one the instance's checks may reach: its own address or allowed. */
  reachable(host: string): boolean;
}

export type { CheckOrigin };

/** What a kind may look at to refuse a registration. */
export interface RefusalContext {
  readonly origin: CheckOrigin;
  /** --checks-allow-exec. */
  readonly allowExec: boolean;
  /** --admin-token is set: API writes are authenticated. */
  readonly authenticatedApi: boolean;
}

export interface CheckKind<S extends z.ZodType = z.ZodType> {
  readonly kind: string;
  /** The kind's own options (a check's fields besides id, name, kind, interval and timeout): a strict schema. */
  readonly options: S;
  /** Heartbeat-driven (TTL): never run by the scheduler; a missed heartbeat fails it. */
  readonly heartbeat?: boolean;
  /** The host the check connects to, and the option naming it (the target rule in targets.ts); none for local kinds. */
  target?(options: z.output<S>, instance: { address: string; port: number }): { host: string; field: string } | undefined;
  /** Why such a check may not be registered from there (exec without --checks-allow-exec), or undefined. */
  refusal?(options: z.output<S>, ctx: RefusalContext): { field: string; message: string } | undefined;
  /** The probe; options are parsed already. Undefined for heartbeat kinds. */
  probe?(options: z.output<S>, ctx: ProbeContext): Probe;
}

/** A kind, typed by its schema: `defineKind({ kind: "tcp", options: z.strictObject({...}), probe(o, ctx) {...} })`. */
export function defineKind<S extends z.ZodType>(kind: CheckKind<S>): CheckKind<S> {
  return kind;
}
