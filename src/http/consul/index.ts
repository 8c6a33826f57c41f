// consul: the Consul-compatible subset of the HTTP API (README.md beside this file lists it). routes.ts serves
// it, views.ts draws our instances in Consul's shapes, register.ts reads Consul's service definition, duration.ts
// Go's duration strings.
export { consulRoutes, consulToken, CONSUL_PATH, type ConsulOptions } from "./routes.js";
export { consulServiceSchema } from "./register.js";
