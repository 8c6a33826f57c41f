// answer(question, view): what to say for one question, as a kind plus records (the shape of CoreDNS's
// file plugin lookup). One place, encodeAnswer in encode.ts (with rcodeOf here), turns the kind into an rcode
// and the sections: every negative answer carries the SOA, NXDOMAIN only for names that do not exist. Pure: no
// sockets, no clock.
import { isIP } from "node:net";
import { ipv6ForDns2 } from "../lib/ip.js";
import { pinMatcher, route, weightedSequence, type RoutedGroup, type RoutingPolicy, type ServiceEntry } from "../model/index.js";
import { classify, hexOfAddress, instanceLabel, type Lookup, type ZoneNames } from "./names.js";
import type { Rr, SoaRr, ZoneRr } from "./records.js";
import { RCODE, TYPE } from "./wire.js";
import type { StaticZone, StaticZones, ZoneLookup } from "./zonefile/index.js";

export interface DnsSettings {
  /** Lowercase, without a final dot. */
  readonly domain: string;
  readonly cluster: string;
  /** Seconds. */
  readonly serviceTtl: number;
  readonly nodeTtl: number;
  readonly soaTtl: number;
  /** The negative-caching TTL: the SOA minimum and the TTL of the SOA in negative answers (RFC 2308). */
  readonly negativeTtl: number;
  readonly includeDegraded: boolean;
  /** Addresses `ns.<domain>` resolves to. */
  readonly nsAddresses: readonly string[];
  /** At most this many records in one answer (default DEFAULT_MAX_ANSWERS); rotations send other windows. */
  readonly maxAnswers?: number;
  /** The metadata keys published in DNS-SD TXT records; undefined: all of them (metadata is public). */
  readonly txtKeys?: readonly string[] | undefined;
}

/** 128 SRV records with their glue are ~7.5 KB: far below a message's 65,535 bytes, more than any client needs. */
export const DEFAULT_MAX_ANSWERS = 128;

/** What answering needs from the registry. */
export interface DnsView {
  readonly generation: number;
  /** Every service name, sorted. */
  serviceNames(): string[];
  instancesOf(name: string): ServiceEntry[];
  instancesOnNode(nodeId: string): ServiceEntry[];
  instancesAt(address: string): ServiceEntry[];
}

export type Kind = "success" | "nxdomain" | "nodata" | "refused";

export interface Answer {
  readonly kind: Kind;
  readonly answers: readonly ZoneRr[];
  readonly additionals: readonly ZoneRr[];
  /** The answer is an A or AAAA set whose order rotates between queries. */
  readonly rotate: boolean;
  /** The SOA for a negative answer when it is not the registry's own (a zone file's). */
  readonly soa?: Rr;
  /** At most this many answer records are sent (from the start of the set, which callers rotate). */
  readonly limit?: number;
  /**
   * A routed A/AAAA set split between versions: the answer records of each query in turn (cycled through), each
   * one version's, in proportion to the policy's weights. `answers` is then the first of them.
   */
  readonly variants?: readonly (readonly Rr[])[];
}

/** A service's routing policy, if it has one (the registry's RoutingTable). */
export interface RoutingLookup {
  get(name: string): RoutingPolicy | undefined;
}

/** Variants a routed A/AAAA answer cycles through: each version's share of them is its weight, to the point. */
export const ROUTED_VARIANTS = 100;

/** SRV weights survive HAProxy's (w+255)/256 mapping: healthy 2560 -> 10, degraded 256 -> 1. */
export const SRV_WEIGHT = { healthy: 2560, degraded: 256 } as const;

const NONE: Answer = { kind: "nodata", answers: [], additionals: [], rotate: false };
const NX: Answer = { kind: "nxdomain", answers: [], additionals: [], rotate: false };
const REFUSED: Answer = { kind: "refused", answers: [], additionals: [], rotate: false };

export class Zone {
  readonly names: ZoneNames;
  readonly nsName: string;
  private readonly adminName: string;
  /** Zones from files; the one whose origin is the domain merges with the registry's names. */
  statics: StaticZones | undefined;
  /** Routing policies by service name (issue 21); undefined: none, every healthy instance answers. */
  routing: RoutingLookup | undefined;
  /** Told when a policy selects no healthy instance and the answer falls back to every healthy one. */
  onRoutingFallback: ((name: string) => void) | undefined;

  constructor(
    readonly settings: DnsSettings,
    private readonly serialBase: number,
  ) {
    this.names = { domain: settings.domain.split("."), cluster: settings.cluster };
    this.nsName = `ns.${settings.domain}`;
    this.adminName = `hostmaster.${settings.domain}`;
  }

  soa(view: DnsView, ttl: number): SoaRr {
    const d = this.settings.domain;
    return {
      name: d,
      type: TYPE.SOA,
      class: 1,
      ttl,
      primary: this.nsName,
      admin: this.adminName,
      serial: (this.serialBase + view.generation) % 2 ** 32,
      refresh: 3600,
      retry: 600,
      expiration: 86400,
      minimum: this.settings.negativeTtl,
    };
  }

  /**
   * The SOA for a negative answer about a name in one of our zones (the domain, or a zone from a file), or
   * undefined when the name is outside them (a registry reverse name is ours only while an instance has it).
   */
  negativeSoaOf(labels: readonly string[], view: DnsView): SoaRr | undefined {
    const file = this.statics?.findZone(labels);
    if (file !== undefined) return file.negativeSoa;
    const kind = classify(labels, this.names).kind;
    return kind === "outside" || kind === "reverse" ? undefined : this.soa(view, this.settings.negativeTtl);
  }

  /**
   * `qname` is the lowercase name as the answer's owner; `labels` the same split; `lookup` what classify() makes
   * of them, when the caller has it already (the server keys the answer by it too).
   */
  answer(qname: string, labels: readonly string[], qtype: number, view: DnsView, lookup: Lookup = classify(labels, this.names)): Answer {
    const answer = this.answerAll(lookup, qname, labels, qtype, view);
    const max = this.settings.maxAnswers ?? DEFAULT_MAX_ANSWERS;
    return answer.answers.length > max ? { ...answer, limit: max } : answer;
  }

  private answerAll(lookup: Lookup, qname: string, labels: readonly string[], qtype: number, view: DnsView): Answer {
    const file = this.statics?.findZone(labels);
    if (file === undefined) return this.answerLookup(lookup, qname, qtype, view);
    if (file.origin !== this.settings.domain) {
      // Another zone from a file. A reverse zone's names come from the file, else from the registry's PTRs.
      if (lookup.kind === "reverse" && !file.has(labels)) {
        const registry = this.answerLookup(lookup, qname, qtype, view);
        if (registry.kind !== "refused") return { ...registry, soa: this.registryNegativeSoa(file) };
      }
      return fromFile(file.lookup(labels, qtype), file);
    }
    // The file for our own domain: the registry keeps its names, the file has the rest, one SOA (the file's).
    if (REGISTRY_KINDS.has(lookup.kind) || (UNLESS_DEFINED_KINDS.has(lookup.kind) && !file.has(labels))) {
      return { ...this.answerLookup(lookup, qname, qtype, view), soa: this.registryNegativeSoa(file) };
    }
    return fromFile(file.lookup(labels, qtype), file);
  }

  /**
   * The file's SOA for a negative answer about one of the registry's names, which come and go: resolvers may
   * cache their absence for --dns-negative-ttl at most, whatever the file's minimum (RFC 2308: the lower of the
   * SOA record's TTL and its minimum).
   */
  private registryNegativeSoa(file: StaticZone): SoaRr {
    const ttl = this.settings.negativeTtl;
    return file.negativeSoa.ttl <= ttl ? file.negativeSoa : { ...file.negativeSoa, ttl };
  }

  private answerLookup(lookup: Lookup, qname: string, qtype: number, view: DnsView): Answer {
    const s = this.settings;
    switch (lookup.kind) {
      case "outside":
        return REFUSED;
      case "nxdomain":
        return NX;
      case "empty-nonterminal":
        return NONE;
      case "apex": {
        const soa = this.soa(view, s.soaTtl);
        const ns: Rr = { name: qname, type: TYPE.NS, class: 1, ttl: s.soaTtl, domain: this.nsName, ns: this.nsName };
        if (qtype === TYPE.SOA) return ok([soa]);
        if (qtype === TYPE.NS) return ok([ns], this.nsGlue());
        if (qtype === TYPE.ANY) return ok([soa, ns], this.nsGlue());
        return NONE;
      }
      case "ns": {
        const records = addressRecords(qname, qtype, s.nsAddresses, s.soaTtl);
        return records.length > 0 ? ok(records, [], true) : NONE;
      }
      case "service":
        return this.service(lookup.name, lookup.tags, lookup.rfc2782, qname, qtype, view, lookup.pin);
      case "node": {
        const instances = view.instancesOnNode(lookup.node);
        if (instances.length === 0) return NX;
        const addresses = distinct(instances.map((e) => e.address));
        const records = addressRecords(qname, qtype, addresses, s.nodeTtl);
        return records.length > 0 ? ok(records, [], true) : NONE;
      }
      case "addr": {
        if (view.instancesAt(lookup.address).length === 0) return NX;
        const records = addressRecords(qname, qtype, [lookup.address], s.serviceTtl);
        return records.length > 0 ? ok(records) : NONE;
      }
      case "dnssd-types":
        return this.dnssdTypes(qname, qtype, view);
      case "dnssd-type":
        return this.dnssdType(lookup.name, lookup.proto, lookup.tags, qname, qtype, view, lookup.pin);
      case "dnssd-instance":
        return this.dnssdInstance(lookup.name, lookup.proto, lookup.instance, qname, qtype, view);
      case "reverse": {
        const instances = view.instancesAt(lookup.address);
        if (instances.length === 0) return REFUSED; // not a zone of ours: no claim either way
        // Each registered address's reverse name is a zone of its own, with its own SOA: the SOA of a negative
        // answer belongs to a zone that holds the name (RFC 2308 2.2), which home.arpa's does not.
        if (qtype !== TYPE.PTR && qtype !== TYPE.ANY) return { ...NONE, soa: { ...this.soa(view, s.negativeTtl), name: qname } };
        const names = distinct(instances.map((e) => `${e.name}.service.${s.domain}`)).sort();
        return ok(names.map((domain) => ({ name: qname, type: TYPE.PTR, class: 1, ttl: s.serviceTtl, domain })));
      }
    }
  }

  /** Instances of a service with every tag that DNS answers with (healthy, or degraded when enabled), in stable order. */
  private select(all: readonly ServiceEntry[], tags: readonly string[]): ServiceEntry[] {
    // Loops rather than filter and every: an uncached answer runs this per instance (issue 18).
    const includeDegraded = this.settings.includeDegraded;
    const out: ServiceEntry[] = [];
    next: for (const e of all) {
      if (e.maintenance !== undefined) continue;
      if (e.healthStatus !== "healthy" && !(includeDegraded && e.healthStatus === "degraded")) continue;
      for (const t of tags) if (!e.tags.includes(t)) continue next;
      out.push(e);
    }
    return sortSmall(out, byAddressPort);
  }

  private ttlOf(selected: readonly ServiceEntry[]): number {
    let ttl = Infinity;
    for (const e of selected) ttl = Math.min(ttl, e.dnsTtl ?? this.settings.serviceTtl);
    return ttl;
  }

  /**
   * SRV records for the instances, and A/AAAA glue for targets that are addresses (one per target). Routed, each
   * group's share is divided among its instances: weight 256 x percent / instances (healthy; a tenth of it
   * degraded), which HAProxy's (w+255)/256 turns back into the percent share. Unrouted, or one group: the usual
   * weights.
   */
  private srv(owner: string, selected: readonly ServiceEntry[], ttl: number, groups?: readonly RoutedGroup<ServiceEntry>[]): Answer {
    const answers: Rr[] = [];
    const glue: Rr[] = [];
    const targets = new Set<string>();
    if (groups !== undefined && groups.length > 1) {
      for (const g of groups) for (const e of g.instances) this.addSrv(answers, glue, targets, owner, ttl, e, (256 * g.weight) / g.instances.length);
    } else {
      for (const e of selected) this.addSrv(answers, glue, targets, owner, ttl, e, undefined);
    }
    return ok(answers, glue);
  }

  /** One instance's SRV record, and its target's glue the first time that target comes (a method, not a closure per answer). */
  private addSrv(answers: Rr[], glue: Rr[], targets: Set<string>, owner: string, ttl: number, e: ServiceEntry, share: number | undefined): void {
    const facts = addressFacts(e.address);
    const target = facts.hex !== undefined ? targetOf(facts, this.settings.domain) : e.address;
    const healthy = e.healthStatus === "healthy";
    const weight = share === undefined ? (healthy ? SRV_WEIGHT.healthy : SRV_WEIGHT.degraded) : Math.max(1, Math.min(65535, Math.round(healthy ? share : share / 10)));
    answers.push({ name: owner, type: TYPE.SRV, class: 1, ttl, priority: 1, weight, port: e.port, target });
    if (facts.hex !== undefined && !targets.has(target)) {
      targets.add(target);
      glue.push({ name: target, type: facts.family === 6 ? TYPE.AAAA : TYPE.A, class: 1, ttl, address: facts.encodable });
    }
  }

  /**
   * The instances a service's policy routes to, among those selected (all of them without a policy), and the
   * groups when the policy splits them between versions.
   */
  private routed(name: string, selected: ServiceEntry[]): { instances: ServiceEntry[]; groups: readonly RoutedGroup<ServiceEntry>[] | undefined } {
    const policy = this.routing?.get(name);
    if (policy === undefined) return { instances: selected, groups: undefined };
    return this.routedBy(name, policy, selected);
  }

  private routedBy(name: string, policy: RoutingPolicy, selected: ServiceEntry[]): { instances: ServiceEntry[]; groups: readonly RoutedGroup<ServiceEntry>[] | undefined } {
    const r = route(policy, selected);
    if (r.fellBack) this.onRoutingFallback?.(name);
    const instances = r.groups.length === 1 ? [...r.groups[0]!.instances] : r.groups.flatMap((g) => g.instances);
    return { instances, groups: r.groups.length > 1 ? r.groups : undefined };
  }

  private pinned(selected: ServiceEntry[], pin: string): ServiceEntry[] {
    const matches = pinMatcher(pin);
    return selected.filter((e) => matches(e.version));
  }

  /**
   * A routed A/AAAA answer over several versions: ROUTED_VARIANTS variants, each one version's addresses (rotated
   * within the version), in the order weightedSequence spreads them.
   */
  private routedAddresses(qname: string, qtype: number, groups: readonly RoutedGroup<ServiceEntry>[], ttl: number): Answer {
    const sets = groups
      .map((g) => ({ weight: g.weight, records: addressRecords(qname, qtype, distinct(g.instances.filter((e) => addressFacts(e.address).family !== 0).map((e) => e.address)), ttl) }))
      .filter((g) => g.records.length > 0);
    if (sets.length === 0) return NONE;
    if (sets.length === 1) return ok(sets[0]!.records, [], true);
    const max = this.settings.maxAnswers ?? DEFAULT_MAX_ANSWERS;
    const turns = sets.map(() => 0);
    const rotations = sets.map((g) => g.records.map((_, k) => [...g.records.slice(k), ...g.records.slice(0, k)].slice(0, max)));
    const variants = weightedSequence(sets.map((g) => g.weight), ROUTED_VARIANTS).map((i) => rotations[i]![turns[i]!++ % rotations[i]!.length]!);
    return { kind: "success", answers: [...variants[0]!], additionals: [], rotate: false, variants };
  }

  /** A service's instances with every tag; `pin`: of that version only, past any policy (and no fallback). */
  private service(name: string, tags: readonly string[], rfc2782: boolean, qname: string, qtype: number, view: DnsView, pin?: string): Answer {
    const all = view.instancesOf(name);
    if (all.length === 0) return NX;
    // Without a policy or a pin (most services), no routing object is made: this runs on every uncached answer.
    let selected = this.select(all, tags);
    let groups: readonly RoutedGroup<ServiceEntry>[] | undefined;
    if (pin !== undefined) selected = this.pinned(selected, pin);
    else {
      const policy = this.routing?.get(name);
      if (policy !== undefined) ({ instances: selected, groups } = this.routedBy(name, policy, selected));
    }
    if (selected.length === 0) return NONE;
    const ttl = this.ttlOf(selected);
    if (qtype === TYPE.SRV || (rfc2782 && qtype === TYPE.ANY)) return this.srv(qname, selected, ttl, groups);
    if (rfc2782) return NONE;
    if (groups !== undefined && (qtype === TYPE.A || qtype === TYPE.AAAA)) return this.routedAddresses(qname, qtype, groups, ttl);
    if (qtype === TYPE.A || qtype === TYPE.AAAA || qtype === TYPE.ANY || qtype === TYPE.CNAME) {
      const ips = distinctAddresses(selected);
      if (ips.length > 0) {
        const records = addressRecords(qname, qtype, ips, ttl);
        return records.length > 0 ? ok(records, [], true) : NONE;
      }
      // Only host names: one CNAME (an owner may hold no other record beside it, RFC 1034 3.6.2).
      const host = selected[0]!.address;
      return ok([{ name: qname, type: TYPE.CNAME, class: 1, ttl, domain: host }]);
    }
    return NONE;
  }

  /** `_services._dns-sd._udp.<domain>`: a PTR per service type that has an instance DNS would answer with. */
  private dnssdTypes(qname: string, qtype: number, view: DnsView): Answer {
    if (qtype !== TYPE.PTR && qtype !== TYPE.ANY) return NONE;
    const d = this.settings.domain;
    const types: string[] = [];
    for (const name of view.serviceNames()) {
      const answered = this.select(view.instancesOf(name), []);
      if (answered.length > 0) types.push(`_${name}._tcp.${d}`);
      if (answered.some((e) => e.tags.includes("udp"))) types.push(`_${name}._udp.${d}`);
    }
    return ok(types.map((domain) => ({ name: qname, type: TYPE.PTR, class: 1, ttl: this.settings.serviceTtl, domain })));
  }

  /**
   * `_<name>._tcp.<domain>` (and `_<tag>._sub.` subtypes, `__v2._sub.` of one version): PTR to instances; SRV as at the RFC 2782 name (ANY: both).
   * `_udp`: the instances tagged udp.
   */
  private dnssdType(name: string, proto: "tcp" | "udp", tags: readonly string[], qname: string, qtype: number, view: DnsView, pin?: string): Answer {
    const all = view.instancesOf(name);
    if (all.length === 0) return NX;
    const tagged = this.select(all, proto === "udp" ? [...tags, "udp"] : tags);
    const { instances: selected, groups } = pin === undefined ? this.routed(name, tagged) : { instances: this.pinned(tagged, pin), groups: undefined };
    if (selected.length === 0) return NONE;
    const ttl = this.ttlOf(selected);
    const withSrv = tags.length === 0 && pin === undefined;
    if (qtype === TYPE.SRV && withSrv) return this.srv(qname, selected, ttl, groups);
    if (qtype !== TYPE.PTR && qtype !== TYPE.ANY) return NONE;
    const typeName = `_${name}._${proto}.${this.settings.domain}`;
    const labels = instanceLabels(all);
    const instances = selected.map((e) => `${labels.get(e)}.${typeName}`).sort();
    const ptrs = ok(instances.map((domain) => ({ name: qname, type: TYPE.PTR, class: 1, ttl, domain })));
    return qtype === TYPE.ANY && withSrv ? merge(ptrs, this.srv(qname, selected, ttl, groups)) : ptrs;
  }

  /** `<instance>._<name>._tcp.<domain>`: the instance's SRV (with glue) and its metadata as TXT (RFC 6763 6); ANY both. */
  private dnssdInstance(name: string, proto: "tcp" | "udp", instance: string, qname: string, qtype: number, view: DnsView): Answer {
    const labels = instanceLabels(view.instancesOf(name));
    const entry = [...labels].find(([, label]) => label === instance)?.[0];
    if (entry === undefined) return NX;
    const selected = this.select([entry], proto === "udp" ? ["udp"] : []);
    if (selected.length === 0) return NONE;
    const ttl = this.ttlOf(selected);
    const txt = (): Answer => ok([{ name: qname, type: TYPE.TXT, class: 1, ttl, data: txtStrings(entry, this.settings.txtKeys) }]);
    if (qtype === TYPE.SRV) return this.srv(qname, selected, ttl);
    if (qtype === TYPE.TXT) return txt();
    if (qtype === TYPE.ANY) return merge(this.srv(qname, selected, ttl), txt());
    return NONE;
  }

  private nsGlue(): Rr[] {
    const { nsAddresses, soaTtl } = this.settings;
    return [...addressRecords(this.nsName, TYPE.A, nsAddresses, soaTtl), ...addressRecords(this.nsName, TYPE.AAAA, nsAddresses, soaTtl)];
  }
}

/** Names the registry answers even when a zone file covers the domain. */
const REGISTRY_KINDS: ReadonlySet<Lookup["kind"]> = new Set(["service", "node", "addr", "dnssd-types", "empty-nonterminal"]);
/** The registry's too, unless the domain's zone file defines that very name: `_ipp._tcp IN SRV 0 0 631 printer`
 * in the file is the operator's word for it, and the file's records answer there instead of the registry's. */
const UNLESS_DEFINED_KINDS: ReadonlySet<Lookup["kind"]> = new Set(["ns", "dnssd-type", "dnssd-instance"]);

/** A zone file's lookup as an answer: RFC 6604 for CNAME chains (the rcode is the last name's). */
function fromFile(result: ZoneLookup, file: StaticZone): Answer {
  const records = result.records;
  const rotate = records.length > 1 && records.every((r) => r.type === TYPE.A || r.type === TYPE.AAAA);
  const end = result.kind === "cname" ? result.end : result.kind;
  if (end === "success" || end === "outside") return { kind: "success", answers: records, additionals: [], rotate };
  return { kind: end, answers: records, additionals: [], rotate: false, soa: file.negativeSoa };
}

function ok(answers: Rr[], additionals: Rr[] = [], rotate = false): Answer {
  return { kind: "success", answers, additionals, rotate: rotate && answers.length > 1 };
}

/** Two RRsets of one name, as ANY answers them. */
function merge(a: Answer, b: Answer): Answer {
  return { kind: "success", answers: [...a.answers, ...b.answers], additionals: [...a.additionals, ...b.additionals], rotate: false };
}

/**
 * A records for an A query, AAAA for AAAA, and both for ANY: Java's JNDI asks ANY for {A, AAAA} and keeps what it
 * asked for, so a subset (RFC 8482 allows one) would break it. Over UDP the answer size bound keeps ANY from
 * amplifying: a big set goes truncated, to TCP.
 */
function addressRecords(name: string, qtype: number, addresses: readonly string[], ttl: number): Rr[] {
  // One loop per family, IPv4 first (ANY sends both): no intermediate arrays on an uncached answer's way.
  const out: Rr[] = [];
  if (qtype === TYPE.A || qtype === TYPE.ANY) {
    for (const a of addresses) if (addressFacts(a).family === 4) out.push({ name, type: TYPE.A, class: 1, ttl, address: a });
  }
  if (qtype === TYPE.AAAA || qtype === TYPE.ANY) {
    for (const a of addresses) {
      const facts = addressFacts(a);
      if (facts.family === 6) out.push({ name, type: TYPE.AAAA, class: 1, ttl, address: facts.encodable });
    }
  }
  return out;
}

/**
 * Sorted in place: an insertion sort for the few instances most services have (Array.prototype.sort copies into
 * a work array of its own, the largest allocation of an uncached answer), the built-in sort beyond.
 */
function sortSmall<T>(items: T[], compare: (a: T, b: T) => number): T[] {
  if (items.length > 16) return items.sort(compare);
  for (let i = 1; i < items.length; i++) {
    const item = items[i]!;
    let j = i - 1;
    for (; j >= 0 && compare(items[j]!, item) > 0; j--) items[j + 1] = items[j]!;
    items[j + 1] = item;
  }
  return items;
}

/** What answers need of an address: its family (0: a host name), its hex (the .addr name), the text to encode. */
interface AddressFacts {
  readonly family: number;
  readonly hex: string | undefined;
  readonly encodable: string;
  /** `<hex>.addr.<domain>` for the domain last asked (targetOf): one flat string, not one built per answer. */
  target: string | undefined;
  targetDomain: string | undefined;
}

/** The SRV target naming an address (facts.hex set) in this domain. */
function targetOf(facts: AddressFacts, domain: string): string {
  if (facts.targetDomain !== domain) {
    facts.target = `${facts.hex}.addr.${domain}`;
    facts.targetDomain = domain;
  }
  return facts.target!;
}

/**
 * An address's facts, worked out once: an uncached answer asks them of every instance, and the regular
 * expressions of isIP and ipHex cost more than the rest of its records. Bounded: emptied when full (the
 * registry's addresses come back on their next answer; names asked of .addr can be anything).
 */
const ADDRESS_FACTS = new Map<string, AddressFacts>();
const MAX_ADDRESS_FACTS = 16_384;
function addressFacts(address: string): AddressFacts {
  let facts = ADDRESS_FACTS.get(address);
  if (facts === undefined) {
    const family = isIP(address);
    facts = { family, hex: family === 0 ? undefined : hexOfAddress(address), encodable: family === 0 ? address : encodable(address), target: undefined, targetDomain: undefined };
    if (ADDRESS_FACTS.size >= MAX_ADDRESS_FACTS) ADDRESS_FACTS.clear();
    ADDRESS_FACTS.set(address, facts);
  }
  return facts;
}

/** RFC 6763 6: `key=value` strings of at most 255 bytes, `version=` first, within a bounded total; never empty. */
export const TXT_MAX_TOTAL = 1300;
export function txtStrings(entry: ServiceEntry, keys?: readonly string[]): string[] {
  const strings: string[] = [];
  let total = 0;
  const published = Object.entries(entry.metadata).filter(([key]) => keys === undefined || keys.includes(key));
  const pairs: [string, string][] = [["version", entry.version], ...published.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))];
  for (const [key, value] of pairs) {
    const text = `${key}=${value}`;
    const bytes = Buffer.byteLength(text);
    if (bytes > 255 || total + bytes + 1 > TXT_MAX_TOTAL) continue; // too long for one string, or for the record
    strings.push(text);
    total += bytes + 1;
  }
  return strings.length > 0 ? strings : [""];
}

/** dns2 encodes an IPv4-mapped IPv6 address written as ::ffff:1.2.3.4 wrongly: give it the hex words. */
function encodable(address: string): string {
  return address.includes(":") && address.includes(".") ? ipv6ForDns2(address)! : address;
}

/**
 * The DNS-SD label of each instance of one service. Ids that would share a label (`web.1`, `web-1`, `Web-1`)
 * each take the hashed form instead, so every instance stays reachable; labels are made from every instance,
 * not only those DNS answers with, so an instance's label does not change with another's health.
 */
function instanceLabels(instances: readonly ServiceEntry[]): Map<ServiceEntry, string> {
  const plain = instances.map((e) => instanceLabel(e.id));
  const count = new Map<string, number>();
  for (const label of plain) count.set(label, (count.get(label) ?? 0) + 1);
  return new Map(instances.map((e, i) => [e, count.get(plain[i]!)! > 1 ? instanceLabel(e.id, true) : plain[i]!]));
}

/** The instances' IP addresses (host names left out), each once, in order: one loop, no Set for a few of them. */
function distinctAddresses(instances: readonly ServiceEntry[]): string[] {
  if (instances.length > 16) return distinct(instances.filter((e) => addressFacts(e.address).family !== 0).map((e) => e.address));
  const out: string[] = [];
  for (const e of instances) if (addressFacts(e.address).family !== 0 && !out.includes(e.address)) out.push(e.address);
  return out;
}

function distinct<T>(values: T[]): T[] {
  return [...new Set(values)];
}

function byAddressPort(a: ServiceEntry, b: ServiceEntry): number {
  if (a.address !== b.address) return a.address < b.address ? -1 : 1;
  if (a.port !== b.port) return a.port - b.port;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export function rcodeOf(kind: Kind): number {
  return kind === "nxdomain" ? RCODE.NXDOMAIN : kind === "refused" ? RCODE.REFUSED : RCODE.NOERROR;
}
