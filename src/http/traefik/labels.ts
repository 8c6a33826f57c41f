// Tags to Traefik labels and labels to configuration, the way Traefik reads them: consulcatalog's
// tagsToNeutralLabels, then traefik/paerser's label decoder (keys split on dots, names matched case-insensitively,
// unknown options an error) against spec.ts.
import { RAW, type ScalarSpec, type Spec, type StructSpec } from "./spec.js";

export type Obj = Record<string, unknown>;

/** A tag Traefik cannot use: the instance's Traefik configuration is skipped, as consulcatalog skips it. */
export class LabelError extends Error {}

/** `traefik.<key>=<value>` tags as labels; other tags (and prefixed ones without `=`) are not labels. */
export function tagsToLabels(tags: readonly string[]): Map<string, string> {
  const labels = new Map<string, string>();
  for (const tag of tags) {
    if (!tag.startsWith("traefik")) continue;
    const eq = tag.indexOf("=");
    if (eq === -1) continue;
    const key = tag.slice(0, eq);
    labels.set(`traefik.${key.startsWith("traefik.") ? key.slice(8) : key}`, tag.slice(eq + 1));
  }
  return labels;
}

interface LabelNode {
  name: string;
  value: string | undefined;
  children: LabelNode[];
}

/** paerser's DecodeToNode: the labels whose key starts (case-insensitively) with a filter, as a tree. */
function toTree(labels: Map<string, string>, filters: readonly string[]): LabelNode | undefined {
  const keys = [...labels.keys()].filter((k) => filters.some((f) => k.length >= f.length && k.slice(0, f.length).toLowerCase() === f.toLowerCase())).sort();
  if (keys.length === 0) return undefined;
  const root: LabelNode = { name: "traefik", value: undefined, children: [] };
  for (const key of keys) {
    const parts: string[] = [];
    for (const part of key.split(".").slice(1)) {
      if (part === "") throw new LabelError(`${key}: an empty name between dots`);
      if (part.startsWith("[")) throw new LabelError(`${key}: a name cannot start with '['`);
      const bracket = part.endsWith("]") ? part.indexOf("[") : -1;
      if (bracket > 0) parts.push(part.slice(0, bracket), part.slice(bracket));
      else parts.push(part);
    }
    let node = root;
    for (const part of parts) {
      // Names match case-insensitively, and the first spelling (in sorted order) is the one kept, as in paerser.
      let child = node.children.find((c) => c.name.toLowerCase() === part.toLowerCase());
      if (child === undefined) node.children.push((child = { name: part, value: undefined, children: [] }));
      node = child;
    }
    node.value = labels.get(key);
  }
  return root;
}

/** `traefik.enable` and `traefik.consulcatalog.*`: what decides whether the instance is served at all. */
export function decodeExtra(labels: Map<string, string>, exposedByDefault: boolean): { enable: boolean; connect: boolean; canary: boolean } {
  const extra = { enable: exposedByDefault, connect: false, canary: false };
  const tree = toTree(labels, ["traefik.consulcatalog.", "traefik.enable"]);
  for (const child of tree?.children ?? []) {
    if (child.name.toLowerCase() === "enable") extra.enable = parseBool(child.value ?? "", "traefik.enable");
    else if (child.name.toLowerCase() === "consulcatalog") {
      for (const option of child.children) {
        const name = option.name.toLowerCase();
        if (name !== "connect" && name !== "canary") throw new LabelError(`traefik.consulcatalog.${option.name}: Traefik has no such option (connect, canary)`);
        extra[name] = parseBool(option.value ?? "", `traefik.consulcatalog.${option.name}`);
      }
    }
  }
  return extra;
}

/** label.DecodeConfiguration: `traefik.http.*` and `traefik.tcp.*` as configuration; other roots are not config. */
export function decodeConfiguration(labels: Map<string, string>, spec: StructSpec): Obj {
  for (const key of labels.keys()) {
    const lower = key.toLowerCase();
    if (lower.startsWith("traefik.udp") || lower.startsWith("traefik.tls.stores.default")) {
      throw new LabelError(`${key}: UDP and TLS-store labels are not served by this provider (HTTP and TCP are)`);
    }
  }
  const tree = toTree(labels, ["traefik.http", "traefik.tcp"]);
  return tree === undefined ? {} : (decodeNode(spec, tree, "traefik", true) as Obj);
}

function decodeNode(spec: Spec, node: LabelNode, path: string, entry = false): unknown {
  switch (spec.kind) {
    case "raw":
      if (node.children.length === 0) return node.value ?? "";
      return Object.fromEntries(node.children.map((c) => [c.name, decodeNode(RAW, c, `${path}.${c.name}`)]));
    case "map":
      if (node.children.length === 0) throw standalone(path);
      return Object.fromEntries(node.children.map((c) => [c.name, decodeNode(spec.of, c, `${path}.${c.name}`, true)]));
    case "indexed": {
      if (node.children.length === 0) throw standalone(path);
      const items: [number, unknown][] = node.children.map((c) => {
        const m = /^\[(\d+)\]$/.exec(c.name);
        if (!m) throw new LabelError(`${path}.${c.name}: ${path} is a list, addressed as ${path}[0].<option>`);
        return [Number(m[1]), decodeNode(spec.of, c, `${path}${c.name}`, true)];
      });
      return items.sort((a, b) => a[0] - b[0]).map(([, v]) => v);
    }
    case "single": {
      const one = decodeNode(spec.of, node, path);
      return one === undefined ? undefined : [one];
    }
    case "struct":
      return decodeStruct(spec, node, path, entry);
    default:
      if (node.children.length > 0) throw new LabelError(`${path}.${node.children[0]!.name}: ${path} takes a value, not options`);
      return scalar(spec, node.value ?? "", path);
  }
}

function decodeStruct(spec: StructSpec, node: LabelNode, path: string, entry: boolean): Obj | undefined {
  if (node.children.length === 0 && !spec.allowEmpty && !entry) throw standalone(path);
  // allowEmpty: `tls=true` is an empty tls, `tls=false` (anything but true) none at all.
  if (spec.allowEmpty && node.value !== undefined && node.value !== "" && node.value.toLowerCase() !== "true") return undefined;
  const out: Obj = spec.defaults?.() ?? {};
  for (const child of node.children) {
    const field = fieldOf(spec, child.name);
    if (field === undefined) {
      const names = Object.entries(spec.fields).filter(([, f]) => !("noLabel" in f && f.noLabel)).map(([k, f]) => (f.kind === "single" ? f.label : k));
      throw new LabelError(`${path}.${child.name}: Traefik has no such option (${path} takes ${names.join(", ")})`);
    }
    const fieldSpec = spec.fields[field]!;
    if ("noLabel" in fieldSpec && fieldSpec.noLabel) continue;
    const value = decodeNode(fieldSpec, child, `${path}.${child.name}`);
    if (value !== undefined) out[field] = value;
  }
  return out;
}

function fieldOf(spec: StructSpec, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [key, field] of Object.entries(spec.fields)) if ((field.kind === "single" ? field.label : key).toLowerCase() === lower) return key;
  return undefined;
}

function standalone(path: string): LabelError {
  return new LabelError(`${path}: cannot stand alone, give one of its options (${path}.<option>=...)`);
}

function scalar(spec: ScalarSpec, value: string, path: string): unknown {
  switch (spec.kind) {
    case "string":
      return value;
    case "bool":
      return parseBool(value, path);
    case "int":
      // strconv.ParseInt(value, 10, 64); an empty value is the zero value, as paerser leaves it.
      if (value === "") return 0;
      if (!/^[+-]?\d{1,18}$/.test(value.trim())) throw new LabelError(`${path}=${value}: not an integer`);
      return Number(value.trim());
    case "list":
      // paerser splits on commas and trims each value.
      return value === "" ? undefined : value.split(",").map((v) => v.trim());
    case "duration": {
      if (value === "") return undefined;
      const ns = parseDuration(value);
      if (ns === undefined) throw new LabelError(`${path}=${value}: not a duration (10s, 1m30s, 250ms, or whole seconds)`);
      return formatDuration(ns);
    }
  }
}

/** strconv.ParseBool. */
function parseBool(value: string, path: string): boolean {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  throw new LabelError(`${path}=${value}: not a boolean (true or false)`);
}

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, "µs": 1e3, "μs": 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** paerser's Duration: whole seconds, or Go's time.ParseDuration syntax. In nanoseconds. */
export function parseDuration(value: string): number | undefined {
  if (/^[+-]?\d+$/.test(value)) return Number(value) * 1e9;
  if (value === "0") return 0;
  const m = /^([+-]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(value);
  if (!m) return undefined;
  let total = 0;
  for (const part of m[2]!.matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) total += Number(part[1]) * UNIT_NS[part[2]!]!;
  return Math.round(m[1] === "-" ? -total : total);
}

/** A duration Traefik parses back to the same value: the same length always reads the same, so equal compares equal. */
export function formatDuration(ns: number): string {
  if (ns % 1e9 === 0) return `${ns / 1e9}s`;
  if (ns % 1e6 === 0) return `${ns / 1e6}ms`;
  if (ns % 1e3 === 0) return `${ns / 1e3}us`;
  return `${ns}ns`;
}

/**
 * A decoded value as Traefik's JSON marshals it: fields in the spec's order, zero values left out (`omitempty`)
 * but for Go pointers, map keys sorted. Keys starting with `$` (build.ts's markers) are kept when `markers`.
 */
export function canonical(spec: Spec, value: unknown, markers: boolean): unknown {
  if (value === undefined) return undefined;
  switch (spec.kind) {
    case "raw":
      return value;
    case "map":
    case "indexed":
    case "single":
      if (spec.kind === "map") {
        const out: Obj = {};
        for (const key of Object.keys(value as Obj).sort()) out[key] = canonical(spec.of, (value as Obj)[key], markers) ?? {};
        return out;
      }
      return (value as unknown[]).map((v) => canonical(spec.of, v, markers) ?? {});
    case "struct": {
      const v = value as Obj;
      const out: Obj = {};
      for (const [key, field] of Object.entries(spec.fields)) {
        const c = canonical(field, v[key], markers);
        if (c === undefined) continue;
        const keepZero = "keepZero" in field && field.keepZero === true;
        if (!keepZero && (c === "" || c === 0 || c === false || (Array.isArray(c) && c.length === 0))) continue;
        out[key] = c;
      }
      if (markers) for (const key of Object.keys(v)) if (key.startsWith("$")) out[key] = v[key];
      return out;
    }
    default:
      return value;
  }
}
