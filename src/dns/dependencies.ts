// Which cached answers a registry change can make wrong. Every cached question depends on at most one key, named
// from what it asks (names.ts' classify); a change names the keys of its entry before and after, and the answers
// under those keys are dropped (answer-table.ts). Both sides are worked out here, so they cannot drift apart.
//
//   question                                           key
//   [<tag>.]*<name>.service, _<name>._<proto>.service  s:<name>   (instancesOf(name): tags, health, ports, TTLs)
//   _<name>._tcp.<domain>, _<tag>._sub..., <inst>._<name>._tcp   s:<name>
//   <node>.node                                        n:<node>
//   <hex>.addr, <reversed>.in-addr.arpa, ip6.arpa      a:<hex of the address>   (instancesAt(address))
//   the apex (its SOA carries the serial), _services._dns-sd._udp (every service), an answer that failed to build
//                                                      *          (every change drops these)
//   ns, empty non-terminals, names that cannot exist, outside names     none: only a zone reload changes them
//
// Negative answers (NXDOMAIN, NODATA) carry the SOA with the serial of the registry generation they were built at,
// and are not dropped when only the serial moves: the serial versions the zone for transfers, which we refuse,
// while negative caching uses the SOA's TTL and minimum (RFC 2308 5), which do not change. A negative answer kept
// is still true (none of its data changed, else its key would have dropped it), and per name the serial never
// goes back: an answer is only ever rebuilt later. The apex SOA itself is asked for the serial, so it follows
// every change.
import { isIP } from "node:net";
import { hexOfAddress, type Lookup } from "./names.js";

/** The key every change drops. */
export const ANY_CHANGE = "*";

/** What of an entry the keys are made from (a ServiceEntry has these). */
export interface KeyedEntry {
  readonly name: string;
  readonly nodeId: string;
  readonly address: string;
}

/** The key a question's answer depends on; undefined when nothing in the registry can change it. */
export function questionKey(lookup: Lookup): string | undefined {
  switch (lookup.kind) {
    case "service":
    case "dnssd-type":
    case "dnssd-instance":
      return `s:${lookup.name}`;
    case "node":
      return `n:${lookup.node}`;
    case "addr":
    case "reverse":
      return addressKey(lookup.address);
    case "apex":
    case "dnssd-types":
      return ANY_CHANGE;
    case "ns":
    case "empty-nonterminal":
    case "nxdomain":
    case "outside":
      return undefined;
  }
}

/** The keys of the answers an entry shows in (besides ANY_CHANGE); for a change, of its before and its after. */
export function entryKeys(entry: KeyedEntry): string[] {
  // Question names are folded to lowercase; an entry's name or node in another case is keyed as it would be asked.
  const keys = [`s:${entry.name.toLowerCase()}`, `n:${entry.nodeId.toLowerCase()}`];
  const address = addressKey(entry.address);
  if (address !== undefined) keys.push(address);
  return keys;
}

/** By the address's bytes, so every spelling of one IPv6 address is one key; host names have no addr or reverse name. */
function addressKey(address: string): string | undefined {
  if (isIP(address) === 0) return undefined;
  const hex = hexOfAddress(address);
  return hex === undefined ? ANY_CHANGE : `a:${hex}`;
}
