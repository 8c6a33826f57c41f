// Our instances as Traefik's dynamic configuration, step for step as Traefik's Consul Catalog provider builds it
// (pkg/provider/consulcatalog/config.go buildConfiguration, pkg/provider/configuration.go, pkg/provider/merge.go
// at traefik fd5a576): one configuration per instance, then merged by name, a service's servers appended and
// a resource defined two different ways dropped.
import { urlHost } from "../../lib/hostport.js";
import type { ServiceEntry } from "../../model/index.js";
import { canonical, decodeConfiguration, decodeExtra, LabelError, tagsToLabels, type Obj } from "./labels.js";
import { configurationSpec, middlewareSpecs, routerSpec, serviceSpec, tcpRouterSpec, tcpServiceSpec, type Spec } from "./spec.js";

/** Consul's aggregated check statuses, which Traefik's `strictChecks` lists. */
export type CheckStatus = "passing" | "warning" | "critical" | "maintenance";

export interface BuildOptions {
  exposedByDefault: boolean;
  /** The statuses served (Traefik's strictChecks; its default is passing and warning). */
  statuses: ReadonlySet<CheckStatus>;
  /** The default rule for a router without one, from the instance's name and labels. */
  defaultRule: (model: { Name: string; Labels: Map<string, string> }) => string;
  /** HTTP server weights by instance id (a routing policy's split, issue 21); a weight label wins. */
  weights?: ReadonlyMap<string, number>;
}

export interface Built {
  /** Traefik's dynamic configuration, in the JSON shape its HTTP provider reads. */
  config: Obj;
  /** Instances whose traefik tags Traefik could not use, and why: their Traefik configuration is left out. */
  skipped: { id: string; reason: string }[];
  /** Routers, services and middlewares defined differently by two instances: left out, as Traefik leaves them out. */
  conflicts: string[];
  /** Instances whose traefik configuration was built (a warning about them no longer holds). */
  built: string[];
}

/** Our health as Consul's aggregated status: maintenance first, then the check's status (no check passes). */
export function statusOf(e: ServiceEntry): CheckStatus {
  if (e.maintenance !== undefined) return "maintenance";
  return e.healthStatus === "healthy" ? "passing" : e.healthStatus === "degraded" ? "warning" : "critical";
}

/** provider.Normalize: every run of characters that are not letters or digits becomes one '-'. */
export function normalize(name: string): string {
  return name.split(/[^\p{L}\p{N}]+/u).filter((p) => p !== "").join("-");
}

type Section = { routers: Obj; services: Obj; middlewares: Obj };
type Conf = { http: Section; tcp: Section };

export function buildConfiguration(entries: readonly ServiceEntry[], opts: BuildOptions): Built {
  const configurations = new Map<string, Conf>();
  const skipped: Built["skipped"] = [];
  const built: string[] = [];
  for (const e of entries) {
    const labels = tagsToLabels(e.tags);
    try {
      const extra = decodeExtra(labels, opts.exposedByDefault);
      // Without exposedByDefault Traefik asks Consul for the instances tagged exactly traefik.enable=true.
      if (!opts.exposedByDefault && !e.tags.includes("traefik.enable=true")) continue;
      // keepContainer: disabled, Connect-only (no Connect here) or in a status not served.
      if (!extra.enable || extra.connect || !opts.statuses.has(statusOf(e))) continue;
      const conf = instanceConfiguration(e, labels, extra.canary, opts);
      configurations.set(normalize(`${e.nodeId}-${e.name}-${e.id}`), conf);
      built.push(e.id);
    } catch (err) {
      if (!(err instanceof LabelError)) throw err;
      skipped.push({ id: e.id, reason: err.message });
    }
  }
  const { merged, conflicts } = merge([...configurations.keys()].sort().map((k) => configurations.get(k)!));
  skipped.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { config: render(merged), skipped, conflicts, built };
}

function instanceConfiguration(e: ServiceEntry, labels: Map<string, string>, canary: boolean, opts: BuildOptions): Conf {
  const decoded = decodeConfiguration(labels, configurationSpec) as { http?: Partial<Section>; tcp?: Partial<Section> };
  const http: Section = { routers: {}, services: {}, middlewares: {}, ...decoded.http };
  const tcp: Section = { routers: {}, services: {}, middlewares: {}, ...decoded.tcp };
  const name = serviceName(e, canary);
  const port = String(e.port);

  let tcpOnly = false;
  if (size(tcp.routers) > 0 || size(tcp.services) > 0) {
    if (size(tcp.services) === 0) tcp.services = { [name]: { loadBalancer: {} } };
    for (const [service, value] of Object.entries(tcp.services)) {
      const lb = (value as Obj).loadBalancer as Obj | undefined;
      if (lb === undefined) throw new LabelError(`traefik.tcp.services.${service}: the load-balancer is not defined`);
      const servers = (lb.servers as Obj[] | undefined) ?? [{}];
      const server = servers[0]!;
      const serverPort = (server.port as string | undefined) || port;
      delete server.port;
      server.address = `${urlHost(e.address)}:${serverPort}`;
      lb.servers = servers;
    }
    // BuildTCPRouterConfiguration: a router needs a rule, and a service when there is more than one.
    for (const [router, value] of Object.entries(tcp.routers)) {
      const r = value as Obj;
      if (!r.rule) delete tcp.routers[router];
      else if (!r.service) {
        if (size(tcp.services) > 1) delete tcp.routers[router];
        else r.service = Object.keys(tcp.services)[0];
      }
    }
    tcpOnly = size(http.routers) === 0 && size(http.middlewares) === 0 && size(http.services) === 0;
  }
  if (tcpOnly) return { http, tcp };

  // buildServiceConfiguration and addServer: one server per instance, its URL from the scheme and port labels.
  if (size(http.services) === 0) http.services = { [name]: { loadBalancer: serviceDefaults() } };
  for (const [service, value] of Object.entries(http.services)) {
    const lb = (value as Obj).loadBalancer as Obj | undefined;
    if (lb === undefined) throw new LabelError(`traefik.http.services.${service}: the load-balancer is not defined`);
    const servers = (lb.servers as Obj[] | undefined) ?? [{}];
    const server = servers[0]!;
    lb.servers = servers;
    const weight = opts.weights?.get(e.id);
    if (weight !== undefined && server.weight === undefined) server.weight = weight;
    if (server.url) {
      if (server.scheme || server.port) throw new LabelError(`traefik.http.services.${service}: a server with a url cannot also set its scheme or port`);
      continue;
    }
    const serverPort = (server.port as string | undefined) || port;
    const scheme = (server.scheme as string | undefined) || "http";
    delete server.port;
    delete server.scheme;
    server.url = `${scheme}://${urlHost(e.address)}:${serverPort}`;
  }

  // BuildRouterConfiguration: no router makes one named for the service, with the default rule.
  if (size(http.routers) === 0 && size(http.services) <= 1) http.routers = { [name]: {} };
  for (const [router, value] of Object.entries(http.routers)) {
    const r = value as Obj;
    if (!r.rule) {
      const rule = opts.defaultRule({ Name: e.name, Labels: labels });
      if (rule === "") {
        delete http.routers[router];
        continue;
      }
      r.rule = rule;
      // Router.DefaultRule: not in the JSON, but a router with it differs from one without when merging.
      r.$defaultRule = true;
    }
    if (!r.service) {
      if (size(http.services) > 1) delete http.routers[router];
      else r.service = Object.keys(http.services)[0];
    }
  }
  return { http, tcp };
}

function serviceDefaults(): Obj {
  return { passHostHeader: true, strategy: "wrr", responseForwarding: { flushInterval: "100ms" } };
}

/** getName: the normalized service name; a canary's is made unique by a hash of its tags (FNV-1 64, as Go's fnv.New64). */
function serviceName(e: ServiceEntry, canary: boolean): string {
  if (!canary) return normalize(e.name);
  let hash = 0xcbf29ce484222325n;
  for (const byte of Buffer.from([...e.tags].sort().join(""), "utf8")) hash = ((hash * 0x100000001b3n) & 0xffffffffffffffffn) ^ BigInt(byte);
  return normalize(`${e.name}-${hash}`);
}

const SPECS: Record<"http" | "tcp", Record<keyof Section, Spec>> = {
  http: { routers: routerSpec, services: serviceSpec, middlewares: middlewareSpecs.http },
  tcp: { routers: tcpRouterSpec, services: tcpServiceSpec, middlewares: middlewareSpecs.tcp },
};
const SECTIONS = ["http", "tcp"] as const;
const KINDS = ["routers", "services", "middlewares"] as const;

/** provider.Merge with ResourceStrategyMerge: first definition kept, services' servers appended, conflicts dropped. */
function merge(confs: Conf[]): { merged: Conf; conflicts: string[] } {
  const merged: Conf = { http: { routers: {}, services: {}, middlewares: {} }, tcp: { routers: {}, services: {}, middlewares: {} } };
  const conflicts = new Set<string>();
  for (const conf of confs) {
    for (const section of SECTIONS) {
      for (const kind of KINDS) {
        const dst = merged[section][kind];
        for (const [name, raw] of Object.entries(conf[section][kind])) {
          // Compared as Go compares them: zero values and absent fields alike.
          const value = canonical(SPECS[section][kind], raw, true) as Obj;
          if (!Object.hasOwn(dst, name)) dst[name] = value;
          else if (!(kind === "services" ? mergeService(dst[name] as Obj, value, section) : deepEqual(dst[name], value))) conflicts.add(`${section}.${kind}.${name}`);
        }
      }
    }
  }
  for (const conflict of conflicts) {
    const [section, kind, name] = splitConflict(conflict);
    delete merged[section][kind][name];
  }
  return { merged, conflicts: [...conflicts].sort() };
}

/** `http.routers.<name>`: the name may hold dots. */
function splitConflict(conflict: string): ["http" | "tcp", keyof Section, string] {
  const first = conflict.indexOf(".");
  const second = conflict.indexOf(".", first + 1);
  return [conflict.slice(0, first) as "http" | "tcp", conflict.slice(first + 1, second) as keyof Section, conflict.slice(second + 1)];
}

/** Service.Merge: load balancers equal but for their servers merge, the other's servers appended if new. */
function mergeService(dst: Obj, src: Obj, section: "http" | "tcp"): boolean {
  const a = dst.loadBalancer as Obj | undefined;
  const b = src.loadBalancer as Obj | undefined;
  if (a === undefined || b === undefined) return deepEqual(dst, src);
  const { servers: aServers = [], ...aRest } = a;
  const { servers: bServers = [], ...bRest } = b;
  if (!deepEqual(aRest, bRest)) return false;
  const key = section === "http" ? "url" : "address";
  const seen = new Set((aServers as Obj[]).map((s) => s[key]));
  a.servers = [...(aServers as Obj[]), ...(bServers as Obj[]).filter((s) => !seen.has(s[key]))];
  return true;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual((a as Obj)[k], (b as Obj)[k]));
}

/** The JSON: empty maps and sections left out, since Traefik's decoder refuses `"routers": {}` ("cannot be a standalone element"). */
function render(conf: Conf): Obj {
  const out: Obj = {};
  for (const section of SECTIONS) {
    const part: Obj = {};
    for (const kind of KINDS) {
      const names = Object.keys(conf[section][kind]).sort();
      if (names.length === 0) continue;
      part[kind] = Object.fromEntries(names.map((n) => [n, canonical(SPECS[section][kind], conf[section][kind][n], false)]));
    }
    if (Object.keys(part).length > 0) out[section] = part;
  }
  return out;
}

function size(o: Obj): number {
  return Object.keys(o).length;
}
