// The one module that knows an entry's fields: what registering an input makes, whether two entries declare the
// same check, whether an entry is what a file declares, and whether stored JSON looks like an entry. It works over
// the schemas' field lists, so a new field is declared once, in model/schema.ts (plus CHECK_FIELDS if it changes
// what a check probes).
import { isDeepStrictEqual } from "node:util";
import { CHECK_MANAGED_FIELDS, DECLARED_FIELDS, hasCheck, MANAGED_FIELDS, REDACTED, SECRET_CHECK_OPTIONS, type ParsedServiceInput, type ServiceEntry } from "./schema.js";

/** The fields that define an instance's checks: while they stay the same, its health carries over a re-registration. */
const CHECK_FIELDS = ["address", "port", "healthEndpoint", "tcpCheck", "ttl", "checks"] as const satisfies readonly (keyof ServiceEntry)[];

type EntryCheck = NonNullable<ServiceEntry["checks"]>[number];
type CheckResult = Partial<Pick<EntryCheck, (typeof CHECK_MANAGED_FIELDS)[number]>>;

/** A check's definition: its result fields left out. */
function checkDefinition(check: EntryCheck): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key in check) if (!(CHECK_MANAGED_FIELDS as string[]).includes(key)) out[key] = (check as Record<string, unknown>)[key];
  return out;
}

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
    out[key] = key === "metadata" ? { ...(value as object) } : key === "tags" ? [...(value as string[])] : key === "checks" ? (value as EntryCheck[]).map(checkDefinition) : value;
  }
  return out;
}

/** A source of instances besides the API (schema.ts: `source`). */
export type EntrySource = "file" | "docker" | "self";

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
  if (entry.checks !== undefined && before?.checks !== undefined) entry.checks = keepSecrets(entry.checks as EntryCheck[], before.checks);
  const made = freezeEntry(entry as unknown as ServiceEntry);
  return before !== undefined && sameCheck(before, made) ? carryHealth(made, before) : made;
}

/** Same check definition: the health status of the old entry still describes the new one. */
export function sameCheck(a: ServiceEntry, b: ServiceEntry): boolean {
  const flag = (v: unknown) => (v === false ? undefined : v);
  const same = (key: (typeof CHECK_FIELDS)[number]) =>
    key === "checks" ? isDeepStrictEqual(a.checks?.map(checkDefinition), b.checks?.map(checkDefinition)) : flag(a[key]) === flag(b[key]);
  return hasCheck(a) && hasCheck(b) && CHECK_FIELDS.every(same);
}

/** `entry` with the health (status, last check time, each check's result) of `from`. */
export function carryHealth(entry: ServiceEntry, from: ServiceEntry): ServiceEntry {
  const carried = entry.checks && from.checks ? withResults(entry, (check) => resultOf(from.checks!.find((c) => c.id === check.id))) : entry.checks;
  const checks = isDeepStrictEqual(carried, entry.checks) ? entry.checks : carried;
  if (entry.healthStatus === from.healthStatus && entry.lastHealthCheck === from.lastHealthCheck && checks === entry.checks) return entry;
  return freezeEntry({ ...entry, healthStatus: from.healthStatus, lastHealthCheck: from.lastHealthCheck, ...(checks ? { checks } : {}) });
}

function resultOf(check: EntryCheck | undefined): CheckResult {
  const out: Record<string, unknown> = {};
  if (check !== undefined) for (const key of CHECK_MANAGED_FIELDS) if (check[key] !== undefined) out[key] = check[key];
  return out as CheckResult;
}

/** The entry's checks, each with the result `result` gives it (its definition unchanged). */
export function withResults(entry: ServiceEntry, result: (check: EntryCheck, index: number) => CheckResult): ServiceEntry["checks"] {
  return entry.checks?.map((check, i) => ({ ...checkDefinition(check), ...result(check, i) }) as EntryCheck);
}

/** A restored entry: its health unknown (and its checks' results gone) until it is checked again. */
export function uncheckedEntry(entry: ServiceEntry): ServiceEntry {
  return { ...entry, healthStatus: "unknown", ...(entry.checks ? { checks: withResults(entry, () => ({})) } : {}) };
}

/**
 * A header value sent back as REDACTED (a fetched entry PUT back) keeps the value the instance had: the API never
 * shows it, so a client cannot send it back.
 */
function keepSecrets(checks: EntryCheck[], before: NonNullable<ServiceEntry["checks"]>): EntryCheck[] {
  return checks.map((check) => {
    let out = check;
    for (const option of SECRET_CHECK_OPTIONS) {
      const values = check[option] as Record<string, string> | undefined;
      if (values === undefined || !Object.values(values).includes(REDACTED)) continue;
      const old = before.find((c) => c.id === check.id)?.[option] as Record<string, string> | undefined;
      const kept = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v === REDACTED && old?.[k] !== undefined ? old[k] : v]));
      out = { ...out, [option]: kept };
    }
    return out;
  });
}

const publicCopies = new WeakMap<ServiceEntry, ServiceEntry>();
/**
 * The entry as the API shows it: the values of secret check options (headers: a bearer token) replaced by
 * REDACTED. The same object when there are none, so the query path pays one property read per entry.
 */
export function publicEntry(entry: ServiceEntry): ServiceEntry {
  if (entry.checks === undefined || !entry.checks.some((c) => SECRET_CHECK_OPTIONS.some((o) => c[o] !== undefined))) return entry;
  let copy = publicCopies.get(entry);
  if (copy === undefined) {
    const checks = entry.checks.map((c) => {
      const out: Record<string, unknown> = { ...c };
      for (const o of SECRET_CHECK_OPTIONS) if (c[o] !== undefined) out[o] = Object.fromEntries(Object.keys(c[o] as object).map((k) => [k, REDACTED]));
      return out as EntryCheck;
    });
    copy = freezeEntry({ ...entry, checks });
    publicCopies.set(entry, copy);
  }
  return copy;
}

/** Freezes an entry and its metadata, tags and checks: entries are shared by the registry, caches and DNS answers. */
export function freezeEntry(entry: ServiceEntry): ServiceEntry {
  Object.freeze(entry.metadata);
  Object.freeze(entry.tags);
  if (entry.checks !== undefined) {
    for (const check of entry.checks) Object.freeze(check);
    Object.freeze(entry.checks);
  }
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
