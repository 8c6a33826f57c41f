// Static services declared in files (Consul's agent `services` config): a homelab's NAS, router and printer.
// Loading checks every file against the API's schema and reports every problem at once, each at its file:line.
import { readdir, readFile, stat } from "node:fs/promises";
import { extname, join } from "node:path";
import type { z } from "zod";
import { errnoOf, errorText } from "../lib/errno.js";
import { InvalidError } from "../lib/errors.js";
import { fileParsers, lineColumn } from "./parse.js";
import { serviceInputSchema, withoutManaged, type ParsedServiceInput } from "../model/index.js";

/** Where a service was declared: the file and its place inside it ("" for a file holding one object). */
export interface ServiceSource {
  readonly file: string;
  /** "services[1]", "[0]" or "". */
  readonly path: string;
}

export interface ServiceFileSet {
  /** Every service, in file name order and then in the order each file lists them; ids are unique. */
  readonly services: readonly ParsedServiceInput[];
  /** Every file read (as `join(dir, name)`), in name order, including files that declare no service. */
  readonly files: readonly string[];
  /** Where each service (by id) was declared. */
  readonly sources: ReadonlyMap<string, ServiceSource>;
  /** The directory does not exist (read with `missingOk`): no services. */
  readonly missing?: true;
}

export interface ServiceFileProblem {
  readonly file: string;
  /** 1-based, for syntax errors only. */
  readonly line?: number;
  readonly column?: number;
  /** The field, as in "services[1].port"; "" for the file as a whole. */
  readonly path: string;
  readonly reason: string;
}

/**
 * One or more service files are wrong. The message has one line per problem, each starting with the file:
 * `dir/nas.json: services[1].port: must be 1-65535`, or `dir/nas.json:3:9: invalid JSON: ...` for syntax.
 */
export class ServiceFileError extends InvalidError {
  readonly problems: readonly ServiceFileProblem[];
  constructor(problems: readonly ServiceFileProblem[]) {
    super(problems.map(formatProblem).join("\n"), undefined, { problems });
    this.name = "ServiceFileError";
    this.problems = problems;
  }
}

export function formatProblem(p: ServiceFileProblem): string {
  const where = p.line !== undefined ? `${p.file}:${p.line}:${p.column ?? 1}` : p.file;
  return p.path ? `${where}: ${p.path}: ${p.reason}` : `${where}: ${p.reason}`;
}



/**
 * Reads every service file in `dir` (`*.json`, `*.yaml`, `*.yml`; not starting with "."), in name order. A file
 * holds one service object, an array of them, or `{"services": [...]}`,
 * each checked by the API's schema, and every service needs an `id` unique across all files. A missing directory
 * holds no services when `missingOk` (at startup: not created yet); else it is an error (on a reload: a directory
 * moved or unmounted must not deregister every file's services). Every problem in every file is collected into
 * one ServiceFileError.
 */
export async function loadServiceFiles(dir: string, { missingOk = true }: { missingOk?: boolean } = {}): Promise<ServiceFileSet> {
  const byExtension = await fileParsers();
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (err) {
    if (errnoOf(err) === "ENOENT" && missingOk) return { services: [], files: [], sources: new Map(), missing: true };
    if (errnoOf(err) === "ENOENT") {
      throw new ServiceFileError([{ file: dir, path: "", reason: "the services directory does not exist (any more); to remove every file's services, leave it empty" }]);
    }
    throw new ServiceFileError([{ file: dir, path: "", reason: `cannot read the services directory: ${errorText(err)}` }]);
  }

  const problems: ServiceFileProblem[] = [];
  const services: ParsedServiceInput[] = [];
  const files: string[] = [];
  const sources = new Map<string, ServiceSource>();

  for (const name of names) {
    const parse = byExtension.get(extname(name).toLowerCase());
    if (parse === undefined || name.startsWith(".")) continue;
    const file = join(dir, name);
    const info = await stat(file).catch(() => undefined);
    if (info === undefined || !info.isFile()) continue;
    files.push(file);

    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      problems.push({ file, path: "", reason: `cannot read: ${errorText(err)}` });
      continue;
    }
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a BOM some editors write

    const parsed = parse(text);
    if (!parsed.ok) {
      const at = parsed.offset === undefined ? {} : lineColumn(text, parsed.offset);
      problems.push({ file, ...at, path: "", reason: parsed.reason });
      continue;
    }

    for (const { raw, path } of entriesOf(parsed.value, file, problems)) {
      const result = serviceInputSchema.safeParse(raw);
      if (!result.success) {
        problems.push(...issuesOf(result.error, file, path));
        continue;
      }
      const input = cleanInput(result.data);
      const first = sources.get(input.id);
      if (first !== undefined) {
        const there = first.path ? `${first.file} at ${first.path}` : first.file;
        problems.push({ file, path: joinPath(path, "id"), reason: `id "${input.id}" is already declared in ${there}` });
        continue;
      }
      sources.set(input.id, { file, path });
      services.push(input);
    }
  }

  if (problems.length > 0) throw new ServiceFileError(problems);
  return { services, files, sources };
}

/** The service objects a file's top-level value holds, each with its path; shape problems go to `problems`. */
function entriesOf(value: unknown, file: string, problems: ServiceFileProblem[]): { raw: unknown; path: string }[] {
  const SHAPE = 'must hold a service object, an array of services, or {"services": [...]}';
  const list = (items: unknown[], prefix: string) => {
    const out: { raw: unknown; path: string }[] = [];
    items.forEach((raw, i) => {
      const path = `${prefix}[${i}]`;
      if (isPlainObject(raw)) out.push({ raw, path });
      else problems.push({ file, path, reason: `must be a service object, not ${describe(raw)}` });
    });
    return out;
  };
  if (Array.isArray(value)) return list(value, "");
  if (!isPlainObject(value)) {
    problems.push({ file, path: "", reason: `${SHAPE}, not ${describe(value)}` });
    return [];
  }
  // A service has no "services" field (the schema is strict), so its presence marks the wrapper form.
  if (!("services" in value)) return [{ raw: value, path: "" }];
  for (const key of Object.keys(value)) {
    if (key !== "services") problems.push({ file, path: joinPath("", key), reason: 'unknown field (a file with "services" holds only that list)' });
  }
  if (!Array.isArray(value.services)) {
    problems.push({ file, path: "services", reason: `must be an array of services, not ${describe(value.services)}` });
    return [];
  }
  // The services are checked even beside an unknown field, so one run reports everything.
  return list(value.services, "services");
}

function issuesOf(error: z.ZodError, file: string, base: string): ServiceFileProblem[] {
  const out: ServiceFileProblem[] = [];
  for (const issue of error.issues) {
    const path = issue.path.reduce<string>((p, seg) => joinPath(p, typeof seg === "symbol" ? String(seg) : seg), base);
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push({ file, path: joinPath(path, key), reason: "unknown field" });
    } else if (issue.code === "invalid_key") {
      // A bad record key nests its reasons; surface them instead of zod's generic "Invalid key in record".
      out.push({ file, path, reason: issue.issues.map((i) => i.message).join("; ") });
    } else {
      out.push({ file, path, reason: issue.message });
    }
  }
  return out;
}

function cleanInput(input: ParsedServiceInput): ParsedServiceInput {
  const clean = withoutManaged({ ...input, metadata: Object.freeze({ ...input.metadata }), tags: Object.freeze([...input.tags]) as string[] });
  return Object.freeze(clean);
}

/** "services[1]" + "port" -> "services[1].port"; numbers become [i]; keys that are not plain names are quoted. */
function joinPath(path: string, seg: string | number): string {
  if (typeof seg === "number") return `${path}[${seg}]`;
  if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) return path ? `${path}.${seg}` : seg;
  return `${path}[${JSON.stringify(seg)}]`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

