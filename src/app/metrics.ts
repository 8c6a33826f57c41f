// Prometheus metrics (GET /metrics): what /v1/stats says, as counters and gauges read at scrape time from the
// parts' own counters, so no DNS query or API request pays anything for them; plus prom-client's process metrics
// (CPU, memory, event-loop delay, GC). Those are per process and sample the event loop every 10 ms, so they start
// at the first scrape: a server nobody scrapes keeps no timer waking it.
import { collectDefaultMetrics, Registry, type Metric } from "prom-client";
import type { ClusterState, ClusterStatus } from "../cluster/index.js";
import type { RegistryStats } from "../registry/index.js";
import type { DnsStats } from "../dns/index.js";
import type { DockerSourceStatus } from "../sources/index.js";
import type { TlsStatus } from "../http/index.js";

const PREFIX = "homelab_discovery_";
const CLUSTER_STATES: readonly ClusterState[] = ["starting", "ok", "degraded", "unreachable", "conflict"];

type Labels = Record<string, string>;
type Sample = readonly [value: number, labels?: Labels];
interface Family {
  name: string;
  help: string;
  type: "counter" | "gauge";
  samples: readonly Sample[];
}

export interface MetricSources {
  version: string;
  nodeId: string;
  clusterName: string;
  registry(): Promise<RegistryStats>;
  dns(): DnsStats;
  /** Undefined unless the node runs in cluster mode. */
  cluster(): ClusterStatus | undefined;
  /** Undefined unless --docker-socket is set. */
  docker?(): DockerSourceStatus | undefined;
  /** Undefined unless the API serves HTTPS (--tls-cert). */
  tls?(): TlsStatus | undefined;
}

export class Metrics {
  readonly contentType = Registry.PROMETHEUS_CONTENT_TYPE;

  constructor(private readonly sources: MetricSources) {}

  /** The exposition text: one reading of every source, so the figures of one scrape belong together. */
  async render(): Promise<string> {
    const s = this.sources;
    const registry = new Registry();
    for (const family of [...families(s, await s.registry(), s.dns(), s.cluster()), ...dockerFamilies(s.docker?.()), ...tlsFamilies(s.tls?.())]) registry.registerMetric(asMetric(family));
    return `${await processMetrics().metrics()}\n${await registry.metrics()}`;
  }
}

let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** A family as prom-client renders it (it only calls get()); the values were read already. */
function asMetric(f: Family): Metric {
  const name = PREFIX + f.name;
  const values = f.samples.map(([value, labels = {}]) => ({ value, labels }));
  return { name, help: f.help, type: f.type, get: async () => ({ name, help: f.help, type: f.type, values, aggregator: "sum" }) } as unknown as Metric;
}

const gauge = (name: string, help: string, samples: readonly Sample[]): Family => ({ name, help, type: "gauge", samples });
const counter = (name: string, help: string, samples: readonly Sample[]): Family => ({ name, help, type: "counter", samples });
const byLabel = (label: string, counts: Record<string, number>): Sample[] => Object.entries(counts).map(([value, n]) => [n, { [label]: value }]);
const byKinds = (label: string, counts: Record<string, Record<string, number>>): Sample[] =>
  Object.entries(counts).flatMap(([kind, byStatus]) => Object.entries(byStatus).map(([value, n]): Sample => [n, { kind, [label]: value }]));

function dockerFamilies(d: DockerSourceStatus | undefined): Family[] {
  if (d === undefined) return [];
  return [
    gauge("docker_connected", "1 while the container engine's event stream is open (--docker-socket).", [[d.connected ? 1 : 0]]),
    gauge("docker_containers", "Running containers with homelab.* labels at the last sync.", [[d.containers]]),
    gauge("docker_instances", "Instances those containers declare.", [[d.instances]]),
    counter("docker_syncs_total", "Times the registry was made to match the engine's containers.", [[d.syncs]]),
  ];
}

function tlsFamilies(t: TlsStatus | undefined): Family[] {
  if (t === undefined) return [];
  return [
    // As the blackbox exporter's probe_ssl_earliest_cert_expiry: alert on `... - time() < 14 * 86400`.
    gauge("tls_certificate_expiry_timestamp_seconds", "When the API's TLS certificate (--tls-cert) expires, Unix seconds.", [[Date.parse(t.notAfter) / 1000]]),
    gauge("tls_certificate_loaded_timestamp_seconds", "When that certificate was read (start, or the last SIGHUP that loaded it), Unix seconds.", [[Date.parse(t.loadedAt) / 1000]]),
  ];
}

function families(s: MetricSources, r: RegistryStats, d: DnsStats, c: ClusterStatus | undefined): Family[] {
  const out = [
    gauge("build_info", "Version, node id and cluster name of this server (always 1).", [[1, { version: s.version, node_id: s.nodeId, cluster: s.clusterName }]]),
    gauge("instances", "Instances this node knows (its own and, in cluster mode, the other nodes'), by health.", byLabel("health", r.byHealth)),
    gauge("local_instances", "Instances registered on this node.", [[r.localCount]]),
    gauge("services", "Distinct service names.", [[r.services]]),
    gauge("registry_generation", "The registry's generation: grows by one with every change.", [[r.generation]]),
    gauge("blocking_queries", "API queries waiting for a change (?index=).", [[r.blockingQueries]]),
    counter("query_cache_hits_total", "API queries answered from the query cache.", [[r.cache.hits]]),
    counter("query_cache_misses_total", "API queries the query cache did not hold.", [[r.cache.misses]]),
    counter("query_cache_invalidations_total", "Query cache entries dropped because what they answered changed.", [[r.cache.invalidations]]),
    gauge("query_cache_entries", "Entries in the query cache.", [[r.cache.entries]]),
    counter("health_checks_total", "Health checks run (heartbeats are not runs of ours).", [[r.checks.checks]]),
    gauge("health_checks_running", "Health checks in flight.", [[r.checks.running]]),
    gauge("health_checks_scheduled", "Checks with a next run scheduled.", [[r.checks.scheduled]]),
    gauge("health_check_status", "Checks by kind and their status now (after the thresholds); an instance has one check or a list of them.", byKinds("status", r.checks.byKind)),
    gauge("health_service_alarm", "1 for each service with more than --check-service-alarm-share of its checked instances unhealthy at once.", r.checks.alarms.map((a) => [1, { service: a.service }])),
    gauge("health_service_alarm_unhealthy_ratio", "The unhealthy share of each alarmed service's checked instances.", r.checks.alarms.map((a) => [a.unhealthy / a.instances, { service: a.service }])),
    counter("health_service_alarms_total", "Times a service's alarm was raised.", [[r.checks.alarmsRaised]]),
    counter("health_check_runs_total", "Check runs by kind and what they saw (heartbeats and expired TTLs are ttl runs).", byKinds("result", r.checks.runsByKind)),
    counter("dns_requests_total", "DNS messages received, by transport.", [[d.udp, { proto: "udp" }], [d.tcp, { proto: "tcp" }]]),
    counter("dns_request_types_total", "DNS questions by type (types without a name here count as TYPE<n> up to 255, then other).", byLabel("type", d.byType)),
    counter("dns_responses_total", "DNS responses by rcode (forwarded answers by the upstream's rcode).", byLabel("rcode", d.byRcode)),
    counter("dns_dropped_total", "DNS messages dropped without an answer (responses, headers too short to answer).", [[d.dropped]]),
    counter("dns_truncated_total", "UDP answers sent with TC set because the whole answer did not fit.", [[d.truncated]]),
    counter("dns_rate_limited_total", "UDP responses to untrusted clients held back by --dns-rate-limit: dropped, or sent truncated (slip).", [[d.rateLimited, { action: "drop" }], [d.slipped, { action: "slip" }]]),
    counter("dns_forward_refused_total", "Queries for names outside ours from clients outside --dns-trusted-networks, answered REFUSED (never an open resolver).", [[d.forwardRefused]]),
    counter("dns_tcp_refused_total", "DNS TCP connections closed on arrival because --dns-tcp-max-connections were open.", [[d.tcpRefused]]),
    counter("dns_routing_fallbacks_total", "DNS answers built while a service's routing policy selected no healthy instance: every healthy instance answered instead.", [[d.routingFallbacks]]),
    gauge("routing_policies", "Services with a version-aware routing policy (PUT /v1/routing/<name>).", [[r.routingPolicies]]),
    gauge("routing_rollouts_running", "Rollouts (POST /v1/routing/<name>/rollout) moving traffic now.", [[r.rollouts.running]]),
    counter("routing_rollouts_total", "Rollouts by how they ended (started: begun).", [[r.rollouts.started, { result: "started" }], [r.rollouts.completed, { result: "completed" }], [r.rollouts.rolledBack, { result: "rolled_back" }], [r.rollouts.cancelled, { result: "cancelled" }]]),
    counter("routing_rollout_steps_total", "Steps rollouts took after their first.", [[r.rollouts.steps]]),
    counter("dns_forwarded_total", "DNS queries forwarded to --dns-upstream.", [[d.forwarded]]),
    counter("dns_errors_total", "DNS queries that failed in the handler or upstream (answered SERVFAIL).", [[d.errors]]),
    counter("dns_cache_hits_total", "DNS queries answered from the encoded-answer cache.", [[d.cacheHits]]),
    counter("dns_cache_misses_total", "DNS queries whose answer had to be built.", [[d.cacheMisses]]),
    counter("dns_cache_refreshes_total", "DNS answers a registry change dropped and built again at the change, because they had been asked: their next query is a hit.", [[d.cacheRefreshes]]),
    gauge("dns_cache_entries", "Encoded answers cached (those a registry change affects are dropped, and built again when they had been asked).", [[d.cachedAnswers]]),
    gauge("dns_cache_bytes", "Memory the encoded-answer cache holds.", [[d.cachedBytes]]),
  ];
  if (c === undefined) return out;
  const states = new Set([...CLUSTER_STATES, c.state]);
  return [
    ...out,
    gauge("cluster_state", "Cluster state: 1 for the current one (ok, degraded, unreachable, starting).", [...states].map((state) => [state === c.state ? 1 : 0, { state }])),
    gauge("cluster_replica_stale", "1 while this node's replica of the cluster may be missing changes.", [[c.replica.stale ? 1 : 0]]),
    gauge("cluster_replica_stale_seconds", "How long the replica has been stale (0 when it is not).", [[c.replica.staleForMs / 1000]]),
    gauge("cluster_replica_revision", "The etcd revision the replica has applied.", [[c.replica.revision]]),
    gauge("cluster_remote_instances", "Instances of other nodes in the replica.", [[c.replica.remoteInstances]]),
    gauge("cluster_nodes", "Nodes in the cluster, this one included.", [[c.nodes.length]]),
    gauge("cluster_pending_publish", "Changes of this node not yet written to etcd.", [[c.pendingPublish]]),
    gauge("cluster_id_conflicts", "Instance ids whose copy this node dropped because another node had published them first (the latest 20).", [[c.conflicts.length]]),
    gauge("cluster_self_preservation_active", "1 while mass expiry is held back (self-preservation).", [[c.selfPreservation.active ? 1 : 0]]),
    counter("cluster_resyncs_total", "Full reads of the cluster (start, compaction, silent watch, POST /v1/sync).", [[c.counters.resyncs]]),
    counter("cluster_published_total", "Instance changes this node wrote to etcd.", [[c.counters.published]]),
    counter("cluster_publish_failures_total", "Instance changes etcd refused (an id another node owns).", [[c.counters.publishFailures]]),
    counter("cluster_lease_losses_total", "Times this node's etcd lease expired and its instances were republished.", [[c.counters.leaseLosses]]),
    counter("cluster_watch_errors_total", "etcd watches cancelled (compaction, errors), each followed by a resync.", [[c.counters.watchErrors]]),
    counter("cluster_watch_stalls_total", "etcd watches found silent by the watch probe, each moved and resynced.", [[c.counters.watchStalls]]),
  ];
}
