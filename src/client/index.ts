// client: the same DiscoveryApi over HTTP (client.ts), and a stream of a query's answers built on blocking
// queries that works with either the embedded or the remote API (updates.ts); the SSE reader behind
// DiscoveryClient.serviceEvents (events.ts).
export { DiscoveryClient, type DiscoveryClientOptions } from "./client.js";
export { serviceUpdates, type UpdatesOptions } from "./updates.js";
export { SseParser, type SseMessage } from "./events.js";
