// dns: the DNS face. server.ts takes UDP and TCP queries (wire.ts reads them, tcp.ts bounds each connection,
// clients.ts tells trusted clients from others and rate-limits the rest), answer.ts decides what to say for one
// question over a view of the registry (names.ts parses the names, records.ts holds the record types), encode.ts
// writes the answer, answer-table.ts caches its bytes (dependencies.ts: which of them a registry change drops),
// forward.ts relays names outside our domain, and zonefile/ serves static zone files. It reads the registry
// through DnsView; no other face.
export { DnsServer, type DnsServerOptions, type DnsStats } from "./server.js";
export { localNetworks } from "./clients.js";
export { loadZones, ZoneError, type StaticZones } from "./zonefile/index.js";
export type { DnsSettings, DnsView } from "./answer.js";
