// The one module that knows an entry's fields: what registering an input makes, whether two entries declare the
// same check, whether an entry is what a file declares, and whether stored JSON looks like an entry. It works over
// the schemas' field lists, so a new field is declared once, in model/schema.ts (plus CHECK_FIELDS if it changes
// what a check probes).
import { isDeepStrictEqual } from "node:util";
import { DECLARED_FIELDS, hasCheck, MANAGED_FIELDS, type ParsedServiceInput, type ServiceEntry } from "./schema.js";

/** The fields that define an instance's check: while they stay the same, its health carries over a re-registration. */
const CHECK_FIELDS = ["address", "port", "healthEndpoint", "tcpCheck", "ttl"] as const satisfies readonly (keyof ServiceEntry)[];

type Declared = Pick<ServiceEntry, (typeof DECLARED_FIELDS)[number]>;

/**
 * The declared fields of an entry or an input, as the entry holds them: unset fields and false flags left out
 * (`tcpCheck: false` is no TCP check), metadata and tags copied.
 */
function declaredOf(source: Partial<Record<keyof Declared, unknown>>, nodeId: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of DECLARED_FIELDS) {
    const value = key === "nodeId" ? (source.nodeId ?? nodeId) : source[key];
    if (value === undefined || value === false) continue;
    out[key] = key === "metadata" ? { ...(value as object) } : key === "tags" ? [...(value as string[])] : value;
  }
  return out;
}

/** A source of instances besides the API (schema.ts: `source`). */
export type EntrySource = "file" | "docker";

export interface NewEntryContext {
  /** The node id given to an input without one. */
  readonly nodeId: string;
  /** RFC 3339: the registration time. */
  readonly now: string;
  /** The entry this registration replaces, if any. */
  readonly before: ServiceEntry | undefined;
  readonly source?: EntrySource | undefined;
}

/** The entry registering an input makes. Health carries over from `before` when the check is the same. */
export function newEntry(input: ParsedServiceInput, { nodeId, now, before, source }: NewEntryContext): ServiceEntry {
  // Fields added to the one object declaredOf made: spreading it into a literal made entries twice the size
  // (793 against 385 bytes each, measured: 100k instances took 345 MB of RSS instead of 235).
  const entry = declaredOf(input, nodeId);
  entry.healthStatus = hasCheck(input) ? "unknown" : "healthy";
  entry.registeredAt = now;
  entry.lastHealthCheck = null;
  // An operator's maintenance outlives a re-registration (a deploy script must not end it).
  if (before?.maintenance !== undefined) entry.maintenance = before.maintenance;
  if (source !== undefined) entry.source = source;
  const made = freezeEntry(entry as unknown as ServiceEntry);
  return before !== undefined && sameCheck(before, made) ? carryHealth(made, before) : made;
}

/** Same check definition: the health status of the old entry still describes the new one. */
export function sameCheck(a: ServiceEntry, b: ServiceEntry): boolean {
  const flag = (v: unknown) => (v === false ? undefined : v);
  return hasCheck(a) && hasCheck(b) && CHECK_FIELDS.every((key) => flag(a[key]) === flag(b[key]));
}

/** `entry` with the health (status and last check time) of `from`. */
export function carryHealth(entry: ServiceEntry, from: ServiceEntry): ServiceEntry {
  if (entry.healthStatus === from.healthStatus && entry.lastHealthCheck === from.lastHealthCheck) return entry;
  return freezeEntry({ ...entry, healthStatus: from.healthStatus, lastHealthCheck: from.lastHealthCheck });
}

/** Freezes an entry and its metadata and tags: entries are shared by the registry, caches and DNS answers. */
export function freezeEntry(entry: ServiceEntry): ServiceEntry {
  Object.freeze(entry.metadata);
  Object.freeze(entry.tags);
  return Object.freeze(entry);
}

/**
 * The registered entry is what registering the input would make (ignoring health, times and maintenance). An
 * input without nodeId matches any node: the registry fills in its own.
 */
export function entryMatches(entry: ServiceEntry, input: ParsedServiceInput): boolean {
  return isDeepStrictEqual(declaredOf(entry, entry.nodeId), declaredOf(input, entry.nodeId));
}

/** The input without the server-managed fields it may carry (a fetched entry sent back): never part of a change. */
export function withoutManaged(input: ParsedServiceInput): ParsedServiceInput {
  const clean: ParsedServiceInput = { ...input };
  for (const key of MANAGED_FIELDS) delete clean[key];
  return clean;
}

/**
 * An entry from a CRC-verified store line: the CRC proves these are the bytes we wrote, and we write only entries
 * the schema accepted, so this shape check is for a file written by something else (a newer version, a hand).
 * The whole schema took a third of a 100k-entry restart.
 */
export function storedEntry(value: unknown): ServiceEntry | undefined {
  const e = value as Partial<Record<keyof ServiceEntry, unknown>> | undefined;
  if (typeof e !== "object" || e === null || typeof e.id !== "string" || typeof e.name !== "string" || typeof e.address !== "string") return undefined;
  if (typeof e.port !== "number" || typeof e.nodeId !== "string" || !Array.isArray(e.tags) || typeof e.metadata !== "object") return undefined;
  return e as ServiceEntry;
}
