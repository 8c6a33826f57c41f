// traefik: the endpoint of Traefik's HTTP provider. routes.ts serves it, build.ts builds the configuration as
// Traefik's Consul Catalog provider would from the same tags, labels.ts and spec.ts read the tags as Traefik's
// label parser does, rule.ts runs the default rule's template (README.md beside this file documents it).
export { traefikRoutes, type TraefikOptions } from "./routes.js";
