// http: the JSON API. app.ts holds the routes (requests into Discovery calls, zod at the edge), errors.ts maps
// error kinds to status codes once, params.ts reads query strings, forward.ts proxies a write to the node that owns
// the instance (cluster mode), server.ts listens (tls.ts reads its certificate), providers.ts, traefik/ and consul/ serve the views other tools read (Prometheus
// http_sd, Traefik's HTTP provider, the Consul-compatible subset). It calls the registry; it knows no other face.
export { createHttpApp, servedRoutes, type HttpOptions, type MetricsSource } from "./app.js";
export { DEFAULT_HTTP_LIMITS, listenHttp, type HttpLimits, type HttpServerHandle } from "./server.js";
export { kindOfStatus, STATUS_OF_KIND } from "./errors.js";
export { paramsFromQuery } from "./params.js";
export type { PeerTls } from "./forward.js";
export { daysLeft, loadTls, TlsError, type TlsFiles, type TlsMaterial, type TlsStatus } from "./tls.js";
