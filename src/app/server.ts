// Wires the parts for one process: the store, the registry and its checker (Discovery), services files, the
// DNS server with its zone files, and the HTTP API; with reload and stop. No globals: tests start servers on
// port 0 and stop them.
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import type { Logger } from "pino";
import type { Clock } from "../lib/clock.js";
import { isLoopback, isWildcard, urlHost } from "../lib/hostport.js";
import type { ClusterStatus } from "../cluster/index.js";
import type { SelfPreservationSettings } from "../cluster/index.js";
import type { Config } from "./config.js";
import { BatchError, type Discovery } from "../registry/index.js";
import { startDiscovery } from "./discovery.js";
import { DnsServer, localNetworks } from "../dns/index.js";
import { DockerSource, type DockerSourceStatus } from "../sources/index.js";
import { loadZones, type StaticZones } from "../dns/index.js";
import { createHttpApp } from "../http/index.js";
import { daysLeft, listenHttp, loadTls, type HttpServerHandle, type TlsFiles, type TlsMaterial } from "../http/index.js";
import { Metrics } from "./metrics.js";
import { loadServiceFiles } from "../sources/index.js";
import { FileStore, MemoryStore, type Store } from "../store/index.js";
import { VERSION } from "../lib/version.js";
import { selfInstances } from "./self.js";

/**
 * The server's own instances (self.ts) registered, or with --self-register=false the ones an earlier run left
 * removed. Before cluster mode starts: the first publish carries them, on this node's lease.
 */
async function registerSelf(discovery: Discovery, config: Config, bound: { http: { host: string; port: number; scheme: "http" | "https" }; dns: { host: string; port: number } }, logger: Logger): Promise<void> {
  const inputs = config.selfRegister
    ? selfInstances({ nodeId: discovery.nodeId, clusterName: config.clusterName, domain: config.domain, version: VERSION, ...bound, advertiseAddress: config.advertiseAddress, clientCertificates: config.tlsClientCa !== undefined })
    : [];
  const log = logger.child({ component: "registry" });
  let result: Awaited<ReturnType<Discovery["syncSelf"]>>;
  try {
    result = await discovery.syncSelf(inputs);
  } catch (err) {
    // The server serves without its own entry (a registry loaded past --max-instances, a full disk): it is not
    // found by its own name until the next start, which the operator is told.
    const why = err instanceof BatchError ? err.items.map((i) => `${i.id}: ${i.message}`).join("; ") : (err as Error).message;
    log.warn({ err: why }, "could not register this server as a service: it serves, but is not found by its own name");
    return;
  }
  if (inputs.length > 0) {
    // A listener on loopback only beside one that is not is left out (self.ts): said, so its absence is explained.
    const left = (["api", "dns"] as const).filter((role) => !inputs.some((i) => i.metadata.role === role));
    const notAdvertised = left.length > 0 ? { notAdvertised: left.map((role) => `${role}: listens on loopback only`) } : {};
    log.info({ instances: inputs.map((i) => ({ id: i.id, address: i.address, port: i.port, tags: i.tags })), name: `${inputs[0]!.name}.service.${config.domain}`, ...notAdvertised, ...result }, "registered this server as a service");
  } else if (result.deregistered.length > 0) {
    log.info({ deregistered: result.deregistered }, "self-registration is off: this server's own instances removed");
  }
}

export interface ServerHandle {
  /** Reloads what can change live (zone files, services files, the API's certificate); a broken file keeps what was
   * loaded and is reported. */
  reload(): Promise<{ ok: true; zones: number } | { ok: false; error: string }>;
  readonly discovery: Discovery;
  readonly http: HttpServerHandle;
  readonly dns: DnsServer;
  /** Where DNS listens (UDP and TCP on the same port). */
  readonly dnsAddress: { host: string; port: number };
  /** Base URL of the API, e.g. http://127.0.0.1:8500 (https:// with --tls-cert) */
  readonly url: string;
  stop(): Promise<void>;
}

export interface ServerDeps {
  logger: Logger;
  store?: Store;
  clock?: Clock;
  /** Cluster mode: self-preservation thresholds (tests shorten them). */
  selfPreservation?: Partial<SelfPreservationSettings>;
}

/** Reads the API's certificate and says what it is: a warning under two weeks from its expiry, an error after. */
function readTls(files: TlsFiles, logger: Logger, msg: string): TlsMaterial {
  const material = loadTls(files);
  const left = daysLeft(material.status);
  const { subject, names, notAfter, fingerprint, clientCertificates } = material.status;
  logger.info({ subject, names, notAfter, fingerprint, clientCertificates }, msg);
  if (left < 0) logger.error({ notAfter }, "the API's TLS certificate has expired: clients will refuse it");
  else if (left < 14) logger.warn({ notAfter, daysLeft: Math.floor(left) }, "the API's TLS certificate expires in under two weeks: renew it and send SIGHUP");
  return material;
}

export async function startServer(config: Config, deps: ServerDeps): Promise<ServerHandle> {
  const { logger } = deps;
  const httpLogger = logger.child({ component: "http" });
  // First: a certificate that does not load stops the start before anything is opened.
  const tlsFiles = config.tlsCert !== undefined && config.tlsKey !== undefined ? { cert: config.tlsCert, key: config.tlsKey, clientCa: config.tlsClientCa } : undefined;
  let tls = tlsFiles !== undefined ? readTls(tlsFiles, httpLogger, "TLS certificate loaded") : undefined;
  const store = deps.store ?? (config.inMemory ? new MemoryStore() : new FileStore({ dir: resolve(config.dataDir), logger: logger.child({ component: "store" }) }));
  const discovery = await startDiscovery({
    nodeId: config.nodeId,
    clusterName: config.clusterName,
    cacheTtlMs: config.cacheTtl,
    limits: {
      maxInstances: config.maxInstances,
      maxInstancesPerName: config.maxInstancesPerName,
      maxMetadataBytes: config.maxMetadataBytes,
      maxWatchers: config.maxWatchers,
      maxEventStreams: config.maxEventStreams,
      eventsReplay: config.eventsReplay,
    },
    checks: {
      timeoutMs: config.checkTimeout,
      degradedAfterMs: config.checkDegradedAfter,
      concurrency: config.checkConcurrency,
      failuresBeforeUnhealthy: config.checkFailuresBeforeUnhealthy,
      successesBeforeHealthy: config.checkSuccessesBeforeHealthy,
      backoffMaxMs: config.checkBackoffMax,
      deregisterAfterMs: config.deregisterAfter,
      allowHosts: config.checkAllowHosts ?? [],
      caFile: config.checkCaFile,
      allowExec: config.checksAllowExec,
      serviceAlarmShare: config.checkServiceAlarmShare,
      // Exec checks run commands here: through the API only when the one token writes take is the admin's.
      // A write token is for services registering themselves, which must not be able to run commands.
      authenticatedApi: config.adminToken !== undefined && config.writeToken === undefined,
    },
    logger,
    store,
    ...(deps.clock ? { clock: deps.clock } : {}),
  });
  const readServices = (missingOk: boolean) => (config.servicesDir ? loadServiceFiles(config.servicesDir, { missingOk }) : undefined);
  const dnsLogger = logger.child({ component: "dns" });
  const readZones = () => loadZones([config.zonesDir], { domain: config.domain, cluster: config.clusterName, defaultTtl: config.dnsSoaTtl });
  const logZones = (zones: StaticZones, msg: string) =>
    dnsLogger.info({ dir: config.zonesDir, zones: zones.zones.map((z) => ({ origin: z.origin, file: z.file, records: z.recordCount })) }, msg);
  const dns = new DnsServer({
    settings: {
      domain: config.domain,
      cluster: config.clusterName,
      serviceTtl: config.dnsTtl,
      nodeTtl: config.dnsNodeTtl,
      soaTtl: config.dnsSoaTtl,
      negativeTtl: config.dnsNegativeTtl,
      includeDegraded: config.dnsIncludeDegraded,
      maxAnswers: config.dnsMaxAnswers,
      txtKeys: config.dnsTxtKeys,
      nsAddresses: isWildcard(config.dnsListen.host) ? [] : [config.dnsListen.host],
    },
    view: discovery.registry,
    logger: dnsLogger,
    logQueries: config.dnsLogQueries,
    clients: { trusted: config.dnsTrustedNetworks ?? localNetworks(config.dnsListen.host), rateLimit: config.dnsRateLimit, rateLimitSlip: config.dnsRateLimitSlip },
    tcpMaxConnections: config.dnsTcpMaxConnections,
    tcpIdleMs: config.dnsTcpIdleTimeout,
    routing: discovery.routing,
    ...(config.dnsUpstream ? { upstreams: config.dnsUpstream } : {}),
  });
  discovery.addStatsSource("dns", () => dns.stats());
  let clusterStatus: (() => ClusterStatus) | undefined;
  let dockerStatus: (() => DockerSourceStatus) | undefined;
  const metrics = new Metrics({
    version: VERSION,
    nodeId: discovery.nodeId,
    clusterName: config.clusterName,
    registry: () => discovery.getRegistryStats(),
    dns: () => dns.stats(),
    cluster: () => clusterStatus?.(),
    docker: () => dockerStatus?.(),
    tls: () => tls?.status,
  });
  const app = createHttpApp(discovery, { adminToken: config.adminToken, writeToken: config.writeToken, readToken: config.readToken, metricsOpen: config.metricsOpen, maxBodyBytes: config.maxBodyBytes, logger: httpLogger, metrics,
    compressMinBytes: config.httpCompressMinBytes,
    events: { clientBufferBytes: config.eventsClientBuffer, heartbeatMs: config.eventsHeartbeat },
    nodeAddress: isWildcard(config.httpListen.host) ? "127.0.0.1" : config.httpListen.host, domain: config.domain,
    peerTls: () => tls?.peer,
  });
  let http: HttpServerHandle;
  let dnsAddress: { host: string; port: number };
  try {
    const services = await readServices(true);
    if (services) await discovery.syncServiceFiles(services);
    if (services?.missing) logger.warn({ component: "registry", dir: config.servicesDir }, "the services directory does not exist: no services from files");
    const zones = await readZones();
    dns.setStaticZones(zones);
    logZones(zones, "static zones loaded");
    dnsAddress = await dns.listen(config.dnsListen);
    const upstreams = config.dnsUpstream?.map((u) => `${u.host}:${u.port}`) ?? [];
    dnsLogger.info({ address: `${dnsAddress.host}:${dnsAddress.port}`, transports: ["udp", "tcp"], domain: config.domain, upstreams }, "DNS listening");
    http = await listenHttp(app, config.httpListen.host, config.httpListen.port, {
      maxConnections: config.httpMaxConnections,
      headersTimeoutMs: config.httpHeadersTimeout,
      requestTimeoutMs: config.httpRequestTimeout,
    }, tls);
  } catch (err) {
    await dns.close();
    await discovery.stop();
    throw err;
  }
  const host = urlHost(http.host);
  const url = `${http.scheme}://${host}:${http.port}`;
  httpLogger.info({ address: `${host}:${http.port}`, url, tls: tls !== undefined }, "HTTP API listening");
  if (tls !== undefined) discovery.addStatusSource("tls", () => tls?.status);
  try {
    await registerSelf(discovery, config, { http: { host: http.host, port: http.port, scheme: http.scheme }, dns: dnsAddress }, logger);
  } catch (err) {
    await Promise.all([http.close(), dns.close()]);
    await discovery.stop();
    throw err;
  }
  if (config.store === "etcd") {
    try {
      // Loaded only in cluster mode: etcd3 and grpc add ~0.3 s to every start (measured), and restarts count.
      const { EtcdCluster } = await import("../cluster/index.js");
      const cluster = new EtcdCluster({
        registry: discovery.registry,
        nodeId: discovery.nodeId,
        prefix: `${config.etcdPrefix}/${config.clusterName}`,
        endpoints: config.etcdEndpoints ?? [],
        leaseTtlS: config.etcdLeaseTtl,
        callTimeoutMs: config.etcdCallTimeout,
        apiUrl: config.advertiseUrl ?? (isWildcard(http.host) ? `${http.scheme}://${hostname()}:${http.port}` : url),
        dns: `${dnsAddress.host}:${dnsAddress.port}`,
        logger: logger.child({ component: "cluster" }),
        ...(config.etcdUsername && config.etcdPassword ? { auth: { username: config.etcdUsername, password: config.etcdPassword } } : {}),
        ...(config.etcdCa || config.etcdCert
          ? {
              tls: {
                ...(config.etcdCa ? { ca: readFileSync(config.etcdCa) } : {}),
                ...(config.etcdCert ? { cert: readFileSync(config.etcdCert) } : {}),
                ...(config.etcdKey ? { key: readFileSync(config.etcdKey) } : {}),
              },
            }
          : {}),
        ...(deps.selfPreservation ? { selfPreservation: deps.selfPreservation } : {}),
        routing: discovery.routing,
      });
      discovery.attachCluster(cluster);
      // Routing policies are the cluster's: a change made here goes to etcd first, and every node applies it.
      discovery.routing.setPublisher((changes) => cluster.publishRouting(changes));
      clusterStatus = () => cluster.status();
      await cluster.start();
    } catch (err) {
      await Promise.all([http.close(), dns.close()]);
      await discovery.stop();
      throw err;
    }
  }
  // Containers: connects in the background; an engine that is down is a warning and a retry, not a failed start.
  let docker: DockerSource | undefined;
  if (config.dockerSocket) {
    docker = new DockerSource({
      endpoint: config.dockerSocket,
      hostAddress: config.dockerHostAddress,
      logger: logger.child({ component: "docker" }),
      sync: (inputs) => discovery.syncContainers(inputs),
      setHealth: (id, status) => {
        if (discovery.registry.get(id)?.healthStatus !== status) discovery.registry.setHealth(id, status);
      },
    });
    const source = docker;
    discovery.addStatsSource("docker", () => source.status());
    discovery.addStatusSource("docker", () => source.status());
    dockerStatus = () => source.status();
    await docker.start();
  }
  if (!isLoopback(config.httpListen.host)) {
    // config.ts refuses a read or write token without the admin token: no admin token means no token at all.
    if (!config.adminToken) httpLogger.warn({ address: config.httpListen.host }, "the API listens beyond loopback without --admin-token: anyone who reaches it can register and deregister services");
    else if (!tls) httpLogger.warn({ address: config.httpListen.host }, "the API listens beyond loopback without TLS (--tls-cert): its tokens cross the network in clear text");
    else if (!config.readToken) httpLogger.info({ address: config.httpListen.host }, "the API listens beyond loopback with reads open (no --read-token): anyone who reaches it can list the services");
  }

  let stopping: Promise<void> | undefined;
  return {
    discovery,
    http,
    dns,
    dnsAddress,
    url,
    reload: async () => {
      const errors: string[] = [];
      let zoneCount = dns.zone.statics?.zones.length ?? 0;
      try {
        const fresh = await readZones();
        dns.setStaticZones(fresh);
        logZones(fresh, "static zones reloaded");
        zoneCount = fresh.zones.length;
      } catch (err) {
        dnsLogger.error({ error: (err as Error).message }, "static zones not reloaded: keeping the zones loaded before");
        errors.push((err as Error).message);
      }
      try {
        const services = await readServices(false);
        if (services) await discovery.syncServiceFiles(services);
      } catch (err) {
        logger.error({ component: "registry", error: (err as Error).message }, "services files not reloaded: nothing changed");
        errors.push((err as Error).message);
      }
      if (tlsFiles !== undefined) {
        try {
          const fresh = readTls(tlsFiles, httpLogger, "TLS certificate reloaded: new connections get it");
          http.setTls(fresh);
          tls = fresh;
        } catch (err) {
          httpLogger.error({ error: (err as Error).message }, "TLS certificate not reloaded: keeping the one loaded before");
          errors.push((err as Error).message);
        }
      }
      return errors.length === 0 ? { ok: true, zones: zoneCount } : { ok: false, error: errors.join("\n") };
    },
    stop: () =>
      (stopping ??= (async () => {
        // Blocking queries answer now (with what they have): the HTTP server waits for requests in flight.
        discovery.changes.close();
        // Event streams end (clients reconnect elsewhere or later, with Last-Event-ID): they would hold the close.
        discovery.eventFeed.close();
        await docker?.stop();
        await Promise.all([http.close(), dns.close()]);
        await discovery.stop();
      })()),
  };
}
