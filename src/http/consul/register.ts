// Consul's service definition (PUT /v1/agent/service/register) to our registration: what maps is mapped, what
// does not is a 400 that names the field, never silently dropped.
import { z } from "zod";
import { InvalidError } from "../../lib/errors.js";
import { parseOrThrow, type ServiceInput } from "../../model/index.js";
import { parseDuration } from "./duration.js";
import type { CheckStatus } from "./views.js";

/** Fields we read; the value says what they become. */
const CHECK_FIELDS = ["CheckID", "Name", "Notes", "HTTP", "TCP", "TTL", "Interval", "Timeout", "DeregisterCriticalServiceAfter", "Status", "Method", "TLSSkipVerify"] as const;
const SERVICE_FIELDS = ["ID", "Name", "Tags", "Meta", "Address", "Port", "Check", "Checks", "EnableTagOverride", "Weights", "Kind", "Namespace", "Partition"] as const;
/** Consul fields we know and cannot serve: a registration that uses them is refused with the reason. */
const UNSERVED_CHECK: Record<string, string> = {
  GRPC: "gRPC checks are not run here (HTTP, TCP and TTL are)",
  GRPCUseTLS: "gRPC checks are not run here (HTTP, TCP and TTL are)",
  H2PING: "H2 ping checks are not run here (HTTP, TCP and TTL are)",
  H2PingUseTLS: "H2 ping checks are not run here (HTTP, TCP and TTL are)",
  UDP: "UDP checks are not run here (HTTP, TCP and TTL are)",
  Args: "script checks are not run here (HTTP, TCP and TTL are)",
  Script: "script checks are not run here (HTTP, TCP and TTL are)",
  Shell: "script checks are not run here (HTTP, TCP and TTL are)",
  DockerContainerID: "script checks are not run here (HTTP, TCP and TTL are)",
  OSService: "OS service checks are not run here (HTTP, TCP and TTL are)",
  AliasNode: "alias checks are not run here (HTTP, TCP and TTL are)",
  AliasService: "alias checks are not run here (HTTP, TCP and TTL are)",
  Header: "HTTP checks send a plain GET here: no headers",
  Body: "HTTP checks send a plain GET here: no body",
  TLSServerName: "HTTP checks verify TLS against the URL's host here",
  DisableRedirects: "HTTP checks do not follow redirects here",
  OutputMaxSize: "check output is capped by the server",
  FailuresBeforeCritical: "thresholds are the server's (--check-failures-before-unhealthy)",
  FailuresBeforeWarning: "thresholds are the server's (--check-failures-before-unhealthy)",
  SuccessBeforePassing: "thresholds are the server's (--check-successes-before-healthy)",
  ServiceID: "a check belongs to the service it is registered with",
};
const UNSERVED_SERVICE: Record<string, string> = {
  Connect: "Connect (service mesh) is not served here",
  Proxy: "Connect proxies are not served here",
  TaggedAddresses: "tagged addresses are not kept here: register one instance per address",
  SocketPath: "instances are reached over TCP here",
  Locality: "localities are not kept here",
};

/**
 * Consul reads its JSON case-insensitively, and its config files in snake_case: `deregister_critical_service_after`
 * is DeregisterCriticalServiceAfter. Keys are brought to the canonical spelling; unknown ones are kept as given.
 */
function canonicalKeys(value: unknown, fields: readonly string[]): unknown {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
  const byFolded = new Map([...fields, ...Object.keys(UNSERVED_CHECK), ...Object.keys(UNSERVED_SERVICE)].map((f) => [f.toLowerCase(), f]));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) out[byFolded.get(key.replace(/_/g, "").toLowerCase()) ?? key] = v;
  return out;
}

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  // A JSON number is a Go time.Duration: nanoseconds.
  const ms = typeof v === "number" ? (Number.isFinite(v) && v >= 0 ? Math.ceil(v / 1e6) : undefined) : parseDuration(v);
  if (ms === undefined) {
    ctx.addIssue({ code: "custom", message: "must be a duration such as 10s, 1m30s or 500ms" });
    return z.NEVER;
  }
  return ms;
});

/** Known fields with a type; refuse the rest (with the reason when it is a Consul field we cannot serve). */
function refuseOthers(known: readonly string[], unserved: Record<string, string>) {
  return (value: Record<string, unknown>, ctx: z.RefinementCtx) => {
    for (const key of Object.keys(value)) {
      if (known.includes(key)) continue;
      const why = unserved[key];
      ctx.addIssue({ code: "custom", path: [key], message: why ? `not served: ${why}` : "is not a field of Consul's service definition" });
    }
  };
}

const checkSchema = z.preprocess(
  (v) => canonicalKeys(v, CHECK_FIELDS),
  z
    .looseObject({
      CheckID: z.string().optional(),
      Name: z.string().optional(),
      Notes: z.string().optional(),
      HTTP: z.string().optional(),
      TCP: z.string().optional(),
      TTL: duration.optional(),
      Interval: duration.optional(),
      /** Accepted, not kept: the server's --check-timeout applies (and stays under 90% of the interval). */
      Timeout: duration.optional(),
      DeregisterCriticalServiceAfter: duration.optional(),
      Status: z.enum(["passing", "warning", "critical"]).optional(),
      Method: z.enum(["GET", ""], { error: "not served: HTTP checks send GET here" }).optional(),
      TLSSkipVerify: z.literal(false, { error: "not served: HTTP checks verify TLS here" }).optional(),
    })
    .superRefine(refuseOthers(CHECK_FIELDS, UNSERVED_CHECK))
    .superRefine((c, ctx) => {
      const kinds = (["HTTP", "TCP", "TTL"] as const).filter((k) => c[k] !== undefined && c[k] !== "");
      if (kinds.length !== 1) ctx.addIssue({ code: "custom", message: "a check is one of HTTP (with Interval), TCP (with Interval) or TTL" });
      else if (kinds[0] !== "TTL" && c.Interval === undefined) ctx.addIssue({ code: "custom", path: ["Interval"], message: `is required for a${kinds[0] === "HTTP" ? "n HTTP" : " TCP"} check` });
    }),
);

export const consulServiceSchema = z.preprocess(
  (v) => canonicalKeys(v, SERVICE_FIELDS),
  z
    .looseObject({
      ID: z.string().optional(),
      Name: z.string({ error: (i) => (i.input === undefined ? "is required" : "must be a string") }),
      Tags: z.array(z.string()).nullable().optional(),
      Meta: z.record(z.string(), z.string()).nullable().optional(),
      Address: z.string().optional(),
      Port: z.number().optional(),
      Check: checkSchema.nullable().optional(),
      Checks: z.array(checkSchema).nullable().optional(),
      /** Accepted, not kept: tags are the registration's own here. */
      EnableTagOverride: z.boolean().optional(),
      Weights: z
        .strictObject({ Passing: z.literal(1), Warning: z.literal(1) }, { error: "not served: every instance weighs the same here ({Passing: 1, Warning: 1})" })
        .partial()
        .nullable()
        .optional(),
      Kind: z.literal("", { error: "not served: only typical services are, not gateways or proxies" }).optional(),
      Namespace: z.enum(["", "default"], { error: "not served: there is one namespace, default" }).optional(),
      Partition: z.enum(["", "default"], { error: "not served: there is one partition, default" }).optional(),
    })
    .superRefine(refuseOthers(SERVICE_FIELDS, UNSERVED_SERVICE)),
);

export type ConsulCheck = z.output<typeof checkSchema>;

export interface ConsulRegistration {
  input: ServiceInput;
  /** A TTL check's initial status, applied with a heartbeat after the registration (Consul starts it critical). */
  initialStatus: CheckStatus | undefined;
}

/**
 * Reads Consul's service definition. `nodeAddress` is the default Address, as Consul's agent uses its own.
 * Our own schema's messages are renamed to Consul's fields by the caller (see CONSUL_FIELD_NAMES).
 */
export function fromConsulDefinition(body: unknown, nodeAddress: string): ConsulRegistration & { checkPath: string } {
  const def = parseOrThrow(consulServiceSchema, body, "Consul service definition");
  const checks = def.Checks ?? (def.Check ? [def.Check] : []);
  const checkPath = def.Checks ? "Checks.0" : "Check";
  if (checks.length > 1) {
    throw new InvalidError(`invalid Consul service definition: Checks: one check per instance here (HTTP, TCP or TTL), not ${checks.length}`, [
      { path: ["Checks"], message: `one check per instance here, not ${checks.length}` },
    ]);
  }
  const id = def.ID || def.Name;
  const address = def.Address || nodeAddress;
  const input: ServiceInput = {
    id,
    name: def.Name,
    address,
    port: def.Port as number,
    tags: def.Tags ?? [],
    metadata: def.Meta ?? {},
  };
  const check = checks[0];
  if (check !== undefined) {
    const refuse = (field: string, message: string): never => {
      throw new InvalidError(`invalid Consul service definition: ${checkPath}.${field}: ${message}`, [{ path: [...checkPath.split("."), field], message }]);
    };
    if (check.CheckID !== undefined && check.CheckID !== "" && check.CheckID !== `service:${id}` && check.CheckID !== `service:${id}:1`) {
      refuse("CheckID", `must be service:${id} (or left out): an instance has one check, named so`);
    }
    if (check.HTTP) input.healthEndpoint = check.HTTP;
    if (check.TCP) {
      const target = check.TCP.toLowerCase().replace(/^\[(.*)\](:\d+)$/, "$1$2");
      if (target !== `${address.toLowerCase()}:${def.Port}`) refuse("TCP", `a TCP check dials the instance's own Address:Port (${address}:${def.Port}) here, not ${check.TCP}`);
      input.tcpCheck = true;
    }
    if (check.TTL !== undefined) input.ttl = check.TTL;
    if (check.Interval !== undefined && check.TTL === undefined) input.healthCheckInterval = check.Interval;
    if (check.DeregisterCriticalServiceAfter !== undefined) input.deregisterAfter = check.DeregisterCriticalServiceAfter;
  }
  return { input, initialStatus: check?.TTL !== undefined ? check.Status : undefined, checkPath };
}

/** Our fields by Consul's names, for the messages of our own schema. */
export function consulFieldNames(checkPath: string): Record<string, string> {
  return {
    id: "ID",
    name: "Name",
    tags: "Tags",
    metadata: "Meta",
    address: "Address",
    port: "Port",
    healthEndpoint: `${checkPath}.HTTP`,
    tcpCheck: `${checkPath}.TCP`,
    ttl: `${checkPath}.TTL`,
    healthCheckInterval: `${checkPath}.Interval`,
    deregisterAfter: `${checkPath}.DeregisterCriticalServiceAfter`,
  };
}
