// Lookups in a loaded zone: pure functions over maps with RFC 1034 semantics (CNAME chains, empty non-terminals,
// RFC 4592 wildcards), each returning a kind plus records; Zones finds the zone a name is in.
import type { SoaRr, ZoneRr } from "../records.js";
import { TYPE } from "../wire.js";

const MAX_CNAME_CHAIN = 8;

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

export interface StaticZones {
  /** Every zone, in the order the files were read. */
  readonly zones: readonly StaticZone[];
  /** Every file read, zone files and the files they $INCLUDE. */
  readonly files: readonly string[];
  /** The zone with the longest origin that is a suffix of (or equal to) the name; labels lowercase. */
  findZone(labels: readonly string[]): StaticZone | undefined;
}

/** The records at one name, by type. */
export type Node = Map<number, readonly ZoneRr[]>;

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

/** The name (a lowercase key) is the origin or below it. */
export function isSuffixKey(origin: string, name: string): boolean {
  return name === origin || name.endsWith(`.${origin}`);
}

/** The zones loadZones read; findZone tries the longest origins first. */
export class Zones implements StaticZones {
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
