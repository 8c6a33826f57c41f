// Consul's service definition (PUT /v1/agent/service/register) to our registration: what maps is mapped, what
// does not is a 400 that names the field, never silently dropped.
import { z } from "zod";
import { InvalidError } from "../../lib/errors.js";
import { parseOrThrow, type ServiceInput } from "../../model/index.js";
import { parseDuration } from "./duration.js";
import type { CheckStatus } from "./views.js";

/** Fields we read; the value says what they become. */
const CHECK_FIELDS = ["CheckID", "Name", "Notes", "HTTP", "TCP", "TTL", "GRPC", "Args", "Interval", "Timeout", "DeregisterCriticalServiceAfter", "Status", "Method", "Header", "TLSSkipVerify", "DisableRedirects"] as const;
const SERVICE_FIELDS = ["ID", "Name", "Tags", "Meta", "Address", "Port", "Check", "Checks", "EnableTagOverride", "Weights", "Kind", "Namespace", "Partition"] as const;
/** Consul fields we know and cannot serve: a registration that uses them is refused with the reason. */
const UNSERVED_CHECK: Record<string, string> = {
  GRPCUseTLS: "gRPC checks are plaintext here",
  H2PING: "H2 ping checks are not run here (HTTP, TCP and TTL are)",
  H2PingUseTLS: "H2 ping checks are not run here (HTTP, TCP and TTL are)",
  UDP: "UDP checks are not run here (HTTP, TCP and TTL are)",
  Script: "script checks take Args here (a program and its arguments, no shell)",
  Shell: "script checks take Args here (a program and its arguments, no shell)",
  DockerContainerID: "checks are not run inside containers here",
  OSService: "OS service checks are not run here (HTTP, TCP and TTL are)",
  AliasNode: "alias checks are not run here (HTTP, TCP and TTL are)",
  AliasService: "alias checks are not run here (HTTP, TCP and TTL are)",
  Body: "HTTP checks send no body here",
  TLSServerName: "HTTP checks verify TLS against the URL's host here",
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
      /** host:port or host:port/service */
      GRPC: z.string().optional(),
      Args: z.array(z.string()).optional(),
      Interval: duration.optional(),
      /** Kept for a check of a list; the one-check form takes the server's --check-timeout. */
      Timeout: duration.optional(),
      DeregisterCriticalServiceAfter: duration.optional(),
      Status: z.enum(["passing", "warning", "critical"]).optional(),
      Method: z.string().optional(),
      Header: z.record(z.string(), z.array(z.string())).optional(),
      TLSSkipVerify: z.boolean().optional(),
      /** Consul follows redirects unless this is true; we follow them only when it is false (our default: not). */
      DisableRedirects: z.boolean().optional(),
    })
    .superRefine(refuseOthers(CHECK_FIELDS, UNSERVED_CHECK))
    .superRefine((c, ctx) => {
      const kinds = (["HTTP", "TCP", "TTL", "GRPC", "Args"] as const).filter((k) => c[k] !== undefined && c[k] !== "");
      if (kinds.length !== 1) ctx.addIssue({ code: "custom", message: "a check is one of HTTP, TCP, GRPC or Args (each with Interval) or TTL" });
      else if (kinds[0] !== "TTL" && c.Interval === undefined) ctx.addIssue({ code: "custom", path: ["Interval"], message: `is required for a${kinds[0] === "HTTP" ? "n HTTP" : ` ${kinds[0]}`} check` });
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
  /** TTL checks' initial statuses, applied with heartbeats after the registration (Consul starts them critical). */
  initial: { check: string | undefined; status: CheckStatus }[];
}

/** What only a list of checks can hold: HTTP options beyond a plain GET. (A one-check Timeout is accepted, not kept.) */
function needsList(c: ConsulCheck): boolean {
  return c.GRPC !== undefined || c.Args !== undefined || (c.Method !== undefined && c.Method !== "" && c.Method !== "GET") || c.Header !== undefined || c.TLSSkipVerify === true || c.DisableRedirects === false;
}

/**
 * Reads Consul's service definition. `nodeAddress` is the default Address, as Consul's agent uses its own.
 * One plain check becomes our one-check form; several (or one with options only a list holds) become `checks`,
 * named service:<id>:1, :2, ... as Consul names a Checks list's. Our own schema's messages are renamed to
 * Consul's fields by the caller (see consulFieldNames).
 */
export function fromConsulDefinition(body: unknown, nodeAddress: string): ConsulRegistration & { checkPath: string } {
  const def = parseOrThrow(consulServiceSchema, body, "Consul service definition");
  const checks = def.Checks ?? (def.Check ? [def.Check] : []);
  const checkPath = def.Checks ? "Checks.0" : "Check";
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
  const refuse = (path: string, field: string, message: string): never => {
    throw new InvalidError(`invalid Consul service definition: ${path}.${field}: ${message}`, [{ path: [...path.split("."), field], message }]);
  };
  /** A TCP check's target as host:port, lowercase, an IPv6 host without its brackets. */
  const tcpTarget = (c: ConsulCheck): string => c.TCP!.toLowerCase().replace(/^\[(.*)\](:\d+)$/, "$1$2");
  const tcpPort = (c: ConsulCheck, path: string): number => {
    const target = tcpTarget(c);
    const at = target.lastIndexOf(":");
    if (target.slice(0, at) !== address.toLowerCase()) refuse(path, "TCP", `a TCP check dials the instance's own Address (${address}) here, not ${c.TCP}`);
    return Number(target.slice(at + 1));
  };
  const deregister = checks.map((c) => c.DeregisterCriticalServiceAfter).find((d) => d !== undefined);
  if (deregister !== undefined) input.deregisterAfter = deregister;

  const check = checks[0];
  if (checks.length === 1 && !needsList(check!)) {
    if (check!.CheckID !== undefined && check!.CheckID !== "" && check!.CheckID !== `service:${id}` && check!.CheckID !== `service:${id}:1`) {
      refuse(checkPath, "CheckID", `must be service:${id} (or left out): an instance with one check has it named so`);
    }
    if (check!.HTTP) input.healthEndpoint = check!.HTTP;
    if (check!.TCP) {
      if (tcpTarget(check!) !== `${address.toLowerCase()}:${def.Port}`) refuse(checkPath, "TCP", `a TCP check dials the instance's own Address:Port (${address}:${def.Port}) here, not ${check!.TCP}`);
      input.tcpCheck = true;
    }
    if (check!.TTL !== undefined) input.ttl = check!.TTL;
    if (check!.Interval !== undefined && check!.TTL === undefined) input.healthCheckInterval = check!.Interval;
    return { input, initial: check!.TTL !== undefined && check!.Status !== undefined ? [{ check: undefined, status: check!.Status }] : [], checkPath };
  }
  if (checks.length === 0) return { input, initial: [], checkPath };

  const initial: ConsulRegistration["initial"] = [];
  input.checks = checks.map((c, i) => {
    const path = def.Checks ? `Checks.${i}` : "Check";
    const checkId = c.CheckID === undefined || c.CheckID === "" ? String(i + 1) : c.CheckID.startsWith(`service:${id}:`) ? c.CheckID.slice(`service:${id}:`.length) : c.CheckID;
    const common = { id: checkId, ...(c.Name ? { name: c.Name } : {}), ...(c.Interval !== undefined && c.TTL === undefined ? { interval: c.Interval } : {}), ...(c.Timeout !== undefined ? { timeout: c.Timeout } : {}) };
    if (c.TTL !== undefined) {
      if (c.Status !== undefined) initial.push({ check: checkId, status: c.Status });
      return { ...common, kind: "ttl", ttl: c.TTL };
    }
    if (c.TCP) return { ...common, kind: "tcp", port: tcpPort(c, path) };
    if (c.Args) return { ...common, kind: "exec", command: c.Args };
    if (c.GRPC) {
      const m = /^(.+):(\d+)(?:\/(.*))?$/.exec(c.GRPC);
      const host = m?.[1]?.replace(/^\[(.*)\]$/, "$1").toLowerCase();
      if (!m || host !== address.toLowerCase()) refuse(path, "GRPC", `a gRPC check dials the instance's own Address (${address}) here: ${address}:<port>[/<service>], not ${c.GRPC}`);
      return { ...common, kind: "grpc", port: Number(m![2]), ...(m![3] ? { service: m![3] } : {}) };
    }
    return {
      ...common,
      kind: "http",
      url: c.HTTP,
      ...(c.Method ? { method: c.Method } : {}),
      // Consul sends each value of a header's list; one line with the values joined is the same header (RFC 9110 5.3).
      ...(c.Header ? { headers: Object.fromEntries(Object.entries(c.Header).map(([k, v]) => [k, v.join(", ")])) } : {}),
      ...(c.TLSSkipVerify !== undefined ? { tlsSkipVerify: c.TLSSkipVerify } : {}),
      ...(c.DisableRedirects === false ? { followRedirects: true } : {}),
    };
  });
  return { input, initial, checkPath: def.Checks ? "Checks" : "Check" };
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
    checks: "Checks",
    deregisterAfter: `${checkPath}.DeregisterCriticalServiceAfter`,
  };
}
