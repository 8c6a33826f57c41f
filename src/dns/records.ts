// Resource records, one place for their types: what answers are made of, from the registry (Rr) or a zone file
// (ZoneRr), in the shape dns2's encoder takes, and the one table that names types by number.
import { TYPE } from "./wire.js";

/** CAA (RFC 8659) is not among the query types wire.ts names. */
export const TYPE_CAA = 257;

/** Every type we name, by number: the query types (wire.ts's TYPE) and CAA. */
export const TYPE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  [...Object.entries(TYPE), ["CAA", TYPE_CAA] as const].map(([name, type]) => [type, name]),
);

/** A resource record in the shape dns2's encoder takes. */
export type Rr =
  | { name: string; type: typeof TYPE.A | typeof TYPE.AAAA; class: 1; ttl: number; address: string }
  | { name: string; type: typeof TYPE.CNAME | typeof TYPE.PTR | typeof TYPE.NS; class: 1; ttl: number; domain: string; ns?: string }
  | { name: string; type: typeof TYPE.TXT; class: 1; ttl: number; data: string[] }
  | { name: string; type: typeof TYPE.SRV; class: 1; ttl: number; priority: number; weight: number; port: number; target: string }
  | {
      name: string;
      type: typeof TYPE.SOA;
      class: 1;
      ttl: number;
      primary: string;
      admin: string;
      serial: number;
      refresh: number;
      retry: number;
      expiration: number;
      minimum: number;
    };

export type SoaRr = Extract<Rr, { type: typeof TYPE.SOA }>;
export type SrvRr = Extract<Rr, { type: typeof TYPE.SRV }>;
export type MxRr = { name: string; type: typeof TYPE.MX; class: 1; ttl: number; priority: number; exchange: string };
/** Each string is one RFC 1035 <character-string>, at most 255 bytes of UTF-8. */
export type TxtRr = { name: string; type: typeof TYPE.TXT; class: 1; ttl: number; data: string[] };
export type CaaRr = { name: string; type: typeof TYPE_CAA; class: 1; ttl: number; flags: number; tag: string; value: string };
/** A record from a zone file, in the shape dns2 3.1.1's encoder takes (NS records carry `ns` as well as `domain`). */
export type ZoneRr = Rr | MxRr | TxtRr | CaaRr;
