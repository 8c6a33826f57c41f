// The part of Traefik's dynamic configuration that labels can set, as a tree the label decoder walks: field names
// as Traefik's JSON spells them (pkg/config/dynamic/http_config.go, tcp_config.go, middlewares.go at traefik
// fd5a576), their kinds, and the defaults Traefik's SetDefaults() gives a struct when a label creates it.

/** A scalar kind; `keepZero` for Go pointer fields (`*bool`, `*int`), whose false or 0 is still said. */
/** `noLabel` for Go's `label:"-"`: set by the provider, and a label for it is ignored, as Traefik ignores it. */
export type ScalarSpec = { kind: "string" | "int" | "bool" | "list" | "duration"; keepZero?: boolean; noLabel?: boolean };
export type StructSpec = {
  kind: "struct";
  fields: Record<string, Spec>;
  /** Go's `label:"allowEmpty"`: `tls=true` alone makes an empty one, `tls=false` none. */
  allowEmpty?: boolean;
  defaults?: () => Record<string, unknown>;
};
export type Spec =
  | ScalarSpec
  | StructSpec
  /** A map whose keys are names the user chose (routers, header names). */
  | { kind: "map"; of: Spec }
  /** Anything below, kept as strings: Traefik decodes our JSON with the same string parser it uses for labels. */
  | { kind: "raw" }
  /** `domains[0].main`: a list of structs addressed by index. */
  | { kind: "indexed"; of: StructSpec }
  /** Go's `label-slice-as-struct`: `server.port` in a label is `servers: [{...}]` in JSON. */
  | { kind: "single"; label: string; of: StructSpec };

const s: ScalarSpec = { kind: "string" };
const i: ScalarSpec = { kind: "int" };
const b: ScalarSpec = { kind: "bool" };
const l: ScalarSpec = { kind: "list" };
const d: ScalarSpec = { kind: "duration" };
export const RAW: Spec = { kind: "raw" };
const struct = (fields: Record<string, Spec>, extra: Omit<StructSpec, "kind" | "fields"> = {}): StructSpec => ({ kind: "struct", fields, ...extra });
const map = (of: Spec): Spec => ({ kind: "map", of });

const domains: Spec = { kind: "indexed", of: struct({ main: s, sans: l }) };
const observability = struct({ accessLogs: { kind: "bool", keepZero: true }, metrics: { kind: "bool", keepZero: true }, tracing: { kind: "bool", keepZero: true }, traceVerbosity: s });

/** What HTTP and TCP routers share (Traefik's Router and TCPRouter structs). */
const routerFields = { entryPoints: l, middlewares: l, service: s, rule: s, ruleSyntax: s, priority: i };

export const routerSpec = struct({
  ...routerFields,
  tls: struct({ options: s, certResolver: s, domains }, { allowEmpty: true }),
  observability,
});

export const loadBalancerSpec = struct(
  {
    sticky: struct(
      {
        cookie: struct(
          { name: s, secure: b, httpOnly: b, sameSite: s, maxAge: i, path: { kind: "string", keepZero: true }, domain: s },
          { allowEmpty: true, defaults: () => ({ path: "/" }) },
        ),
      },
      { allowEmpty: true },
    ),
    // Scheme and port are label-only: config.go turns them into the url, and Traefik's JSON has neither.
    servers: { kind: "single", label: "server", of: struct({ url: s, weight: { kind: "int", keepZero: true }, preservePath: b, scheme: s, port: s }) },
    strategy: s,
    healthCheck: struct(
      {
        scheme: s, mode: s, path: s, method: s, status: i, port: i, interval: d, unhealthyInterval: { kind: "duration", keepZero: true },
        timeout: d, hostname: s, followRedirects: { kind: "bool", keepZero: true }, headers: map(s),
      },
      { defaults: () => ({ followRedirects: true, mode: "http", interval: "30s", timeout: "5s" }) },
    ),
    passiveHealthCheck: struct({ failureWindow: d, maxFailedAttempts: i }, { defaults: () => ({ failureWindow: "10s", maxFailedAttempts: 1 }) }),
    passHostHeader: { kind: "bool", keepZero: true },
    responseForwarding: struct({ flushInterval: d }, { defaults: () => ({ flushInterval: "100ms" }) }),
    serversTransport: s,
  },
  // ServersLoadBalancer.SetDefaults.
  { defaults: () => ({ passHostHeader: true, strategy: "wrr", responseForwarding: { flushInterval: "100ms" } }) },
);

export const serviceSpec = struct({ middlewares: l, loadBalancer: loadBalancerSpec });

/** Option kinds per middleware type: s string, i int, b bool, l comma list, d duration, r anything below (raw). */
/** `$empty`: the type takes no option (`compress=true`). */
type Options = Record<string, "s" | "i" | "b" | "l" | "d" | "r" | true>;
const HTTP_MIDDLEWARES: Record<string, Options | null> = {
  addPrefix: { prefix: "s" },
  stripPrefix: { prefixes: "l", forceSlash: "b" },
  stripPrefixRegex: { regex: "l" },
  replacePath: { path: "s" },
  replacePathRegex: { regex: "s", replacement: "s" },
  chain: { middlewares: "l" },
  ipWhiteList: { sourceRange: "l", ipStrategy: "r" },
  ipAllowList: { sourceRange: "l", ipStrategy: "r", rejectStatusCode: "i" },
  headers: {
    customRequestHeaders: "r", customResponseHeaders: "r", accessControlAllowCredentials: "b", accessControlAllowHeaders: "l",
    accessControlAllowMethods: "l", accessControlAllowOriginList: "l", accessControlAllowOriginListRegex: "l", accessControlExposeHeaders: "l",
    accessControlMaxAge: "i", addVaryHeader: "b", allowedHosts: "l", hostsProxyHeaders: "l", sslProxyHeaders: "r", stsSeconds: "i",
    stsIncludeSubdomains: "b", stsPreload: "b", forceSTSHeader: "b", frameDeny: "b", customFrameOptionsValue: "s", contentTypeNosniff: "b",
    browserXssFilter: "b", customBrowserXSSValue: "s", contentSecurityPolicy: "s", contentSecurityPolicyReportOnly: "s", publicKey: "s",
    referrerPolicy: "s", permissionsPolicy: "s", isDevelopment: "b", featurePolicy: "s", sslRedirect: "b", sslTemporaryRedirect: "b",
    sslHost: "s", sslForceHost: "b",
  },
  encodedCharacters: {
    allowEncodedSlash: "b", allowEncodedBackSlash: "b", allowEncodedNullCharacter: "b", allowEncodedSemicolon: "b", allowEncodedPercent: "b",
    allowEncodedQuestionMark: "b", allowEncodedHash: "b",
  },
  errors: { status: "l", statusRewrites: "r", service: "s", query: "s", errorRequestHeaders: "l" },
  rateLimit: { average: "i", period: "d", burst: "i", sourceCriterion: "r", redis: "r" },
  redirectRegex: { regex: "s", replacement: "s", permanent: "b" },
  redirectScheme: { scheme: "s", port: "s", permanent: "b" },
  basicAuth: { users: "l", usersFile: "s", realm: "s", removeHeader: "b", headerField: "s" },
  digestAuth: { users: "l", usersFile: "s", removeHeader: "b", realm: "s", headerField: "s" },
  forwardAuth: {
    address: "s", tls: "r", trustForwardHeader: "b", authResponseHeaders: "l", authResponseHeadersRegex: "s", authRequestHeaders: "l",
    maxResponseBodySize: "i", addAuthCookiesToResponse: "l", headerField: "s", forwardBody: "b", maxBodySize: "i", preserveLocationHeader: "b",
    preserveRequestMethod: "b", authSigninURL: "s",
  },
  inFlightReq: { amount: "i", sourceCriterion: "r" },
  buffering: { maxRequestBodyBytes: "i", memRequestBodyBytes: "i", maxResponseBodyBytes: "i", memResponseBodyBytes: "i", retryExpression: "s" },
  circuitBreaker: { expression: "s", checkPeriod: "d", fallbackDuration: "d", recoveryDuration: "d", responseCode: "i" },
  compress: { $empty: true, excludedContentTypes: "l", includedContentTypes: "l", minResponseBodyBytes: "i", encodings: "l", defaultEncoding: "s" },
  passTLSClientCert: { pem: "b", info: "r" },
  retry: { attempts: "i", timeout: "d", initialInterval: "d", maxRequestBodyBytes: "i", status: "l", disableRetryOnNetworkError: "b", retryNonIdempotentMethod: "b" },
  contentType: { $empty: true, autoDetect: "b" },
  grpcWeb: { allowOrigins: "l" },
  // Plugins take whatever options they declare.
  plugin: null,
};
const TCP_MIDDLEWARES: Record<string, Options | null> = {
  inFlightConn: { amount: "i" },
  ipWhiteList: { sourceRange: "l" },
  ipAllowList: { sourceRange: "l" },
};
const KIND = { s, i, b, l, d, r: RAW } as const;
function middlewareSpec(table: Record<string, Options | null>): StructSpec {
  const fields: Record<string, Spec> = {};
  for (const [type, options] of Object.entries(table)) {
    if (options === null) {
      fields[type] = RAW;
      continue;
    }
    const { $empty, ...rest } = options;
    fields[type] = struct(Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, KIND[v as Exclude<typeof v, true>]])), { allowEmpty: $empty === true });
  }
  return struct(fields);
}
export const middlewareSpecs = { http: middlewareSpec(HTTP_MIDDLEWARES), tcp: middlewareSpec(TCP_MIDDLEWARES) };

export const tcpRouterSpec = struct({
  ...routerFields,
  // Passthrough has no omitempty in Traefik's JSON: an empty tls is {"passthrough": false}.
  tls: struct({ passthrough: { kind: "bool", keepZero: true }, options: s, certResolver: s, domains }, { allowEmpty: true, defaults: () => ({ passthrough: false }) }),
});

export const tcpServiceSpec = struct({
  loadBalancer: struct({
    // The address comes from the instance (`label:"-"` in Traefik); the port label overrides the instance's.
    servers: { kind: "single", label: "server", of: struct({ address: { kind: "string", noLabel: true }, port: s, tls: b }) },
    serversTransport: s,
    proxyProtocol: struct({ version: i }, { allowEmpty: true, defaults: () => ({ version: 2 }) }),
    terminationDelay: { kind: "int", keepZero: true },
    healthCheck: struct(
      { port: i, send: s, expect: s, interval: d, unhealthyInterval: { kind: "duration", keepZero: true }, timeout: d },
      { allowEmpty: true, defaults: () => ({ interval: "30s", timeout: "5s" }) },
    ),
  }),
});

/** What `traefik.http.*` and `traefik.tcp.*` labels decode into. */
export const configurationSpec = struct({
  http: struct({ routers: map(routerSpec), services: map(serviceSpec), middlewares: map(middlewareSpecs.http) }),
  tcp: struct({ routers: map(tcpRouterSpec), services: map(tcpServiceSpec), middlewares: map(middlewareSpecs.tcp) }),
});
