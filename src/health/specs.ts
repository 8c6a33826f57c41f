// An entry's checks as the scheduler runs them: the one check of healthEndpoint / tcpCheck / ttl, or each of
// `checks`, with its kind, its parsed options, its interval and its timeout. Parsing the options with the kind's
// schema is also how a registration with a bad check is refused (with the path of the field at fault).
import { CHECK_DECLARED_FIELDS, CHECK_MANAGED_FIELDS, toIssues, type ServiceEntry } from "../model/index.js";
import type { CheckKind } from "./kind.js";
import { KINDS } from "./kinds/index.js";

export interface CheckSpec {
  /** Unique within the instance: the declared id, or its 1-based position ("1" for the one-check form). */
  readonly id: string;
  readonly kind: CheckKind;
  readonly options: unknown;
  readonly intervalMs: number;
  /** Declared timeout, ms; the server's --check-timeout otherwise. */
  readonly timeoutMs: number | undefined;
  /** Position in `checks`; undefined for the one-check form. */
  readonly index: number | undefined;
  /** How messages name the check's fields: "checks.0." for the list, "" for the one-check form. */
  readonly path: string;
  /** Legacy field names: the option `url` is `healthEndpoint` in the one-check form. */
  readonly fieldNames: Readonly<Record<string, string>>;
}

export type CheckInput = Pick<ServiceEntry, "address" | "port" | "healthEndpoint" | "tcpCheck" | "ttl" | "healthCheckInterval" | "checks">;

/** Fields every check has besides its kind's options, and the result fields the server adds. */
const COMMON: ReadonlySet<string> = new Set([...CHECK_DECLARED_FIELDS, ...CHECK_MANAGED_FIELDS]);

export type Compiled = { specs: CheckSpec[] } | { refusal: { field: string; message: string } };

/** The entry's checks, or why one cannot be run (an unknown kind, a bad option). */
export function compileChecks(entry: CheckInput): Compiled {
  const specs: CheckSpec[] = [];
  const one = (kind: string, options: Record<string, unknown>, fieldNames: Record<string, string>) => ({ id: "1", kind, options, interval: entry.healthCheckInterval, timeout: undefined, index: undefined, path: "", fieldNames });
  const declared =
    entry.checks?.map((c, index) => {
      const options: Record<string, unknown> = {};
      for (const key in c) if (!COMMON.has(key)) options[key] = (c as unknown as Record<string, unknown>)[key];
      return { id: c.id, kind: c.kind, options, interval: c.interval ?? entry.healthCheckInterval, timeout: c.timeout, index, path: `checks.${index}.`, fieldNames: {} as Record<string, string> };
    }) ??
    (entry.ttl !== undefined
      ? [one("ttl", { ttl: entry.ttl }, { ttl: "ttl" })]
      : entry.healthEndpoint !== undefined
        ? [one("http", { url: entry.healthEndpoint }, { url: "healthEndpoint" })]
        : entry.tcpCheck === true
          ? [one("tcp", {}, { address: "tcpCheck" })]
          : []);
  for (const d of declared) {
    const kind = KINDS.get(d.kind);
    if (kind === undefined) return { refusal: { field: `${d.path}kind`, message: `unknown check kind "${d.kind}" (${[...KINDS.keys()].join(", ")})` } };
    const parsed = kind.options.safeParse(d.options);
    if (!parsed.success) {
      const issue = toIssues(parsed.error)[0]!;
      const head = String(issue.path[0] ?? "");
      const field = [d.fieldNames[head] ?? head, ...issue.path.slice(1)].filter((p) => p !== "").join(".");
      return { refusal: { field: `${d.path}${field}`.replace(/\.$/, "") || "checks", message: issue.message } };
    }
    specs.push({ id: d.id, kind, options: parsed.data, intervalMs: d.interval, timeoutMs: d.timeout, index: d.index, path: d.path, fieldNames: d.fieldNames });
  }
  return { specs };
}

/** A check's field as a message names it: "checks.1.url", or "healthEndpoint" in the one-check form. */
export function fieldOf(spec: CheckSpec, option: string): string {
  return `${spec.path}${spec.fieldNames[option] ?? option}`;
}
