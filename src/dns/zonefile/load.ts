// Loading zones, at start and on SIGHUP: the *.zone files of some directories, read with $ORIGIN, $TTL and $INCLUDE
// and checked as zones (one SOA, a CNAME alone at its name, no loops, nothing under the registry's names).
import { readdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, isAbsolute, join } from "node:path";
import { errnoOf } from "../../lib/errno.js";
import { TYPE_NAMES, type SoaRr, type ZoneRr } from "../records.js";
import { TYPE } from "../wire.js";
import { isSuffixKey, StaticZone, Zones, type Node, type StaticZones } from "./lookup.js";
import { parseName, parseRdata, parseTtl, TTL_RE, TYPES, UNSUPPORTED } from "./rdata.js";
import { tokenize, ZoneError, type Entry } from "./tokens.js";

const ZONE_SUFFIX = ".zone";
const DEFAULT_TTL = 3600;
const MAX_INCLUDE_DEPTH = 8;
const RESERVED = ["service", "node", "addr"] as const;
const CLASSES = new Set(["IN", "CH", "CS", "HS", "NONE", "ANY"]);

export interface LoadOptions {
  /** TTL of records that give none when the file has no $TTL. Seconds; 3600 when unset. */
  defaultTtl?: number;
  /**
   * The server's own domain (e.g. "home.arpa"). When set, no file may define a name at or under
   * service.<domain>, node.<domain> or addr.<domain> (nor service/node.<cluster>.<domain>): the registry answers
   * there.
   */
  domain?: string;
  /** The cluster label the registry also accepts after service/node (Config.clusterName). */
  cluster?: string;
}

/**
 * Reads every `*.zone` file (not starting with ".") in each directory, in name order. A missing directory holds
 * no zones; anything wrong in a file throws a ZoneError naming file and line.
 */
export async function loadZones(dirs: readonly string[], opts: LoadOptions = {}): Promise<StaticZones> {
  const loader = new Loader(opts);
  for (const dir of dirs) {
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch (err) {
      if (errnoOf(err) === "ENOENT") continue;
      throw new ZoneError(dir, 0, `cannot read the zones directory: ${errorText(err)}`);
    }
    for (const name of names) {
      if (!name.endsWith(ZONE_SUFFIX) || name.startsWith(".")) continue;
      const file = join(dir, name);
      const info = await stat(file).catch(() => undefined);
      if (info === undefined || !info.isFile()) continue;
      await loader.loadFile(file);
    }
  }
  return loader.finish();
}

interface Placed {
  readonly rr: ZoneRr;
  readonly file: string;
  readonly line: number;
}

interface FileState {
  origin: string[] | undefined;
  ttl: number | undefined;
  lastOwner: string[] | undefined;
}

class Loader {
  private readonly zones: StaticZone[] = [];
  private readonly files: string[] = [];
  /** Where each zone's names were first defined, for cross-zone checks. */
  private readonly firstSeen = new Map<StaticZone, Map<string, { file: string; line: number }>>();
  private readonly defaultTtl: number;
  private readonly reserved: string[][];

  constructor(opts: LoadOptions) {
    this.defaultTtl = opts.defaultTtl ?? DEFAULT_TTL;
    const domain = opts.domain?.toLowerCase().replace(/\.$/, "");
    this.reserved = [];
    if (domain) {
      const d = domain.split(".");
      for (const r of RESERVED) this.reserved.push([r, ...d]);
      const cluster = opts.cluster?.toLowerCase();
      if (cluster) for (const r of ["service", "node"]) this.reserved.push([r, cluster, ...d]);
    }
  }

  async loadFile(file: string): Promise<void> {
    const base = basename(file).slice(0, -ZONE_SUFFIX.length);
    const state: FileState = { origin: originOfFileName(base), ttl: undefined, lastOwner: undefined };
    const records: Placed[] = [];
    await this.parseFile(file, state, records, [file]);
    this.zones.push(this.build(file, records));
  }

  private async parseFile(file: string, state: FileState, out: Placed[], stack: string[], from?: { file: string; line: number }): Promise<void> {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      if (from) throw new ZoneError(from.file, from.line, `cannot read $INCLUDE file "${file}": ${errorText(err)}`);
      throw new ZoneError(file, 0, `cannot read: ${errorText(err)}`);
    }
    this.files.push(file);
    for (const entry of tokenize(text, file)) {
      const first = entry.tokens[0]!;
      if (!entry.blankOwner && first.text.startsWith("$") && !first.quoted) {
        await this.directive(file, entry, state, out, stack);
        continue;
      }
      out.push({ rr: this.record(file, entry, state), file, line: entry.line });
    }
  }

  private async directive(file: string, entry: Entry, state: FileState, out: Placed[], stack: string[]): Promise<void> {
    const fail = (reason: string, line = entry.line) => new ZoneError(file, line, reason);
    const [head, ...args] = entry.tokens;
    const name = head!.text.toUpperCase();
    switch (name) {
      case "$ORIGIN": {
        if (args.length !== 1) throw fail("$ORIGIN takes one domain name");
        state.origin = parseName(args[0]!, state.origin, file);
        return;
      }
      case "$TTL": {
        if (args.length !== 1) throw fail("$TTL takes one TTL");
        state.ttl = parseTtl(args[0]!, file);
        return;
      }
      case "$INCLUDE": {
        if (args.length < 1 || args.length > 2) throw fail("$INCLUDE takes a file name and an optional origin");
        const target = args[0]!.text;
        const path = isAbsolute(target) ? target : join(dirname(file), target);
        if (stack.includes(path)) throw fail(`$INCLUDE loop: ${[...stack, path].join(" includes ")}`);
        if (stack.length > MAX_INCLUDE_DEPTH) throw fail(`$INCLUDE nested more than ${MAX_INCLUDE_DEPTH} deep`);
        // RFC 1035 section 5.1: the included file starts at the given origin (else ours); ours is unchanged after.
        const origin = args[1] ? parseName(args[1], state.origin, file) : state.origin;
        const inner: FileState = { origin, ttl: state.ttl, lastOwner: undefined };
        await this.parseFile(path, inner, out, [...stack, path], { file, line: entry.line });
        return;
      }
      case "$GENERATE":
        throw fail("$GENERATE is not supported: write the records out");
      default:
        throw fail(`unknown directive ${head!.text}`);
    }
  }

  /** One resource record: [owner] [ttl] [class] type rdata, TTL and class in either order. */
  private record(file: string, entry: Entry, state: FileState): ZoneRr {
    const tokens = entry.tokens;
    const fail = (reason: string, line = entry.line) => new ZoneError(file, line, reason);
    let i = 0;
    let owner: string[];
    if (entry.blankOwner) {
      if (state.lastOwner === undefined) throw fail("no owner name: the first record must name its owner");
      owner = state.lastOwner;
    } else {
      owner = parseName(tokens[0]!, state.origin, file);
      i = 1;
    }
    let ttl: number | undefined;
    let klass: string | undefined;
    for (;;) {
      const t = tokens[i];
      if (t === undefined) throw fail("missing record type");
      const upper = t.text.toUpperCase();
      if (klass === undefined && !t.quoted && CLASSES.has(upper)) {
        if (upper !== "IN") throw fail(`class ${t.text} is not supported (only IN)`, t.line);
        klass = upper;
      } else if (ttl === undefined && !t.quoted && TTL_RE.test(t.text)) {
        ttl = parseTtl(t, file);
      } else break;
      i += 1;
    }
    const typeToken = tokens[i]!;
    const typeName = typeToken.text.toUpperCase();
    const type = TYPES[typeName];
    if (type === undefined || typeToken.quoted) {
      if (UNSUPPORTED.has(typeName)) throw fail(`record type ${typeName} is not supported`, typeToken.line);
      throw fail(`unknown record type "${typeToken.text}"`, typeToken.line);
    }
    state.lastOwner = owner;
    const rdata = tokens.slice(i + 1);
    const name = owner.join(".");
    const base = { name, class: 1 as const, ttl: ttl ?? state.ttl ?? this.defaultTtl };
    return parseRdata(type, typeName, rdata, base, state.origin, file, entry.line);
  }

  /** Checks one file's records as a zone and indexes them. */
  private build(file: string, placed: Placed[]): StaticZone {
    const fail = (p: { file: string; line: number }, reason: string) => new ZoneError(p.file, p.line, reason);
    const soas = placed.filter((p) => p.rr.type === TYPE.SOA);
    if (soas.length === 0) {
      throw new ZoneError(file, placed[0]?.line ?? 1, "no SOA record: a zone file needs its zone's SOA (files meant for $INCLUDE must not end in .zone)");
    }
    if (soas.length > 1) throw fail(soas[1]!, `a second SOA record (the first is at line ${soas[0]!.line} of ${soas[0]!.file})`);
    const soaPlaced = soas[0]!;
    const soa = soaPlaced.rr as SoaRr;
    const origin = soa.name;
    if (origin === "") throw fail(soaPlaced, "the root zone cannot be served");
    const originLabels = origin.split(".");
    const other = this.zones.find((z) => z.origin === origin);
    if (other) throw fail(soaPlaced, `zone ${origin} is already defined by ${other.file}`);

    const nodes = new Map<string, Map<number, ZoneRr[]>>();
    const where = new Map<string, { file: string; line: number }>();
    const typeLines = new Map<string, number>();
    for (const p of placed) {
      const { rr } = p;
      const name = rr.name;
      if (!isSuffixKey(origin, name)) throw fail(p, `"${name || "."}" is outside zone ${origin}`);
      const labels = name.split(".");
      for (const r of this.reserved) {
        if (isSuffix(r, labels)) throw fail(p, `"${name}" is under ${r.join(".")}, which the registry answers: zone files may not define names there`);
      }
      if (rr.type === TYPE.NS && name !== origin) throw fail(p, `NS record at "${name}": delegations below the zone apex are not supported`);
      if (labels.slice(1).includes("*")) throw fail(p, `"${name}": "*" is a wildcard only as the leftmost label`);
      let node = nodes.get(name);
      if (node === undefined) {
        node = new Map();
        nodes.set(name, node);
        where.set(name, p);
      }
      const tn = TYPE_NAMES[rr.type]!;
      if (rr.type === TYPE.CNAME) {
        for (const [t] of node) {
          if (t !== TYPE.CNAME) throw fail(p, `CNAME at "${name}" beside other data (${TYPE_NAMES[t]} at line ${typeLines.get(`${name} ${t}`)}): a CNAME must be alone at its name`);
        }
      } else if (node.has(TYPE.CNAME)) {
        throw fail(p, `${tn} record at "${name}" beside its CNAME (line ${typeLines.get(`${name} ${TYPE.CNAME}`)}): a CNAME must be alone at its name`);
      }
      let set = node.get(rr.type);
      if (set === undefined) {
        set = [];
        node.set(rr.type, set);
        typeLines.set(`${name} ${rr.type}`, p.line);
      }
      const same = rdataKey(rr);
      if (set.some((r) => rdataKey(r) === same)) continue; // RFC 2181 5: an RRset holds no duplicates
      if (rr.type === TYPE.CNAME && set.length > 0) throw fail(p, `a second CNAME at "${name}" (the first is at line ${typeLines.get(`${name} ${TYPE.CNAME}`)})`);
      set.push(rr);
    }
    // RFC 2181 5.2: one TTL per RRset; where the file disagrees, the smallest wins.
    for (const node of nodes.values()) {
      for (const [type, set] of node) {
        const ttl = Math.min(...set.map((r) => r.ttl));
        node.set(type, Object.freeze(set.map((r) => Object.freeze({ ...r, ttl }))) as ZoneRr[]);
      }
    }
    // Empty non-terminals: every ancestor of a name, up to the origin, exists (RFC 8020).
    const ents = new Set<string>();
    for (const name of nodes.keys()) {
      const labels = name.split(".");
      for (let i = 1; i < labels.length - originLabels.length; i++) {
        const up = labels.slice(i).join(".");
        if (!nodes.has(up)) ents.add(up);
      }
    }
    // CNAME loops inside the zone never resolve: refuse them now rather than SERVFAIL later.
    for (const [name, node] of nodes) {
      if (!node.has(TYPE.CNAME)) continue;
      const path = [name];
      let at = name;
      for (;;) {
        const next = (nodes.get(at)?.get(TYPE.CNAME)?.[0] as { domain: string } | undefined)?.domain;
        if (next === undefined) break;
        if (path.includes(next)) throw fail(where.get(name)!, `CNAME loop: ${[...path, next].join(" -> ")}`);
        path.push(next);
        at = next;
      }
    }
    const zone = new StaticZone(origin, file, soaOf(nodes, origin), nodes as Map<string, Node>, ents);
    this.firstSeen.set(zone, where);
    return zone;
  }

  finish(): StaticZones {
    // A name in one file that lies in another file's (more specific) zone would never be served: refuse it.
    for (const zone of this.zones) {
      for (const [name, at] of this.firstSeen.get(zone)!) {
        for (const inner of this.zones) {
          if (inner === zone || inner.labels.length <= zone.labels.length) continue;
          if (isSuffixKey(inner.origin, name) && isSuffixKey(zone.origin, inner.origin)) {
            throw new ZoneError(at.file, at.line, `"${name}" lies in zone ${inner.origin} (${inner.file}): define it there`);
          }
        }
      }
    }
    return new Zones(this.zones, this.files);
  }
}

function soaOf(nodes: Map<string, Map<number, ZoneRr[]>>, origin: string): SoaRr {
  return nodes.get(origin)!.get(TYPE.SOA)![0] as SoaRr;
}

function rdataKey(rr: ZoneRr): string {
  const { ttl: _ttl, ...rest } = rr;
  return JSON.stringify(rest);
}

function originOfFileName(base: string): string[] | undefined {
  if (base === "") return undefined;
  try {
    const labels = parseName({ text: base.endsWith(".") ? base : `${base}.`, quoted: false, line: 0 }, undefined, "");
    return labels.length > 0 ? labels : undefined;
  } catch {
    return undefined;
  }
}

function isSuffix(suffix: readonly string[], labels: readonly string[]): boolean {
  const d = labels.length - suffix.length;
  if (d < 0) return false;
  for (let i = 0; i < suffix.length; i++) if (labels[d + i] !== suffix[i]) return false;
  return true;
}

/** What went wrong reading a file or directory: its errno code ("ENOENT"), else the message. */
function errorText(err: unknown): string {
  return errnoOf(err) ?? (err instanceof Error ? err.message : String(err));
}
