// Static zones: RFC 1035 master files read once at start (and again on SIGHUP), checked hard at load so that a
// mistake is a ZoneError naming file:line, never a wrong answer. Lookups are pure functions over maps, with
// RFC 1034 semantics (CNAME, empty non-terminals, RFC 4592 wildcards), returning a kind plus records.
import { readdir, readFile, stat } from "node:fs/promises";
import { basename, dirname, isAbsolute, join } from "node:path";
import { InvalidError } from "../lib/errors.js";
import { ipv6ForDns2, isIPv4Text } from "../lib/ip.js";
import { TYPE_CAA, TYPE_NAMES, type SoaRr, type ZoneRr } from "./records.js";
import { TYPE } from "./wire.js";

export type ZoneLookup =
  | { readonly kind: "success"; readonly records: readonly ZoneRr[] }
  | { readonly kind: "nodata"; readonly records: readonly ZoneRr[] }
  | { readonly kind: "nxdomain"; readonly records: readonly ZoneRr[] }
  /**
   * The name holds a CNAME and the question was for another type: the CNAME, then whatever the chain leads to
   * inside this zone. `end` is how the last name of the chain fared (RFC 6604: it decides the rcode);
   * "outside" means the chain goes on where this zone does not answer (another zone, more than 8 hops, or a
   * loop through a wildcard) and the resolver follows it from the last CNAME.
   */
  | { readonly kind: "cname"; readonly records: readonly ZoneRr[]; readonly end: "success" | "nodata" | "nxdomain" | "outside" };

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

/** A zone file is wrong. `file` and `line` say where; the message starts with `file:line: ` (`file: ` when line is 0). */
export class ZoneError extends InvalidError {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${line > 0 ? `${file}:${line}` : file}: ${reason}`, undefined, { file, line });
    this.name = "ZoneError";
  }
}

export interface StaticZones {
  /** Every zone, in the order the files were read. */
  readonly zones: readonly StaticZone[];
  /** Every file read, zone files and the files they $INCLUDE. */
  readonly files: readonly string[];
  /** The zone with the longest origin that is a suffix of (or equal to) the name; labels lowercase. */
  findZone(labels: readonly string[]): StaticZone | undefined;
}

const ZONE_SUFFIX = ".zone";
const DEFAULT_TTL = 3600;
const MAX_TTL = 0x7fffffff;
const MAX_INCLUDE_DEPTH = 8;
const MAX_CNAME_CHAIN = 8;
const RESERVED = ["service", "node", "addr"] as const;

const TYPES: Readonly<Record<string, number>> = {
  A: TYPE.A,
  AAAA: TYPE.AAAA,
  CNAME: TYPE.CNAME,
  NS: TYPE.NS,
  MX: TYPE.MX,
  TXT: TYPE.TXT,
  SRV: TYPE.SRV,
  PTR: TYPE.PTR,
  SOA: TYPE.SOA,
  CAA: TYPE_CAA,
};
/** Types a zone file may hold that we do not serve: named so the error says "not supported", not "unknown". */
const UNSUPPORTED = new Set(["HINFO", "SPF", "SSHFP", "TLSA", "NAPTR", "DS", "DNSKEY", "RRSIG", "NSEC", "NSEC3", "NSEC3PARAM", "DNAME", "LOC", "RP", "SVCB", "HTTPS", "URI", "AFSDB", "CERT", "OPENPGPKEY", "SMIMEA", "ZONEMD", "CDS", "CDNSKEY", "CSYNC", "WKS", "MINFO", "MB", "MG", "MR", "NULL", "KEY", "SIG", "NXT", "A6", "APL", "IPSECKEY", "DHCID", "HIP", "EUI48", "EUI64"]);
const CLASSES = new Set(["IN", "CH", "CS", "HS", "NONE", "ANY"]);
const TTL_RE = /^(\d+|(\d+[smhdw])+)$/i;

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
      if (errno(err) === "ENOENT") continue;
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

// ---------------------------------------------------------------------------------------------------------
// Lookups

type Node = Map<number, readonly ZoneRr[]>;

export class StaticZone {
  /** Lowercase, no final dot: "home.arpa". */
  readonly origin: string;
  readonly labels: readonly string[];
  /** The SOA as written; for negative answers use `negativeSoa`. */
  readonly soa: SoaRr;
  /** The SOA for the authority section of NXDOMAIN/NODATA: TTL min(SOA TTL, minimum) (RFC 2308 section 3). */
  readonly negativeSoa: SoaRr;
  /** The zone file (included files are listed in StaticZones.files). */
  readonly file: string;
  readonly recordCount: number;
  private readonly hasWildcards: boolean;

  /** @internal built by loadZones */
  constructor(
    origin: string,
    file: string,
    soa: SoaRr,
    private readonly nodes: ReadonlyMap<string, Node>,
    private readonly ents: ReadonlySet<string>,
  ) {
    this.origin = origin;
    this.labels = origin.split(".");
    this.file = file;
    this.soa = soa;
    this.negativeSoa = Object.freeze({ ...soa, ttl: Math.min(soa.ttl, soa.minimum) });
    let count = 0;
    let wild = false;
    for (const [name, node] of nodes) {
      if (name.startsWith("*.")) wild = true;
      for (const set of node.values()) count += set.length;
    }
    this.recordCount = count;
    this.hasWildcards = wild;
  }

  /** The name is in this zone: at or below the origin (any case). */
  contains(labels: readonly string[]): boolean {
    const d = labels.length - this.labels.length;
    if (d < 0) return false;
    for (let i = 0; i < this.labels.length; i++) if (labels[d + i]!.toLowerCase() !== this.labels[i]) return false;
    return true;
  }

  /**
   * The file defines this name: it owns records, or names below it (an empty non-terminal). Wildcards do not
   * count, so a caller merging the zone with the registry asks the file first and the registry for the rest.
   */
  has(labels: readonly string[]): boolean {
    const key = keyOf(labels);
    return this.nodes.has(key) || this.ents.has(key);
  }

  /** The answer for a name in this zone (check `contains` or use findZone first: outside names are NXDOMAIN). */
  lookup(labels: readonly string[], qtype: number): ZoneLookup {
    return this.lookupKey(keyOf(labels), qtype);
  }

  private lookupKey(key: string, qtype: number): ZoneLookup {
    const found = this.find(key);
    if (found === undefined) return this.ents.has(key) ? NODATA : NXDOMAIN;
    const cname = found.get(TYPE.CNAME);
    if (cname !== undefined && qtype !== TYPE.CNAME && qtype !== TYPE.ANY) return this.chase(key, cname, qtype);
    const set = qtype === TYPE.ANY ? anyRrset(found) : found.get(qtype);
    return set === undefined ? NODATA : { kind: "success", records: set };
  }

  /** The records at a name, synthesised from a wildcard (RFC 4592) when the name does not exist. */
  private find(key: string): Node | undefined {
    const node = this.nodes.get(key);
    if (node !== undefined || !this.hasWildcards || this.ents.has(key)) return node;
    // The closest encloser is the longest existing ancestor; only `*.<closest encloser>` may answer.
    let rest = key;
    while (rest !== this.origin) {
      const dot = rest.indexOf(".");
      if (dot < 0) return undefined; // not in this zone
      rest = rest.slice(dot + 1);
      if (this.nodes.has(rest) || this.ents.has(rest)) break;
    }
    const wild = this.nodes.get(`*.${rest}`);
    if (wild === undefined) return undefined;
    const out: Node = new Map();
    for (const [type, set] of wild) out.set(type, set.map((r) => ({ ...r, name: key })));
    return out;
  }

  /** Follows a CNAME chain while it stays in this zone, ending with the queried type's records at its target. */
  private chase(key: string, first: readonly ZoneRr[], qtype: number): ZoneLookup {
    const records: ZoneRr[] = [...first];
    const seen = new Set([key]);
    let cname = first;
    for (let hop = 0; hop < MAX_CNAME_CHAIN; hop++) {
      const target = (cname[0] as { domain: string }).domain;
      if (!isSuffixKey(this.origin, target)) return { kind: "cname", records, end: "outside" };
      if (seen.has(target)) break; // a loop through a wildcard (exact loops are refused at load)
      seen.add(target);
      const node = this.find(target);
      if (node === undefined) return { kind: "cname", records, end: this.ents.has(target) ? "nodata" : "nxdomain" };
      const next = node.get(TYPE.CNAME);
      if (next === undefined) {
        const set = qtype === TYPE.ANY ? anyRrset(node) : node.get(qtype);
        if (set === undefined) return { kind: "cname", records, end: "nodata" };
        records.push(...set);
        return { kind: "cname", records, end: "success" };
      }
      records.push(...next);
      cname = next;
    }
    return { kind: "cname", records, end: "outside" };
  }
}

const NODATA: ZoneLookup = Object.freeze({ kind: "nodata", records: Object.freeze([]) as readonly ZoneRr[] });
const NXDOMAIN: ZoneLookup = Object.freeze({ kind: "nxdomain", records: Object.freeze([]) as readonly ZoneRr[] });

/** RFC 8482: one RRset for ANY. Addresses first, as answer.ts does for registry names; else the first type written. */
function anyRrset(node: Node): readonly ZoneRr[] | undefined {
  return node.get(TYPE.A) ?? node.get(TYPE.AAAA) ?? node.values().next().value;
}

function keyOf(labels: readonly string[]): string {
  return labels.join(".").toLowerCase();
}

function isSuffix(suffix: readonly string[], labels: readonly string[]): boolean {
  const d = labels.length - suffix.length;
  if (d < 0) return false;
  for (let i = 0; i < suffix.length; i++) if (labels[d + i] !== suffix[i]) return false;
  return true;
}

function isSuffixKey(origin: string, name: string): boolean {
  return name === origin || name.endsWith(`.${origin}`);
}

class Zones implements StaticZones {
  private readonly bySize: StaticZone[];
  constructor(
    readonly zones: readonly StaticZone[],
    readonly files: readonly string[],
  ) {
    this.bySize = [...zones].sort((a, b) => b.labels.length - a.labels.length);
  }

  findZone(labels: readonly string[]): StaticZone | undefined {
    for (const zone of this.bySize) if (zone.contains(labels)) return zone;
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Loading

interface Token {
  readonly text: string;
  readonly quoted: boolean;
  readonly line: number;
}

interface Entry {
  readonly line: number;
  /** The entry's line starts with a blank: the owner is the previous record's. */
  readonly blankOwner: boolean;
  readonly tokens: Token[];
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

// ---------------------------------------------------------------------------------------------------------
// Record data

type Base = { name: string; class: 1; ttl: number };

function parseRdata(type: number, typeName: string, args: Token[], base: Base, origin: string[] | undefined, file: string, line: number): ZoneRr {
  const fail = (reason: string, at = line) => new ZoneError(file, at, reason);
  const need = (n: number, what: string) => {
    if (args.length < n) throw fail(`${typeName} record needs ${what}`);
    if (args.length > n) throw fail(`unexpected "${args[n]!.text}" after ${typeName} record`, args[n]!.line);
  };
  const name = (t: Token) => parseName(t, origin, file).join(".");
  const u = (t: Token, max: number, what: string) => parseUint(t, max, `${what} in ${typeName} record`, file);
  switch (type) {
    case TYPE.A: {
      need(1, "an IPv4 address");
      const t = args[0]!;
      if (t.quoted || !isIPv4Text(t.text)) throw fail(`bad IPv4 address "${t.text}" in A record`, t.line);
      return { ...base, type: TYPE.A, address: t.text };
    }
    case TYPE.AAAA: {
      need(1, "an IPv6 address");
      const t = args[0]!;
      // In hex even when IPv4-mapped: dns2 reads only hex groups (see ipv6ForDns2).
      const address = t.quoted ? undefined : ipv6ForDns2(t.text);
      if (address === undefined) throw fail(`bad IPv6 address "${t.text}" in AAAA record`, t.line);
      return { ...base, type: TYPE.AAAA, address };
    }
    case TYPE.CNAME:
    case TYPE.PTR: {
      need(1, "a domain name");
      return { ...base, type, domain: name(args[0]!) };
    }
    case TYPE.NS: {
      need(1, "a name server's name");
      const ns = name(args[0]!);
      return { ...base, type: TYPE.NS, domain: ns, ns };
    }
    case TYPE.MX: {
      need(2, "a preference and an exchange");
      return { ...base, type: TYPE.MX, priority: u(args[0]!, 0xffff, "preference"), exchange: name(args[1]!) };
    }
    case TYPE.SRV: {
      need(4, "priority, weight, port and target");
      return {
        ...base,
        type: TYPE.SRV,
        priority: u(args[0]!, 0xffff, "priority"),
        weight: u(args[1]!, 0xffff, "weight"),
        port: u(args[2]!, 0xffff, "port"),
        target: name(args[3]!),
      };
    }
    case TYPE.TXT: {
      if (args.length === 0) throw fail("TXT record needs at least one string");
      return { ...base, type: TYPE.TXT, data: args.map((t) => characterString(t, file, "TXT")) };
    }
    case TYPE.SOA: {
      need(7, "primary, admin, serial, refresh, retry, expire and minimum");
      return {
        ...base,
        type: TYPE.SOA,
        primary: name(args[0]!),
        admin: name(args[1]!),
        serial: u(args[2]!, 0xffffffff, "serial"),
        refresh: parseTtl(args[3]!, file, "refresh"),
        retry: parseTtl(args[4]!, file, "retry"),
        expiration: parseTtl(args[5]!, file, "expire"),
        minimum: parseTtl(args[6]!, file, "minimum"),
      };
    }
    case TYPE_CAA: {
      need(3, "flags, a tag and a value");
      const flags = u(args[0]!, 255, "flags");
      const tag = args[1]!;
      if (tag.quoted || !/^[a-z0-9]{1,15}$/i.test(tag.text)) throw fail(`bad CAA tag "${tag.text}": 1 to 15 letters and digits`, tag.line);
      const value = characterString(args[2]!, file, "CAA", Infinity);
      return { ...base, type: TYPE_CAA, flags, tag: tag.text.toLowerCase(), value };
    }
  }
  throw fail(`record type ${typeName} is not supported`);
}

function parseUint(t: Token, max: number, what: string, file: string): number {
  if (t.quoted || !/^\d+$/.test(t.text) || Number(t.text) > max) throw new ZoneError(file, t.line, `bad ${what} "${t.text}": a number from 0 to ${max}`);
  return Number(t.text);
}

const UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** Seconds, or BIND's units: 1h30m, 2d, 1w. */
function parseTtl(t: Token, file: string, what = "TTL"): number {
  let seconds = 0;
  if (!t.quoted && /^\d+$/.test(t.text)) seconds = Number(t.text);
  else if (!t.quoted && TTL_RE.test(t.text)) {
    for (const m of t.text.toLowerCase().matchAll(/(\d+)([smhdw])/g)) seconds += Number(m[1]) * UNIT[m[2]!]!;
  } else throw new ZoneError(file, t.line, `bad ${what} "${t.text}": seconds, or a duration such as 1h30m`);
  if (seconds > MAX_TTL) throw new ZoneError(file, t.line, `${what} "${t.text}" is above the maximum ${MAX_TTL} seconds (RFC 2181)`);
  return seconds;
}

/** A <character-string>: escapes decoded, UTF-8, at most `max` bytes (255 on the wire). */
function characterString(t: Token, file: string, what: string, max = 255): string {
  const bytes = unescape(t, file);
  if (bytes.length > max) throw new ZoneError(file, t.line, `${what} string of ${bytes.length} bytes: at most ${max} (split it into several quoted strings)`);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ZoneError(file, t.line, `${what} string "${t.text}" is not valid UTF-8`);
  }
}

/** Decodes \X and \DDD (RFC 1035 section 5.1) into bytes. */
function unescape(t: Token, file: string): Buffer {
  const out: number[] = [];
  const text = t.text;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== "\\") {
      for (const b of Buffer.from(c, "utf8")) out.push(b);
      continue;
    }
    const digits = /^\d{3}/.exec(text.slice(i + 1, i + 4));
    if (digits) {
      const v = Number(digits[0]);
      if (v > 255) throw new ZoneError(file, t.line, `bad escape "\\${digits[0]}": at most \\255`);
      out.push(v);
      i += 3;
    } else if (i + 1 < text.length) {
      for (const b of Buffer.from(text[i + 1]!, "utf8")) out.push(b);
      i += 1;
    } else throw new ZoneError(file, t.line, `"${text}" ends in a lone backslash`);
  }
  return Buffer.from(out);
}

/**
 * A domain name as lowercase labels: "@" is the origin, a final "." makes it absolute, otherwise the origin is
 * appended. Labels must be printable ASCII without ".", the only names a query can carry to us.
 */
function parseName(t: Token, origin: readonly string[] | undefined, file: string): string[] {
  const fail = (reason: string) => new ZoneError(file, t.line, reason);
  if (t.quoted) throw fail(`a domain name cannot be quoted: "${t.text}"`);
  const text = t.text;
  const relative = (labels: string[]) => {
    if (origin === undefined) throw fail(`relative name "${text}" but no origin: add $ORIGIN, or name the file <zone>.zone`);
    return [...labels, ...origin];
  };
  if (text === "@") return relative([]);
  if (text === ".") return [];
  const labels: string[] = [];
  let label = "";
  let absolute = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "\\") {
      const digits = /^\d{3}/.exec(text.slice(i + 1, i + 4));
      if (digits) {
        label += String.fromCharCode(Number(digits[0]));
        i += 3;
      } else {
        label += text[i + 1] ?? "";
        i += 1;
      }
    } else if (c === ".") {
      if (label === "") throw fail(`bad name "${text}": empty label`);
      labels.push(label);
      label = "";
      if (i === text.length - 1) absolute = true;
    } else label += c;
  }
  if (!absolute) {
    if (label === "") throw fail(`bad name "${text}": empty label`);
    labels.push(label);
  }
  for (const l of labels) {
    if (l.length > 63) throw fail(`bad name "${text}": label "${l}" is longer than 63 bytes`);
    if (!/^[\x21-\x2d\x2f-\x7e]+$/.test(l)) throw fail(`bad name "${text}": labels may hold only printable ASCII other than "."`);
  }
  const lower = labels.map((l) => l.toLowerCase());
  const full = absolute ? lower : relative(lower);
  if (full.reduce((n, l) => n + l.length + 1, 1) > 255) throw fail(`bad name "${text}": longer than 255 bytes`);
  return full;
}

// ---------------------------------------------------------------------------------------------------------
// Tokens

/**
 * Splits a master file into entries: one per logical line, where parentheses join physical lines. Comments run
 * from ";" to the end of the line; quoted strings keep their escapes for the field parsers.
 */
function tokenize(text: string, file: string): Entry[] {
  const entries: Entry[] = [];
  let tokens: Token[] = [];
  let entryLine = 0;
  let blankOwner = false;
  let lineStartsBlank = false;
  let depth = 0;
  let parenLine = 0;
  let line = 1;
  let atLineStart = true;
  const flush = () => {
    if (tokens.length > 0) entries.push({ line: entryLine, blankOwner, tokens });
    tokens = [];
  };
  const push = (t: Token) => {
    if (tokens.length === 0) {
      entryLine = t.line;
      blankOwner = lineStartsBlank;
    }
    tokens.push(t);
  };
  let i = 0;
  const n = text.length;
  /** Reads from `from` up to a character `stop` accepts, keeping `\x` escapes (but not before a newline) whole. */
  const readToken = (from: number, stop: (c: string) => boolean): [string, number] => {
    let j = from;
    let s = "";
    while (j < n && !stop(text[j]!)) {
      if (text[j] === "\\" && j + 1 < n && text[j + 1] !== "\n") {
        s += text[j]! + text[j + 1]!;
        j += 2;
      } else {
        s += text[j]!;
        j += 1;
      }
    }
    return [s, j];
  };
  if (text.charCodeAt(0) === 0xfeff) i = 1; // a byte-order mark
  while (i < n) {
    const c = text[i]!;
    if (atLineStart) {
      lineStartsBlank = c === " " || c === "\t";
      atLineStart = false;
    }
    if (c === "\n") {
      line += 1;
      i += 1;
      atLineStart = true;
      if (depth === 0) flush();
    } else if (c === " " || c === "\t" || c === "\r") {
      i += 1;
    } else if (c === ";") {
      while (i < n && text[i] !== "\n") i += 1;
    } else if (c === "(") {
      if (depth === 0) parenLine = line;
      depth += 1;
      i += 1;
    } else if (c === ")") {
      if (depth === 0) throw new ZoneError(file, line, `")" without "("`);
      depth -= 1;
      i += 1;
    } else if (c === '"') {
      const [token, end] = readToken(i + 1, (d) => d === '"' || d === "\n");
      if (end >= n || text[end] === "\n") throw new ZoneError(file, line, "unterminated quoted string");
      push({ text: token, quoted: true, line });
      i = end + 1;
    } else {
      const [token, end] = readToken(i, (d) => d === " " || d === "\t" || d === "\r" || d === "\n" || d === ";" || d === "(" || d === ")" || d === '"');
      push({ text: token, quoted: false, line });
      i = end;
    }
  }
  if (depth > 0) throw new ZoneError(file, parenLine, `"(" is never closed`);
  flush();
  return entries;
}

function errno(err: unknown): string | undefined {
  return err && typeof err === "object" && "code" in err ? String(err.code) : undefined;
}

function errorText(err: unknown): string {
  return errno(err) ?? (err instanceof Error ? err.message : String(err));
}
