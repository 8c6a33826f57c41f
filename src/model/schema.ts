// The shapes of a service instance: what a client may send (ServiceInput) and what the registry holds
// (ServiceEntry). Types come from these schemas; nothing else defines them.
import { isIP } from "node:net";
import { z } from "zod";
import { InvalidError, type ErrorIssue } from "../lib/errors.js";
import { canonicalIPv6 } from "../lib/ip.js";

export const HEALTH_STATUSES = ["healthy", "degraded", "unhealthy", "unknown"] as const;
export const healthStatusSchema = z.enum(HEALTH_STATUSES);
export type HealthStatus = z.infer<typeof healthStatusSchema>;

export const LIMITS = {
  idLength: 128,
  tags: 32,
  tagLength: 255,
  metadataPairs: 64,
  metadataKeyLength: 128,
  metadataValueLength: 512,
  versionLength: 64,
  healthEndpointLength: 1024,
  minIntervalMs: 1_000,
  maxIntervalMs: 86_400_000,
  defaultIntervalMs: 30_000,
  checksPerInstance: 8,
  /** A check's output as the entry keeps it (POST .../check shows up to 4 KB). */
  entryOutputBytes: 1024,
} as const;

/** "is required" instead of zod's "expected string, received undefined" for a missing field. */
const required = { error: (issue: { input?: unknown }) => (issue.input === undefined ? "is required" : undefined) };

const LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const HOST_LABEL = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$/;

/** A DNS label (names and tags become subdomains): 1-63 of a-z, 0-9 and '-', no hyphen at either end. */
export const dnsLabelSchema = z
  .string(required)
  .trim()
  .toLowerCase()
  .min(1, "must not be empty")
  .max(63, "must be at most 63 characters (a DNS label)")
  .regex(LABEL, "must be a DNS label: letters, digits and '-', not starting or ending with '-'");

export const serviceIdSchema = z
  .string(required)
  .min(1, "must not be empty")
  .max(LIMITS.idLength, `must be at most ${LIMITS.idLength} characters`)
  .regex(/^[A-Za-z0-9._-]+$/, "may contain only letters, digits, '.', '_' and '-'");

export const versionSchema = z
  .string()
  .trim()
  .min(1, "must not be empty")
  .max(LIMITS.versionLength, `must be at most ${LIMITS.versionLength} characters`)
  .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces");

function isHostname(value: string): boolean {
  if (value.length > 253) return false;
  const labels = value.split(".");
  // An all-numeric last label is a mistyped IPv4 address, not a host name (RFC 3696 section 2).
  if (/^\d+$/.test(labels[labels.length - 1] ?? "")) return false;
  return labels.every((label) => label.length <= 63 && HOST_LABEL.test(label));
}

/** Normalises an address: IPv6 to its canonical compressed lowercase form, hostnames to lowercase without a final dot. */
export function normaliseAddress(raw: string): string | undefined {
  const value = raw.trim();
  const family = isIP(value);
  if (family === 4) return value;
  // RFC 5952 text, an IPv4-mapped address with its dotted quad; a zone index is refused (see addressSchema).
  if (family === 6) return canonicalIPv6(value);
  const host = value.toLowerCase().replace(/\.$/, "");
  return host.length > 0 && isHostname(host) ? host : undefined;
}

export const addressSchema = z.string(required).transform((raw, ctx) => {
  if (raw.includes("%")) {
    // fe80::1%eth0: isIP accepts it, but a zone index names an interface of one host, meaningless to any other.
    ctx.addIssue({ code: "custom", message: "must not carry an IPv6 zone index ('%...'): it names an interface of one host" });
    return z.NEVER;
  }
  const address = normaliseAddress(raw);
  if (address === undefined) {
    ctx.addIssue({ code: "custom", message: "must be an IPv4 address, an IPv6 address or a hostname" });
    return z.NEVER;
  }
  return address;
});

const healthEndpointSchema = z
  .string()
  .max(LIMITS.healthEndpointLength, `must be at most ${LIMITS.healthEndpointLength} characters`)
  .refine((v) => v.startsWith("/") || /^https?:\/\/[^/]+/i.test(v), {
    message: "must be a path starting with '/' or an absolute http:// or https:// URL",
  });

const metadataRecord = z
  .record(
    z
      .string()
      .min(1, "metadata keys must not be empty")
      .max(LIMITS.metadataKeyLength, `metadata keys must be at most ${LIMITS.metadataKeyLength} characters`)
      .regex(/^[A-Za-z0-9._-]+$/, "metadata keys may contain only letters, digits, '.', '_' and '-'"),
    z.string().max(LIMITS.metadataValueLength, `metadata values must be at most ${LIMITS.metadataValueLength} characters`),
  )
  .refine((m) => Object.keys(m).length <= LIMITS.metadataPairs, {
    message: `at most ${LIMITS.metadataPairs} metadata pairs`,
  });

/** zod leaves a `__proto__` key out of a record without a word (assigning it would set the prototype): a key
 * JSON.parse gives as an own property would be lost. It is refused instead. */
const metadataSchema = z
  .custom<z.input<typeof metadataRecord>>((m) => typeof m !== "object" || m === null || !Object.hasOwn(m, "__proto__"), "metadata key __proto__ is reserved")
  .pipe(metadataRecord);

const intervalSchema = z
  .number()
  .int("must be a whole number of milliseconds")
  .min(LIMITS.minIntervalMs, `must be at least ${LIMITS.minIntervalMs} ms`)
  .max(LIMITS.maxIntervalMs, `must be at most ${LIMITS.maxIntervalMs} ms`);

/** Seconds, as DNS TTLs are: overrides the server's default TTL for this instance's records. */
const dnsTtlSchema = z.number().int("must be a whole number of seconds").min(0, "must be 0-86400 seconds").max(86_400, "must be 0-86400 seconds");

const portSchema = z.number(required).int("must be a whole number").min(1, "must be 1-65535").max(65535, "must be 1-65535");
/**
 * A tag: any printable text (Traefik's `traefik.http.routers.web.rule=Host(...)`, Fabio's `urlprefix-/path`). One
 * that is a DNS label, case aside, is stored lowercase and names a DNS subdomain (`prod.web.service`); the others
 * are kept as written and appear in the API only, never in DNS.
 */
export const tagSchema = z
  .string(required)
  .trim()
  .min(1, "must not be empty")
  .max(LIMITS.tagLength, `must be at most ${LIMITS.tagLength} characters`)
  .regex(/^[^\u0000-\u001f\u007f]+$/, "must be printable (no control characters)")
  .transform((tag) => (LABEL.test(tag.toLowerCase()) && tag.length <= 63 ? tag.toLowerCase() : tag));

/** Whether a tag can stand in a DNS name (a subdomain of the service). */
export function isDnsTag(tag: string): boolean {
  return tag.length <= 63 && LABEL.test(tag);
}

const tagsSchema = z.array(tagSchema).max(LIMITS.tags, `at most ${LIMITS.tags} tags`);
const deregisterAfterSchema = z.number().int().min(10_000, "must be at least 10000 ms").max(30 * 86_400_000, "must be at most 30 days");

/** What every check of `checks` has; the rest of a check is its kind's options, which src/health checks (each kind
 * has a strict schema there, so the model need not change for a new kind). */
const CHECK_DECLARED = {
  id: z.string().min(1, "must not be empty").max(64, "must be at most 64 characters").regex(/^[A-Za-z0-9._-]+$/, "may contain only letters, digits, '.', '_' and '-'"),
  name: z.string().max(128, "must be at most 128 characters").optional(),
  kind: z.string(required).regex(/^[a-z][a-z0-9-]{0,31}$/, "must be a check kind such as http, tcp, ttl, grpc, dns or exec"),
  interval: intervalSchema.optional(),
  /** ms; the server's --check-timeout otherwise (kept under 90% of the interval either way). */
  timeout: z.number().int("must be a whole number of milliseconds").min(100, "must be at least 100 ms").max(300_000, "must be at most 300000 ms").optional(),
};
/** What the server adds to each check: its status (after the thresholds), and its last run's output, duration and time. */
const CHECK_MANAGED = {
  status: healthStatusSchema,
  output: z.string(),
  durationMs: z.number().nonnegative(),
  checkedAt: z.iso.datetime(),
};
export const CHECK_MANAGED_FIELDS = Object.keys(CHECK_MANAGED) as (keyof typeof CHECK_MANAGED)[];
/** The fields every check has (the rest of a check are its kind's options). */
export const CHECK_DECLARED_FIELDS = Object.keys(CHECK_DECLARED) as (keyof typeof CHECK_DECLARED)[];
/** Check options whose values are secrets: sent by the check, never shown by the API (publicEntry). */
export const SECRET_CHECK_OPTIONS = ["headers"] as const;
export const REDACTED = "<redacted>";

/** A check as the entry holds it: its definition and, once it ran, its result. */
const entryCheckSchema = z.looseObject({ ...CHECK_DECLARED, ...z.object(CHECK_MANAGED).partial().shape });
const checksLimit = (n: number) => n <= LIMITS.checksPerInstance;
const entryChecksSchema = z.array(entryCheckSchema).min(1).refine((c) => checksLimit(c.length), `at most ${LIMITS.checksPerInstance} checks`);
/** A check as a client sends it: its result fields (a fetched entry sent back) are dropped; the id defaults to its position. */
const inputChecksSchema = z
  .array(
    z
      .looseObject({ ...CHECK_DECLARED, id: CHECK_DECLARED.id.optional() })
      .transform((c) => {
        const out: Record<string, unknown> = {};
        for (const key in c) if (!(CHECK_MANAGED_FIELDS as string[]).includes(key)) out[key] = c[key];
        return out as typeof c;
      }),
  )
  .min(1, "declare at least one check, or leave checks out")
  .refine((c) => checksLimit(c.length), `at most ${LIMITS.checksPerInstance} checks per instance`)
  .transform((checks) => checks.map((c, i) => ({ ...c, id: c.id ?? String(i + 1) })))
  .superRefine((checks, ctx) => {
    const seen = new Set<string>();
    checks.forEach((c, i) => {
      if (seen.has(c.id)) ctx.addIssue({ code: "custom", message: `check id ${c.id} is used twice (ids default to the check's position, 1-based)`, path: [i, "id"] });
      seen.add(c.id);
    });
  });

/** The fields a client declares: the same in what it sends and in what the registry holds. */
const DECLARED = {
  id: serviceIdSchema,
  name: dnsLabelSchema,
  version: versionSchema,
  nodeId: dnsLabelSchema,
  address: addressSchema,
  port: portSchema,
  healthEndpoint: healthEndpointSchema.optional(),
  metadata: metadataSchema,
  tags: tagsSchema,
  healthCheckInterval: intervalSchema,
  /** Heartbeats expected at least this often (ms): a TTL check. */
  ttl: intervalSchema.optional(),
  /** Check by connecting to address:port. */
  tcpCheck: z.boolean().optional(),
  /** Several checks, each of its own kind, interval and timeout (Consul's Checks): instead of the one-check fields. */
  checks: entryChecksSchema.optional(),
  /** Deregister after this long unhealthy (ms), like Consul's deregister_critical_service_after. */
  deregisterAfter: deregisterAfterSchema.optional(),
  /** Seconds; the DNS TTL of this instance's records instead of the server's default. */
  dnsTtl: dnsTtlSchema.optional(),
};

/** The fields the server manages: in every entry, never taken from a client. */
const MANAGED = {
  healthStatus: healthStatusSchema,
  /** RFC 3339. */
  registeredAt: z.iso.datetime(),
  /** RFC 3339, or null before the first check. */
  lastHealthCheck: z.iso.datetime().nullable(),
  /** Set while an operator has the instance in maintenance: hidden from DNS and from healthy queries. */
  maintenance: z.strictObject({ reason: z.string().max(512), since: z.iso.datetime() }).optional(),
  /** Who declared it besides the API: "file" (--services-dir), "docker" (a container's labels, --docker-socket) or
   * "self" (the server's own instances, --self-register). API writes to it then need force: the source would bring
   * its own version back. */
  source: z.enum(["file", "docker", "self"]).optional(),
};

/** The names of the declared fields, and of the server-managed ones (model/entry.ts works over these). */
export const DECLARED_FIELDS = Object.keys(DECLARED) as (keyof typeof DECLARED)[];
export const MANAGED_FIELDS = Object.keys(MANAGED) as (keyof typeof MANAGED)[];

/** The form the API returns and the store writes, as a schema: the tests hold both to it. */
export const serviceEntrySchema = z.strictObject({ ...DECLARED, ...MANAGED });

const acceptedAndIgnored = Object.fromEntries(MANAGED_FIELDS.map((key) => [key, z.unknown().optional()])) as { [K in keyof typeof MANAGED]: z.ZodOptional<z.ZodUnknown> };

/** What a client sends to register an instance. Server-managed fields are accepted (so a GET can be PUT back) and ignored. */
export const serviceInputSchema = z
  .strictObject({
    ...DECLARED,
    version: versionSchema.default("0.0.0"),
    nodeId: dnsLabelSchema.optional(),
    metadata: metadataSchema.default({}),
    tags: tagsSchema.default([]).transform((tags) => [...new Set(tags)]),
    healthCheckInterval: intervalSchema.default(LIMITS.defaultIntervalMs),
    checks: inputChecksSchema.optional(),
    ...acceptedAndIgnored,
  })
  .superRefine((s, ctx) => {
    // The issue sits at the second check declared, a field the input really has.
    const declared = (["healthEndpoint", "tcpCheck", "ttl"] as const).filter((k) => (k === "tcpCheck" ? s.tcpCheck === true : s[k] !== undefined));
    if (s.checks !== undefined && declared.length > 0) {
      ctx.addIssue({ code: "custom", message: `declare checks, or one of healthEndpoint, tcpCheck and ttl, not both (${declared[0]} is set too)`, path: ["checks"] });
      return;
    }
    if (declared.length <= 1) return;
    ctx.addIssue({ code: "custom", message: "declare at most one check: healthEndpoint (HTTP), tcpCheck (TCP) or ttl (heartbeats)", path: [declared[1]!] });
  });
export type ServiceInput = z.input<typeof serviceInputSchema>;
export type ParsedServiceInput = z.output<typeof serviceInputSchema>;

/** Readonly all the way down: entries are frozen, and a change makes a new one. */
type Immutable<T> = T extends readonly (infer U)[] ? readonly Immutable<U>[] : T extends object ? { readonly [K in keyof T]: Immutable<T[K]> } : T;

/** An instance as the registry holds it and the API returns it. */
export type ServiceEntry = Immutable<z.output<typeof serviceEntrySchema>>;

/** The one check an instance declares, "checks" for a list of them, "none" without. */
export type CheckKind = "http" | "tcp" | "ttl" | "checks" | "none";

export function checkKind(entry: Pick<ServiceEntry, "healthEndpoint" | "ttl" | "tcpCheck" | "checks">): CheckKind {
  if (entry.checks !== undefined) return "checks";
  if (entry.ttl !== undefined) return "ttl";
  if (entry.healthEndpoint !== undefined) return "http";
  if (entry.tcpCheck === true) return "tcp";
  return "none";
}

/** True when the instance declares a check (HTTP, TCP or TTL heartbeats). */
export function hasCheck(entry: Pick<ServiceEntry, "healthEndpoint" | "ttl" | "tcpCheck" | "checks">): boolean {
  return checkKind(entry) !== "none";
}

/** Whether DNS and healthy queries may return the instance: it is not in maintenance. */
export function inService(entry: Pick<ServiceEntry, "maintenance">): boolean {
  return entry.maintenance === undefined;
}

export function toIssues(error: z.ZodError, prefix: (string | number)[] = []): ErrorIssue[] {
  return error.issues.map((issue) => ({
    path: [...prefix, ...issue.path.map((p) => (typeof p === "symbol" ? String(p) : p))],
    // A bad record key nests its reasons; surface them instead of zod's generic "Invalid key in record".
    message: issue.code === "invalid_key" ? issue.issues.map((i) => i.message).join("; ") : issue.message,
  }));
}

/** Parses with a schema or throws an InvalidError whose message names every bad field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what: string, names: Record<string, string> = {}): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  // `names`: the caller's words for the top-level fields (a URL parameter for a query field, say).
  const issues = toIssues(result.error).map((i) => (typeof i.path[0] === "string" && names[i.path[0]] ? { ...i, path: [names[i.path[0]]!, ...i.path.slice(1)] } : i));
  const summary = issues.map((i) => (i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message)).join("; ");
  throw new InvalidError(`invalid ${what}: ${summary}`, issues);
}
