// Static services declared in files (Consul's agent `services` config): a homelab's NAS, router and printer.
// Loading checks every file against the API's schema and reports every problem at once; diffing plans a reload.
import { readdir, readFile, stat } from "node:fs/promises";
import { extname, join } from "node:path";
import type { z } from "zod";
import { errnoOf, errorText } from "../lib/errno.js";
import { InvalidError } from "../lib/errors.js";
import { serviceInputSchema, type ParsedServiceInput } from "../model/index.js";

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


// ---------------------------------------------------------------------------------------------------------
// Parsers by file extension

type ParseResult = { ok: true; value: unknown } | { ok: false; reason: string; offset: number | undefined };
type Parser = (text: string) => ParseResult;

const JSON_PARSERS: ReadonlyMap<string, Parser> = new Map([[".json", parseJson]]);

/** The `yaml` package's parseDocument, as much of it as we use (the package is optional). */
interface YamlModule {
  parseDocument(
    text: string,
    opts: { prettyErrors: boolean },
  ): { errors: { message: string; pos: [number, number] }[]; toJS(): unknown };
}

let parsers: Promise<ReadonlyMap<string, Parser>> | undefined;

/** JSON always; YAML too when the optional `yaml` package is installed. */
function fileParsers(): Promise<ReadonlyMap<string, Parser>> {
  parsers ??= (async () => {
    const yaml = await importOptional<YamlModule>("yaml");
    if (yaml === undefined) return JSON_PARSERS;
    const parseYaml = yamlParser(yaml);
    return new Map([...JSON_PARSERS, [".yaml", parseYaml], [".yml", parseYaml]]);
  })();
  return parsers;
}

/** The file extensions loadServiceFiles reads, e.g. [".json"] or [".json", ".yaml", ".yml"]. */
export async function serviceFileExtensions(): Promise<string[]> {
  return [...(await fileParsers()).keys()];
}

async function importOptional<T>(specifier: string): Promise<T | undefined> {
  try {
    // A variable specifier: tsc must not insist on the package being installed.
    return (await import(specifier)) as T;
  } catch (err) {
    // Only "not installed" means "not supported": a broken install should say so.
    if (errnoOf(err) === "ERR_MODULE_NOT_FOUND") return undefined;
    throw err;
  }
}

function yamlParser(yaml: YamlModule): Parser {
  return (text) => {
    // YAML 1.2 core schema (the package's default): `no` stays a string, duplicate keys are errors.
    const doc = yaml.parseDocument(text, { prettyErrors: false });
    const [error] = doc.errors;
    if (error !== undefined) return { ok: false, reason: `invalid YAML: ${oneLine(error.message)}`, offset: error.pos[0] };
    try {
      return { ok: true, value: doc.toJS() };
    } catch (err) {
      // e.g. "Excessive alias count": aliases that would expand the document beyond reason.
      return { ok: false, reason: `invalid YAML: ${oneLine(err instanceof Error ? err.message : String(err))}`, offset: undefined };
    }
  };
}

function parseJson(text: string): ParseResult {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // V8 names the offset ("... in JSON at position 42", Node 22 adds "(line 3 column 7)"), except for
    // "Unexpected token 'x', "<text>" is not valid JSON": then we find the offset ourselves.
    const at = /\bat position (\d+)/.exec(message);
    let offset = at ? Number(at[1]) : jsonErrorOffset(text);
    // An error at the end of the input (only blanks left) is shown just after the last character, not on a line
    // past the end of the file.
    if (offset !== undefined && /^[ \t\n\r]*$/.test(text.slice(offset))) offset = text.replace(/[ \t\n\r]+$/, "").length;
    const reason = message
      .replace(/ (in JSON )?at position \d+.*$/s, "")
      .replace(/^(Unexpected token '.'), .*is not valid JSON$/su, "$1");
    return { ok: false, reason: `invalid JSON: ${oneLine(reason)}`, offset };
  }
}

/** The offset of the first syntax error in text, or undefined if there is none (or it nests too deep to say). */
export function jsonErrorOffset(text: string): number | undefined {
  let i = 0;
  const ws = () => {
    while (i < text.length && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r")) i++;
  };
  const expect = (ch: string) => {
    ws();
    if (text[i] !== ch) throw new SyntaxAt(i);
    i++;
  };
  const string = () => {
    if (text[i] !== '"') throw new SyntaxAt(i);
    i++;
    for (;;) {
      const c = text.charCodeAt(i);
      if (Number.isNaN(c) || c < 0x20) throw new SyntaxAt(i);
      if (c === 0x22) return void i++;
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === "u") {
          for (let k = i + 2; k < i + 6; k++) if (!/[0-9a-fA-F]/.test(text[k] ?? "")) throw new SyntaxAt(k);
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else throw new SyntaxAt(i + 1);
      } else i++;
    }
  };
  const digits = () => {
    if (!isDigit(text[i])) throw new SyntaxAt(i);
    while (isDigit(text[i])) i++;
  };
  const number = () => {
    if (text[i] === "-") i++;
    if (text[i] === "0") i++;
    else digits();
    if (text[i] === ".") {
      i++;
      digits();
    }
    if (text[i] === "e" || text[i] === "E") {
      i++;
      if (text[i] === "+" || text[i] === "-") i++;
      digits();
    }
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{" || c === "[") {
      const close = c === "{" ? "}" : "]";
      i++;
      ws();
      if (text[i] === close) return void i++;
      for (;;) {
        if (c === "{") {
          ws();
          string();
          expect(":");
        }
        value();
        ws();
        if (text[i] === ",") i++;
        else return expect(close);
      }
    }
    if (c === '"') return string();
    if (c === "-" || isDigit(c)) return number();
    for (const literal of ["true", "false", "null"]) {
      if (c !== literal[0]) continue;
      let k = 0;
      while (k < literal.length && text[i + k] === literal[k]) k++;
      if (k === literal.length) return void (i += k);
      throw new SyntaxAt(i + k);
    }
    throw new SyntaxAt(i);
  };
  try {
    value();
    ws();
    return i < text.length ? i : undefined;
  } catch (err) {
    if (err instanceof SyntaxAt) return err.offset;
    return undefined; // RangeError: nested deeper than the stack allows
  }
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= "0" && c <= "9";
}

class SyntaxAt {
  constructor(readonly offset: number) {}
}

/** 1-based line and column (in UTF-16 units) of an offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lastNewline = before.lastIndexOf("\n");
  let line = 1;
  for (let k = before.indexOf("\n"); k >= 0; k = before.indexOf("\n", k + 1)) line++;
  return { line, column: before.length - lastNewline };
}

/** Control characters (a newline token in a V8 message) would break one-problem-per-line messages. */
function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

// ---------------------------------------------------------------------------------------------------------
// Loading

/** Fields the API accepts so a fetched entry can be sent back, and ignores: dropped so they never count as changes. */
const SERVER_MANAGED = ["healthStatus", "registeredAt", "lastHealthCheck", "maintenance"] as const;

/**
 * Reads every service file in `dir` (`*.json`, and `*.yaml`/`*.yml` when the `yaml` package is installed; not
 * starting with "."), in name order. A file holds one service object, an array of them, or `{"services": [...]}`,
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
  const clean: ParsedServiceInput = { ...input, metadata: Object.freeze({ ...input.metadata }), tags: Object.freeze([...input.tags]) as string[] };
  for (const key of SERVER_MANAGED) delete clean[key];
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

