// Configuration: one table of settings gives the flags, the HD_ environment variables, the JSON file keys,
// the defaults, the `--help` text and the zod schema. Precedence: flags > environment > file > defaults.
import { readFileSync, statSync } from "node:fs";
import { parseArgs } from "node:util";
import { isIP } from "node:net";
import { z } from "zod";
import { errnoOf } from "../lib/errno.js";
import { listenSchema, withDefaultPort, type Listen } from "../lib/hostport.js";
import { defaultNodeId } from "../registry/index.js";
import { dnsLabelSchema, normaliseAddress } from "../model/index.js";

const bool = z.union(
  [
    z.boolean(),
    z
      .string()
      .transform((v) => v.toLowerCase())
      .pipe(z.enum(["true", "false", "1", "0", "yes", "no"]))
      .transform((v) => ["true", "1", "yes"].includes(v)),
  ],
  { error: "must be true, false, 1, 0, yes or no (any case)" },
);
/** A number from a flag, a variable or a file; "abc" is "must be a number", not zod's "received NaN". */
const num = () => z.coerce.number({ error: "must be a number" });
const seconds = num().int("must be a whole number of seconds").min(0, "must be 0-86400 seconds").max(86_400, "must be 0-86400 seconds");
const ms = (min: number) =>
  num().int("must be a whole number of milliseconds").min(min, `must be at least ${min} ms`);

/**
 * A comma-separated list, each item read by `item` (undefined: not valid); `problem` says what is wrong with a
 * bad item ("" for an empty list, when `nonEmpty`).
 */
function commaList<T>(item: (text: string) => T | undefined, problem: (bad: string) => string, { nonEmpty = false } = {}) {
  return z.string().transform((raw, ctx): T[] => {
    const parts = raw.split(",").map((p) => p.trim()).filter(Boolean);
    const out: T[] = [];
    for (const part of parts) {
      const value = item(part);
      if (value === undefined) {
        ctx.addIssue({ code: "custom", message: problem(part) });
        return z.NEVER;
      }
      out.push(value);
    }
    if (nonEmpty && out.length === 0) {
      ctx.addIssue({ code: "custom", message: problem("") });
      return z.NEVER;
    }
    return out;
  });
}

/** An address or a CIDR block ("192.168.1.0/24"), as --dns-trusted-networks lists them. */
function cidrOrAddress(item: string): string | undefined {
  const [host = "", bits, extra] = item.split("/");
  const family = isIP(host);
  if (family === 0 || extra !== undefined) return undefined;
  if (bits === undefined) return item;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32) ? item : undefined;
}

/** A host name, an address or a CIDR block ("192.168.1.0/24"), as --check-allow-hosts lists them. */
function allowedHost(item: string): string | undefined {
  return cidrOrAddress(item) ?? (!item.includes("/") && normaliseAddress(item) !== undefined ? item : undefined);
}

const tokenSchema = z.string().min(8, "must be at least 8 characters").refine((t) => !/\s/.test(t), "must not contain white space");

type Setting = {
  readonly flag: string;
  readonly description: string;
  readonly default: unknown;
  /** How the default reads in --help when it is computed. */
  readonly defaultText?: string;
  readonly schema: z.ZodType;
  readonly boolean?: true;
};

export const SETTINGS = {
  httpListen: { flag: "http-listen", description: "address of the JSON API", default: "127.0.0.1:8500", schema: listenSchema },
  dnsListen: { flag: "dns-listen", description: "address of the DNS server, UDP and TCP", default: "127.0.0.1:8600", schema: listenSchema },
  domain: {
    flag: "domain",
    description: "DNS domain the names live under",
    default: "home.arpa",
    schema: z.string().trim().toLowerCase().regex(/^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?\.?$/, "must be a domain name such as home.arpa").transform((d) => d.replace(/\.$/, "")),
  },
  nodeId: { flag: "node-id", description: "this node's id, a DNS label", default: undefined, defaultText: "the host name", schema: dnsLabelSchema },
  clusterName: { flag: "cluster-name", description: "name of the cluster this node belongs to", default: "homelab", schema: dnsLabelSchema },
  dataDir: { flag: "data-dir", description: "directory of the durable store (a journal and a snapshot)", default: "./data", defaultText: "$STATE_DIRECTORY when set (systemd's StateDirectory=), else ./data", schema: z.string().min(1) },
  inMemory: { flag: "in-memory", description: "keep nothing on disk: no data dir, nothing survives a restart", default: false, schema: bool, boolean: true },
  servicesDir: { flag: "services-dir", description: "directory of JSON/YAML files declaring static services (reloaded on SIGHUP)", default: undefined, defaultText: "$CONFIGURATION_DIRECTORY/services.d when set (systemd's ConfigurationDirectory=), else none", schema: z.string().min(1) },
  zonesDir: { flag: "zones-dir", description: "directory of static zone files", default: "./zones", defaultText: "$CONFIGURATION_DIRECTORY/zones when set (systemd's ConfigurationDirectory=), else ./zones", schema: z.string().min(1) },
  dnsTtl: { flag: "dns-ttl", description: "TTL of service records, seconds (an instance's dnsTtl overrides it)", default: 5, schema: seconds },
  dnsNodeTtl: { flag: "dns-node-ttl", description: "TTL of node records, seconds", default: 30, schema: seconds },
  dnsSoaTtl: { flag: "dns-soa-ttl", description: "TTL of the SOA and NS records, seconds", default: 60, schema: seconds },
  dnsNegativeTtl: { flag: "dns-negative-ttl", description: "how long resolvers may cache a negative answer, seconds (the SOA minimum)", default: 5, schema: seconds },
  dnsIncludeDegraded: { flag: "dns-include-degraded", description: "answer with degraded instances too (with a lower SRV weight)", default: false, schema: bool, boolean: true },
  dnsMaxAnswers: { flag: "dns-max-answers", description: "records in one answer at most; bigger sets are sent in rotating windows of this size (the API has them all)", default: 128, schema: num().int().min(1, "must be at least 1").max(1_000, "must be at most 1000 (a message holds 65,535 bytes)") },
  dnsTxtKeys: {
    flag: "dns-txt-keys",
    description: "metadata keys published in DNS-SD TXT records, comma-separated; * for every key, none for none (metadata is public in the API either way)",
    default: undefined,
    defaultText: "* (every key)",
    schema: commaList((key) => (/^([A-Za-z0-9._-]+|\*)$/.test(key) ? key : undefined), (bad) => `"${bad}" is not a metadata key (letters, digits, '.', '_', '-'), * or none`).transform((keys) =>
      keys.includes("*") ? undefined : keys.filter((k) => k !== "none"),
    ),
  },
  dnsLogQueries: { flag: "dns-log-queries", description: "log every DNS query at info level: client, name, type, rcode, answers, size, time", default: false, schema: bool, boolean: true },
  dnsUpstream: {
    flag: "dns-upstream",
    description: "resolvers (host:port,...) that names outside the domain are forwarded to; without it they are REFUSED",
    default: undefined,
    defaultText: "none",
    schema: commaList((part): Listen | undefined => listenSchema.safeParse(withDefaultPort(part, 53)).data, (bad) => `"${bad}" is not host[:port] (e.g. 127.0.0.1:5353 or [::1]:53)`),
  },
  dnsTrustedNetworks: {
    flag: "dns-trusted-networks",
    description: "CIDR blocks and addresses (comma-separated) whose clients may have names forwarded upstream, get UDP answers of up to 4096 bytes and no rate limit; others get at most 1232 bytes and --dns-rate-limit",
    default: undefined,
    defaultText: "loopback and the networks of --dns-listen's interfaces (every interface's for a wildcard address)",
    schema: commaList(cidrOrAddress, (bad) => `"${bad}" is not an address or a CIDR block (e.g. 192.168.1.0/24, fd00::/8, 10.0.0.7)`, { nonEmpty: true }),
  },
  dnsRateLimit: { flag: "dns-rate-limit", description: "UDP responses per second to one untrusted network (/24, /56), with a burst as large; 0 turns the limit off", default: 100, schema: num().int().min(0).max(1_000_000) },
  dnsRateLimitSlip: { flag: "dns-rate-limit-slip", description: "over the rate limit, every Nth response is sent truncated (the client retries over TCP) and the others dropped; 0 drops all", default: 2, schema: num().int().min(0).max(10) },
  dnsTcpIdleTimeout: { flag: "dns-tcp-idle-timeout", description: "a DNS TCP connection must complete a query within this, ms, or it is closed (a byte does not count)", default: 10_000, schema: ms(100) },
  dnsTcpMaxConnections: { flag: "dns-tcp-max-connections", description: "DNS TCP connections open at once; more are closed as they arrive", default: 256, schema: num().int().min(1, "must be at least 1").max(100_000) },
  dockerSocket: {
    flag: "docker-socket",
    description: "a Docker Engine API to register containers from, by their homelab.* labels: unix:///var/run/docker.sock, /path or tcp://host:port (Podman's API too)",
    default: undefined,
    defaultText: "none: no containers",
    schema: z.string().regex(/^(unix:\/\/\/|\/|tcp:\/\/[^/\s]+:\d+$)/, "must be unix:///path, /path or tcp://host:port (DOCKER_HOST's forms)"),
  },
  dockerHostAddress: { flag: "docker-host-address", description: "the address of containers with host networking or published ports (the host's, as other machines reach it)", default: "127.0.0.1", schema: z.string().min(1).transform((a, ctx) => normaliseAddress(a) ?? (ctx.addIssue({ code: "custom", message: "must be an IP address or a host name" }), z.NEVER)) },
  logLevel: { flag: "log-level", description: "trace, debug, info, warn, error, fatal or silent", default: "info", schema: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]) },
  // Tokens (src/http/auth.ts has the route table): each may come from a file instead (--*-token-file), so it does
  // not show in `ps` or the environment of the process.
  adminToken: { flag: "admin-token", description: "bearer token for everything: every write, snapshots and the admin routes (without --write-token it is the one token writes take)", default: undefined, defaultText: "none", schema: tokenSchema },
  adminTokenFile: { flag: "admin-token-file", description: "file holding the admin token (trimmed; refused when empty; warned about when others may read it)", default: undefined, defaultText: "none", schema: z.string().min(1) },
  writeToken: { flag: "write-token", description: "bearer token for service writes: registrations, deregistrations, heartbeats, maintenance, checks of one instance, routing policies (needs --admin-token)", default: undefined, defaultText: "none: writes take the admin token", schema: tokenSchema },
  writeTokenFile: { flag: "write-token-file", description: "file holding the write token", default: undefined, defaultText: "none", schema: z.string().min(1) },
  readToken: { flag: "read-token", description: "bearer token every read then needs (the write and admin tokens read too); /v1/status stays open as a health probe, with its details behind the token (needs --admin-token)", default: undefined, defaultText: "none: reads are open", schema: tokenSchema },
  readTokenFile: { flag: "read-token-file", description: "file holding the read token", default: undefined, defaultText: "none", schema: z.string().min(1) },
  metricsOpen: { flag: "metrics-open", description: "serve /metrics without a token even when --read-token is set (a Prometheus on the LAN without credentials)", default: false, schema: bool, boolean: true },
  // TLS for the API (src/http/tls.ts): the files are read at start and again on SIGHUP (a renewed certificate).
  tlsCert: { flag: "tls-cert", description: "PEM certificate (and intermediates) the API serves HTTPS with, beside --tls-key; re-read on SIGHUP", default: undefined, defaultText: "none: plain HTTP", schema: z.string().min(1) },
  tlsKey: { flag: "tls-key", description: "PEM private key of --tls-cert (keep it mode 600)", default: undefined, defaultText: "none", schema: z.string().min(1) },
  tlsClientCa: { flag: "tls-client-ca", description: "PEM CA a client certificate must be signed by: clients without one are refused at the handshake (tokens still apply); re-read on SIGHUP", default: undefined, defaultText: "none: no client certificates asked", schema: z.string().min(1) },
  cacheTtl: { flag: "cache-ttl", description: "how long query results stay cached, ms (changes invalidate them at once)", default: 60_000, schema: ms(0) },
  checkTimeout: { flag: "check-timeout", description: "timeout of one health check, ms (kept under 90% of the instance's interval)", default: 5_000, schema: ms(100) },
  checkDegradedAfter: { flag: "check-degraded-after", description: "an HTTP check answering 2xx slower than this is degraded, ms", default: 2_000, schema: ms(1) },
  checkConcurrency: { flag: "check-concurrency", description: "health checks running at once", default: 256, schema: num().int().min(1, "must be at least 1").max(10_000) },
  checkFailuresBeforeUnhealthy: { flag: "check-failures-before-unhealthy", description: "failed checks in a row that make an instance unhealthy", default: 2, schema: num().int().min(1).max(100) },
  checkSuccessesBeforeHealthy: { flag: "check-successes-before-healthy", description: "passed checks in a row that bring an unhealthy instance back", default: 1, schema: num().int().min(1).max(100) },
  checkBackoffMax: { flag: "check-backoff-max", description: "longest wait between checks of an instance that stays unhealthy, ms", default: 300_000, schema: ms(1_000) },
  checkAllowHosts: {
    flag: "check-allow-hosts",
    description: "hosts, addresses and CIDR blocks (comma-separated) checks may go to besides each instance's own address; link-local and metadata addresses only when named here",
    default: undefined,
    defaultText: "none: each instance's own address only",
    schema: commaList(allowedHost, (bad) => `"${bad}" is not a host name, an address or a CIDR block (e.g. nas.lan, 192.168.1.20, 192.168.1.0/24)`),
  },
  checkCaFile: { flag: "check-ca-file", description: "PEM file of a CA that HTTPS checks trust besides the system's (a homelab's own CA)", default: undefined, defaultText: "none: the system CAs", schema: z.string().min(1) },
  checkServiceAlarmShare: {
    flag: "check-service-alarm-share",
    description: "when more than this share (0-1) of a service's checked instances, 2 at least, are unhealthy at once, warn and show the service in /v1/stats and /metrics; 1 turns it off",
    default: 0.5,
    schema: num().min(0, "must be 0-1").max(1, "must be 0-1"),
  },
  checksAllowExec: {
    flag: "checks-allow-exec",
    description: "run exec checks (commands on this machine): from --services-dir files, and through the API only with --admin-token; never from container labels",
    default: false,
    schema: bool,
    boolean: true,
  },
  deregisterAfter: { flag: "deregister-after", description: "deregister instances unhealthy this long, ms (0: never; an instance's deregisterAfter wins)", default: 0, schema: ms(0) },
  store: { flag: "store", description: "embedded (this node alone) or etcd (a cluster sharing one registry through etcd)", default: "embedded", schema: z.enum(["embedded", "etcd"]) },
  etcdEndpoints: {
    flag: "etcd-endpoints",
    description: "etcd client URLs, comma-separated (with --store etcd)",
    default: undefined,
    defaultText: "none",
    schema: commaList(
      (url) => (/^https?:\/\/[^/\s]+\/?$/.test(url) ? url.replace(/\/$/, "") : undefined),
      (bad) => `must be http(s)://host:port URLs separated by commas${bad ? `; got ${JSON.stringify(bad)}` : ""}`,
      { nonEmpty: true },
    ),
  },
  etcdPrefix: { flag: "etcd-prefix", description: "etcd key prefix; the cluster name is appended", default: "/homelab-discovery", schema: z.string().regex(/^\/[^\s]*[^/\s]$/, "must start with / and not end with /") },
  etcdLeaseTtl: { flag: "etcd-lease-ttl", description: "TTL of this node's etcd lease, seconds: a dead node's services vanish this long after its last keepalive", default: 10, schema: num().int("must be a whole number of seconds").min(2, "must be at least 2 s").max(3600) },
  etcdCallTimeout: { flag: "etcd-call-timeout", description: "deadline of one etcd call, ms (a call to a dead leader is retried elsewhere after it)", default: 500, schema: ms(50) },
  etcdUsername: { flag: "etcd-username", description: "etcd user (with --etcd-password)", default: undefined, defaultText: "none", schema: z.string().min(1) },
  etcdPassword: { flag: "etcd-password", description: "etcd password", default: undefined, defaultText: "none", schema: z.string().min(1) },
  etcdCa: { flag: "etcd-ca", description: "PEM file of the CA that signed etcd's certificate (https endpoints)", default: undefined, defaultText: "system CAs", schema: z.string().min(1) },
  etcdCert: { flag: "etcd-cert", description: "PEM client certificate for etcd (with --etcd-key)", default: undefined, defaultText: "none", schema: z.string().min(1) },
  etcdKey: { flag: "etcd-key", description: "PEM private key of --etcd-cert", default: undefined, defaultText: "none", schema: z.string().min(1) },
  advertiseUrl: {
    flag: "advertise-url",
    description: "URL of this node's API that other nodes forward writes to (cluster mode)",
    default: undefined,
    defaultText: "http://<http-listen>, with the host name for a wildcard address",
    schema: z.string().regex(/^https?:\/\/[^/\s]+$/, "must be http(s)://host:port with no path"),
  },
  maxBodyBytes: { flag: "max-body-bytes", description: "largest accepted API request body, bytes", default: 1_048_576, schema: num().int().min(1024, "must be at least 1024") },
  maxInstances: { flag: "max-instances", description: "instances the registry holds in all; a registration past it is refused (409)", default: 100_000, schema: num().int().min(1, "must be at least 1").max(10_000_000) },
  maxInstancesPerName: { flag: "max-instances-per-name", description: "instances of one service name; a registration past it is refused (409)", default: 5_000, schema: num().int().min(1, "must be at least 1").max(10_000_000) },
  maxMetadataBytes: { flag: "max-metadata-bytes", description: "bytes of one instance's metadata keys and values together", default: 16_384, schema: num().int().min(64, "must be at least 64").max(1_048_576) },
  maxWatchers: { flag: "max-watchers", description: "blocking queries waiting at once; one more is answered 503", default: 4_096, schema: num().int().min(1, "must be at least 1").max(1_000_000) },
  maxEventStreams: { flag: "max-event-streams", description: "event streams (GET /v1/events) open at once; one more is answered 503", default: 1024, schema: num().int().min(1, "must be at least 1").max(1_000_000) },
  eventsReplay: { flag: "events-replay", description: "events kept for a client that reconnects with Last-Event-ID; from further back it gets a reset event", default: 4096, schema: num().int().min(1, "must be at least 1").max(1_000_000) },
  eventsClientBuffer: { flag: "events-client-buffer", description: "bytes of events queued for one stream whose client does not read; past it the stream is cut off", default: 262_144, schema: num().int().min(1024, "must be at least 1024").max(1 << 30) },
  eventsHeartbeat: { flag: "events-heartbeat", description: "an event stream sends a comment after this long without an event (keeps proxies from closing it), ms", default: 15_000, schema: ms(100) },
  httpCompressMinBytes: { flag: "http-compress-min-bytes", description: "JSON answers at least this long are compressed (zstd where Node has it, br, gzip) for clients that ask; 0: never", default: 1024, schema: num().int().min(0, "must be 0 or more").max(1 << 30) },
  httpMaxConnections: { flag: "http-max-connections", description: "API connections open at once; more are closed as they arrive", default: 1024, schema: num().int().min(1, "must be at least 1").max(1_000_000) },
  httpHeadersTimeout: { flag: "http-headers-timeout", description: "a request's headers must arrive within this, ms", default: 10_000, schema: ms(100) },
  httpRequestTimeout: { flag: "http-request-timeout", description: "a whole request (headers and body) must arrive within this, ms; answers may take longer", default: 30_000, schema: ms(100) },
  // Run as a service (issue 23): the server's own registration. Its defaults for the directories are in serviceDefaults.
  selfRegister: {
    flag: "self-register",
    description: "register this server as service discovery (discovery.service.<domain>): an instance for the API (tag api) and one for DNS (tag dns) on this node, checked over loopback; false removes them",
    default: true,
    schema: bool,
  },
  advertiseAddress: {
    flag: "advertise-address",
    description: "the address other machines reach this node at: its own registration's, when --http-listen or --dns-listen is a wildcard address",
    default: undefined,
    defaultText: "the first address of this machine that is not loopback or link-local (IPv4 first), else 127.0.0.1",
    schema: z.string().refine((a) => isIP(a) !== 0, "must be an IPv4 or IPv6 address").transform((a) => normaliseAddress(a) ?? a),
  },
} as const satisfies Record<string, Setting>;

export type SettingKey = keyof typeof SETTINGS;

/** A setting's value once parsed: its schema's output, or undefined when it has no default and is not set. */
type SettingValue<K extends SettingKey> =
  | z.output<(typeof SETTINGS)[K]["schema"]>
  | ((typeof SETTINGS)[K]["default"] extends undefined ? (K extends "nodeId" ? never : undefined) : never);

/** The server's configuration, one field per setting (nodeId is always set: it defaults to the host name). */
export type Config = { [K in SettingKey]: SettingValue<K> };

/** A setting that could not be used: the message names it by flag, variable and file key. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const KEYS = Object.keys(SETTINGS) as SettingKey[];

export function envName(key: SettingKey): string {
  return `HD_${SETTINGS[key].flag.toUpperCase().replace(/-/g, "_")}`;
}

export type CliCommand = { kind: "serve"; config: Config; warnings: string[] } | { kind: "help" } | { kind: "version" };

/** Variables of ours that are not server settings: the config file's path, and the clients' (the CLI's) server, token and TLS files. */
const OTHER_ENV = new Set(["HD_CONFIG", "HD_URL", "HD_ADDR", "HD_TOKEN", "HD_CA_FILE", "HD_CERT_FILE", "HD_KEY_FILE"]);

/** HD_ variables that name no setting: a typo (HD_ADMINTOKEN) would otherwise go unnoticed, and its setting unset. */
function unknownEnv(env: Record<string, string | undefined>): string[] {
  const known = new Set(KEYS.map((key) => envName(key)));
  const squash = (name: string) => name.replace(/_/g, "");
  const bySquashed = new Map([...known].map((name) => [squash(name), name]));
  return Object.keys(env)
    .filter((name) => name.startsWith("HD_") && !known.has(name) && !OTHER_ENV.has(name))
    .sort()
    .map((name) => {
      const near = bySquashed.get(squash(name));
      return `${name} is not a setting and is ignored${near ? `: did you mean ${near}?` : " (see --help)"}`;
    });
}

/** Reads argv, the environment and an optional JSON file into a validated Config. Throws ConfigError. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv): CliCommand {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = { config: { type: "string" }, help: { type: "boolean", short: "h" }, version: { type: "boolean", short: "v" } };
  for (const key of KEYS) {
    const s: Setting = SETTINGS[key];
    options[s.flag] = { type: s.boolean ? "boolean" : "string" };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ConfigError(`${argvProblem(err)}; see --help`);
  }
  const { values, positionals } = parsed;
  if (values.help) return { kind: "help" };
  if (values.version) return { kind: "version" };
  if (positionals.length > 1 || (positionals[0] !== undefined && positionals[0] !== "serve")) {
    throw new ConfigError(`unknown command ${JSON.stringify(positionals.join(" "))}; the only command is serve (the default); see --help`);
  }

  const configFile = (values.config as string | undefined) ?? env.HD_CONFIG;
  const fromFile = configFile ? readConfigFile(configFile) : {};
  const raw: Record<string, { value: unknown; source: string }> = {};
  const fromService = serviceDefaults(env);
  for (const key of KEYS) {
    const s: Setting = SETTINGS[key];
    const flagValue = values[s.flag];
    const envValue = env[envName(key)];
    if (flagValue !== undefined) raw[key] = { value: flagValue, source: `--${s.flag}` };
    else if (envValue !== undefined && envValue !== "") raw[key] = { value: envValue, source: envName(key) };
    else if (fromFile[key] !== undefined) raw[key] = { value: fromFile[key], source: `${configFile}: ${key}` };
    else if (fromService[key] !== undefined) raw[key] = fromService[key];
    else if (s.default !== undefined) raw[key] = { value: s.default, source: "default" };
  }
  raw.nodeId ??= { value: defaultNodeId(), source: "host name" };

  const config: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const key of KEYS) {
    const entry = raw[key];
    if (entry === undefined) continue;
    const result = SETTINGS[key].schema.safeParse(entry.value);
    if (result.success) config[key] = result.data;
    else problems.push(`${settingName(key)} from ${entry.source}: ${result.error.issues.map((i) => i.message).join("; ")}`);
  }
  // An invalid --etcd-endpoints has its own line above: "needs" would contradict it.
  if (config.store === "etcd" && raw.etcdEndpoints === undefined) problems.push(`--store etcd needs ${settingName("etcdEndpoints")}`);
  if ((config.etcdUsername === undefined) !== (config.etcdPassword === undefined)) problems.push(`${settingName("etcdUsername")} and --etcd-password go together`);
  if ((config.etcdCert === undefined) !== (config.etcdKey === undefined)) problems.push(`${settingName("etcdCert")} and --etcd-key go together`);
  if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) problems.push(`${settingName("tlsCert")} and --tls-key go together`);
  if (config.tlsClientCa !== undefined && config.tlsCert === undefined) problems.push(`${settingName("tlsClientCa")} needs --tls-cert and --tls-key: client certificates are asked in the TLS handshake`);
  if (typeof config.httpHeadersTimeout === "number" && typeof config.httpRequestTimeout === "number" && config.httpHeadersTimeout > config.httpRequestTimeout) {
    problems.push(`${settingName("httpHeadersTimeout")} must not be longer than --http-request-timeout (the headers are part of the request)`);
  }
  const warnings = unknownEnv(env);
  resolveTokens(config, raw, problems, warnings);
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  ${problems.join("\n  ")}`);
  return { kind: "serve", config: config as unknown as Config, warnings };
}

const TOKENS = [
  ["adminToken", "adminTokenFile"],
  ["writeToken", "writeTokenFile"],
  ["readToken", "readTokenFile"],
] as const satisfies readonly (readonly [SettingKey, SettingKey])[];

/**
 * The tokens given as files read into their settings (so the rest of the server sees one value), and the rules
 * between them: a token or its file, not both; scoped tokens only beside an admin token (without one, admin routes
 * would have no token that opens them, or writes none while reads need one); no two the same (a token's scope
 * would depend on which one it matched first).
 */
function resolveTokens(config: Record<string, unknown>, raw: Record<string, { value: unknown; source: string }>, problems: string[], warnings: string[]): void {
  for (const [key, fileKey] of TOKENS) {
    const path = config[fileKey];
    if (typeof path !== "string") continue;
    if (raw[key] !== undefined) {
      problems.push(`${settingName(key)} and ${settingName(fileKey)} are both set: give the token one way`);
      continue;
    }
    let text: string;
    try {
      const mode = statSync(path).mode;
      // Group or world readable: another user on the machine may read it. Docker's and Kubernetes' secrets are
      // mounted 0444 by default, so this is a warning, not a refusal.
      if ((mode & 0o077) !== 0 && process.platform !== "win32") {
        warnings.push(`${path} (${settingName(fileKey)}) can be read by other users (mode ${(mode & 0o777).toString(8)}): chmod 600 it, or 400`);
      }
      text = readFileSync(path, "utf8").trim();
    } catch (err) {
      problems.push(`${settingName(fileKey)}: cannot read ${path}: ${(err as Error).message}`);
      continue;
    }
    if (text === "") {
      problems.push(`${settingName(fileKey)}: ${path} is empty`);
      continue;
    }
    const result = SETTINGS[key].schema.safeParse(text);
    if (result.success) config[key] = result.data;
    else problems.push(`${settingName(fileKey)}: the token in ${path} ${result.error.issues.map((i) => i.message).join("; ")}`);
  }
  if (config.adminToken === undefined) {
    for (const key of ["writeToken", "readToken"] as const) {
      if (config[key] !== undefined) problems.push(`${settingName(key)} needs --admin-token (or --admin-token-file): the admin routes (snapshots, the cache, sync) need a token of their own`);
    }
  }
  const given = TOKENS.map(([key]) => [key, config[key]] as const).filter(([, v]) => typeof v === "string");
  for (let i = 0; i < given.length; i++) {
    for (let j = i + 1; j < given.length; j++) {
      if (given[i]![1] === given[j]![1]) problems.push(`--${SETTINGS[given[i]![0]].flag} and --${SETTINGS[given[j]![0]].flag} are the same token: give each scope its own`);
    }
  }
}

/**
 * Defaults that follow systemd's directories, so a service does not depend on its working directory:
 * StateDirectory= sets $STATE_DIRECTORY (the data), ConfigurationDirectory= $CONFIGURATION_DIRECTORY (zones/,
 * services.d/). Each may list several directories separated by ':' (several names in the unit): the first is ours.
 */
function serviceDefaults(env: NodeJS.ProcessEnv): Partial<Record<SettingKey, { value: string; source: string }>> {
  const first = (name: string) => env[name]?.split(":").find((d) => d !== "");
  const state = first("STATE_DIRECTORY");
  const conf = first("CONFIGURATION_DIRECTORY");
  return {
    ...(state !== undefined ? { dataDir: { value: state, source: "$STATE_DIRECTORY" } } : {}),
    ...(conf !== undefined ? { zonesDir: { value: `${conf}/zones`, source: "$CONFIGURATION_DIRECTORY" }, servicesDir: { value: `${conf}/services.d`, source: "$CONFIGURATION_DIRECTORY" } } : {}),
  };
}

/** Every setting at its default, as the server runs with no flags, variables or file; then the overrides. */
export function defaultConfig(overrides: Partial<Config> = {}): Config {
  const command = loadConfig([], {});
  if (command.kind !== "serve") throw new Error("unreachable: no arguments means serve");
  return { ...command.config, ...overrides };
}

/** parseArgs's message, in this CLI's words: it takes no positional arguments, so never suggests one. */
function argvProblem(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const unknown = /^Unknown option '([^']+)'/.exec(message);
  if (errnoOf(err) !== "ERR_PARSE_ARGS_UNKNOWN_OPTION" || unknown === null) return message;
  const name = unknown[1]!.replace(/^-+/, "").split("=")[0]!;
  const flags = KEYS.map((key) => SETTINGS[key].flag);
  const near = flags.find((flag) => flag.replace(/-/g, "") === name.replace(/[-_]/g, "").toLowerCase());
  return `unknown option ${unknown[1]}${near ? ` (did you mean --${near}?)` : ""}`;
}

function settingName(key: SettingKey): string {
  return `--${SETTINGS[key].flag} (${envName(key)}, "${key}" in the config file)`;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw new ConfigError(`config file ${path} must hold a JSON object`);
  const unknown = Object.keys(data).filter((k) => !KEYS.includes(k as SettingKey));
  if (unknown.length > 0) {
    throw new ConfigError(`config file ${path}: unknown setting ${unknown.map((k) => JSON.stringify(k)).join(", ")}; known: ${KEYS.join(", ")}`);
  }
  return data as Record<string, unknown>;
}

export function helpText(): string {
  const lines = [
    "homelab-discovery: service discovery for homelabs, by DNS and by a JSON API",
    "",
    "Usage: homelab-discovery [serve] [options]",
    "",
    "Every option can also be set by its HD_ environment variable or a key of the JSON file given by",
    "--config (HD_CONFIG). Precedence: flags > environment > file > defaults.",
    "",
    "Options:",
  ];
  const rows: (readonly [string, string])[] = KEYS.map((key) => {
    const s: Setting = SETTINGS[key];
    const left = s.boolean ? `--${s.flag}` : `--${s.flag} <value>`;
    const def = s.defaultText ?? String(s.default);
    return [left, `${s.description} [${envName(key)}; default: ${def}]`] as const;
  });
  rows.unshift(["--config <file>", "JSON file of settings, with the keys listed below [HD_CONFIG]"]);
  rows.push(["-h, --help", "show this help"], ["-v, --version", "print the version"]);
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  for (const [left, right] of rows) lines.push(`  ${left.padEnd(width)}${right}`);
  lines.push("", "Config file keys: " + KEYS.join(", "), "");
  return lines.join("\n");
}
