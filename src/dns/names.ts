// What a query name asks for, relative to the server's domain. Pure: labels in, a Lookup out.
//
//   <domain>                                  apex (SOA, NS)
//   ns.<domain>                               the server itself
//   [<tag>.]*<name>.service[.<cluster>].<domain>    instances of a service having every tag
//   _<name>._tcp.service[.<cluster>].<domain>       RFC 2782, every instance; _<name>._<tag>. with a tag (_udp: udp)
//   [<tag>.]*_v<version>.<name>.service..., _v<version>._<name>._tcp.service...   one version only (a pin:
//                                             _v2 major 2, _v2-1 2.1.x, _v2-1-3 exactly; model/routing.ts pinMatcher)
//   <node>.node[.<cluster>].<domain>          a node's addresses
//   <hex>.addr.<domain>                       an address, the target of SRV records
//   <reversed>.in-addr.arpa, <nibbles>.ip6.arpa     PTR of a registered address
// DNS-SD (RFC 6763), browsing the domain itself:
//   _services._dns-sd._udp.<domain>           the service types
//   _<name>._tcp.<domain>                     a type: PTR to its instances (_udp: those tagged udp)
//   _<tag>._sub._<name>._tcp.<domain>         a subtype: the instances with a tag
//   __v<version>._sub._<name>._tcp.<domain>   a subtype of one version (the pin label `_v2` as a subtype)
//   <instance>._<name>._tcp.<domain>          an instance: SRV and TXT

import { canonicalIPv6, ipHex, isIPv4Text } from "../lib/ip.js";

export type Lookup =
  | { readonly kind: "apex" }
  | { readonly kind: "ns" }
  /** `pin`: the version label's text after `_v` (`2-1`), when the name pins one version. */
  | { readonly kind: "service"; readonly name: string; readonly tags: readonly string[]; readonly rfc2782: boolean; readonly pin?: string }
  | { readonly kind: "node"; readonly node: string }
  | { readonly kind: "addr"; readonly address: string }
  | { readonly kind: "reverse"; readonly address: string }
  | { readonly kind: "dnssd-types" }
  /** `proto` "udp": only the instances tagged udp (as at `_<name>._udp.service`). */
  | { readonly kind: "dnssd-type"; readonly name: string; readonly proto: "tcp" | "udp"; readonly tags: readonly string[]; readonly pin?: string }
  | { readonly kind: "dnssd-instance"; readonly name: string; readonly proto: "tcp" | "udp"; readonly instance: string }
  /** A name inside the zone that holds no records but has names below it (RFC 8020: never NXDOMAIN). */
  | { readonly kind: "empty-nonterminal" }
  /** Inside the zone, and nothing there. */
  | { readonly kind: "nxdomain" }
  /** Not ours. */
  | { readonly kind: "outside" };

export interface ZoneNames {
  /** The domain's labels, lowercase: ["home", "arpa"]. */
  readonly domain: readonly string[];
  readonly cluster: string;
}

const LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
/** The tags of a name that has none, shared (Lookup's tags are read-only). */
const NO_TAGS: readonly string[] = Object.freeze([]);

export function classify(labels: readonly string[], zone: ZoneNames): Lookup {
  const reverse = classifyReverse(labels);
  if (reverse !== undefined) return reverse;

  const d = zone.domain.length;
  if (labels.length < d) return { kind: "outside" };
  for (let i = 0; i < d; i++) if (labels[labels.length - d + i] !== zone.domain[i]) return { kind: "outside" };
  let rel = labels.slice(0, labels.length - d);
  if (rel.length === 0) return { kind: "apex" };

  // An optional cluster label after service/node, as Consul's datacenter: web.service.homelab.home.arpa
  const last = rel[rel.length - 1]!;
  if (rel.length >= 2 && last === zone.cluster && (rel[rel.length - 2] === "service" || rel[rel.length - 2] === "node")) {
    rel = rel.slice(0, -1);
    if (rel.length === 1) return { kind: "empty-nonterminal" };
  }
  const kind = rel[rel.length - 1]!;
  const below = rel.slice(0, -1);
  if (kind === "_tcp" || kind === "_udp" || kind.startsWith("_")) return classifyDnsSd(rel);

  if (kind === "service") {
    if (below.length === 0) return { kind: "empty-nonterminal" };
    if (below[below.length - 1]!.startsWith("_")) {
      // `_tcp.service.<domain>` (or `_<tag>.`) holds no records but RFC 2782 names sit below it: NODATA (RFC 8020).
      if (below.length === 1) return serviceOfLabel(below[0]!) !== undefined ? { kind: "empty-nonterminal" } : { kind: "nxdomain" };
      // `_v2._web._tcp.service`: the RFC 2782 name of one version.
      const pin = below.length === 3 ? pinOfLabel(below[0]!) : undefined;
      const rest = pin !== undefined ? below.slice(1) : below;
      if (rest.length !== 2 || !rest[0]!.startsWith("_") || !rest[1]!.startsWith("_")) return { kind: "nxdomain" };
      const name = rest[0]!.slice(1);
      const proto = rest[1]!.slice(1);
      if (!LABEL.test(name) || !LABEL.test(proto)) return { kind: "nxdomain" };
      // As in Consul: `_tcp` is every instance, any other protocol label a tag (`_udp`: the instances tagged udp).
      const tags = proto === "tcp" ? NO_TAGS : [proto];
      return pin === undefined ? { kind: "service", name, tags, rfc2782: true } : { kind: "service", name, tags, rfc2782: true, pin };
    }
    // `[<tag>.]*_v2.web.service`: a version label right before the name (a tag, a DNS label, cannot start with '_').
    const pin = below.length >= 2 ? pinOfLabel(below[below.length - 2]!) : undefined;
    const tags = below.length <= (pin !== undefined ? 2 : 1) ? NO_TAGS : below.slice(0, pin !== undefined ? -2 : -1);
    const name = below[below.length - 1]!;
    if (!LABEL.test(name)) return { kind: "nxdomain" };
    for (const l of tags) if (!LABEL.test(l)) return { kind: "nxdomain" };
    // Two literals rather than a spread of an optional pin: an uncached answer classifies its name (issue 18).
    return pin === undefined ? { kind: "service", name, tags, rfc2782: false } : { kind: "service", name, tags, rfc2782: false, pin };
  }
  if (kind === "node") {
    if (below.length === 0) return { kind: "empty-nonterminal" };
    return below.length === 1 && LABEL.test(below[0]!) ? { kind: "node", node: below[0]! } : { kind: "nxdomain" };
  }
  if (kind === "addr") {
    if (below.length === 0) return { kind: "empty-nonterminal" };
    const address = below.length === 1 ? addressOfHex(below[0]!) : undefined;
    return address === undefined ? { kind: "nxdomain" } : { kind: "addr", address };
  }
  if (rel.length === 1 && kind === "ns") return { kind: "ns" };
  return { kind: "nxdomain" };
}

/** DNS-SD names: rel ends in a label starting with '_'. */
function classifyDnsSd(rel: readonly string[]): Lookup {
  const n = rel.length;
  if (n === 3 && rel[0] === "_services" && rel[1] === "_dns-sd" && rel[2] === "_udp") return { kind: "dnssd-types" };
  if ((n === 1 && (rel[0] === "_tcp" || rel[0] === "_udp")) || (n === 2 && rel[0] === "_dns-sd" && rel[1] === "_udp")) {
    return { kind: "empty-nonterminal" };
  }
  const last = rel[n - 1]!;
  if (last !== "_tcp" && last !== "_udp") return { kind: "nxdomain" };
  const proto = last === "_tcp" ? "tcp" : "udp";
  const service = n >= 2 ? serviceOfLabel(rel[n - 2]!) : undefined;
  if (service === undefined) return { kind: "nxdomain" };
  if (n === 2) return { kind: "dnssd-type", name: service, proto, tags: [] };
  if (n === 3) return rel[0] === "_sub" ? { kind: "empty-nonterminal" } : { kind: "dnssd-instance", name: service, proto, instance: rel[0]! };
  if (n === 4 && rel[1] === "_sub") {
    // `__v2._sub._web._tcp`: a subtype of one version (the subtype's '_' and the pin label `_v2`; `_v2._sub` is the tag v2).
    const pin = rel[0]!.startsWith("__") ? pinOfLabel(rel[0]!.slice(1)) : undefined;
    if (pin !== undefined) return { kind: "dnssd-type", name: service, proto, tags: [], pin };
    const tag = serviceOfLabel(rel[0]!);
    return tag === undefined ? { kind: "nxdomain" } : { kind: "dnssd-type", name: service, proto, tags: [tag] };
  }
  return { kind: "nxdomain" };
}

/** `_v2-1` -> `2-1`: a version label's text, when it is `_v` and a DNS label. */
function pinOfLabel(label: string): string | undefined {
  if (!label.startsWith("_v") || label.length < 3) return undefined;
  const pin = label.slice(2);
  return LABEL.test(pin) ? pin : undefined;
}

/** `_web` -> `web`, when what follows the underscore is a DNS label (a service name or tag). */
function serviceOfLabel(label: string): string | undefined {
  const name = label.startsWith("_") ? label.slice(1) : undefined;
  return name !== undefined && LABEL.test(name) ? name : undefined;
}

/**
 * An instance's DNS-SD label: its id, lowercased, with '.' (which cannot stand in a label we parse) as '-';
 * ids longer than a label, or `hashed` (ids of one service that would share a label), keep 54 characters and
 * a hash of the whole id.
 */
export function instanceLabel(id: string, hashed = false): string {
  const label = id.toLowerCase().replace(/\./g, "-");
  if (label.length <= 63 && !hashed) return label;
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193) >>> 0;
  return `${label.slice(0, 54)}-${h.toString(16).padStart(8, "0")}`;
}

/** The target name of an address in SRV answers: 7f000001.addr.<domain>, 32 hex digits for IPv6. */
export const hexOfAddress: (address: string) => string | undefined = ipHex;

export function addressOfHex(hex: string): string | undefined {
  if (/^[0-9a-f]{8}$/.test(hex)) return [0, 2, 4, 6].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(".");
  if (/^[0-9a-f]{32}$/.test(hex)) return canonicalIPv6(Array.from({ length: 8 }, (_, i) => hex.slice(i * 4, i * 4 + 4)).join(":"));
  return undefined;
}

/** The reverse name of an address: 4.3.2.1.in-addr.arpa or its 32 nibbles under ip6.arpa. */
export function reverseName(address: string): string | undefined {
  const hex = hexOfAddress(address);
  if (hex === undefined) return undefined;
  if (!address.includes(":")) return `${address.split(".").reverse().join(".")}.in-addr.arpa`;
  return `${[...hex].reverse().join(".")}.ip6.arpa`;
}

function classifyReverse(labels: readonly string[]): Lookup | undefined {
  const n = labels.length;
  if (n >= 2 && labels[n - 1] === "arpa" && labels[n - 2] === "in-addr") {
    const octets = labels.slice(0, -2);
    const address = [...octets].reverse().join(".");
    return octets.length === 4 && isIPv4Text(address) ? { kind: "reverse", address } : { kind: "outside" };
  }
  if (n >= 2 && labels[n - 1] === "arpa" && labels[n - 2] === "ip6") {
    const nibbles = labels.slice(0, -2);
    if (nibbles.length !== 32 || !nibbles.every((x) => /^[0-9a-f]$/.test(x))) return { kind: "outside" };
    const address = addressOfHex([...nibbles].reverse().join(""));
    return address === undefined ? { kind: "outside" } : { kind: "reverse", address };
  }
  return undefined;
}
