// dns: the DNS face. server.ts takes UDP and TCP queries, answer.ts decides what to say for one question over a
// view of the registry (names.ts parses the names, answer-table.ts caches the wire bytes), forward.ts relays names
// outside our domain, zones.ts serves static zone files. It reads the registry through DnsView; no other face.
export { DnsServer, type DnsServerOptions, type DnsStats } from "./server.js";
export { loadZones, ZoneError, type StaticZones } from "./zones.js";
export type { DnsSettings, DnsView } from "./answer.js";
