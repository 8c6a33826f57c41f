// zonefile: static zones from RFC 1035 master files, checked hard at load so that a mistake is a ZoneError naming
// file:line, never a wrong answer. tokens.ts, rdata.ts and load.ts read the files; lookup.ts answers from them.
export { loadZones, type LoadOptions } from "./load.js";
export { ZoneError } from "./tokens.js";
export type { StaticZone, StaticZones, ZoneLookup } from "./lookup.js";
