// The seed's in-process API: one Discovery per process holds the registry, its query cache and the
// on-demand checks. The HTTP routes call these same methods, and DiscoveryClient offers them over HTTP.
import { hostname } from "node:os";
import pino, { type Logger } from "pino";
import { z } from "zod";
import { systemClock, type Clock } from "../lib/clock.js";
import { ConflictError, InvalidError, NotFoundError, UnavailableError } from "../lib/errors.js";
import type { CheckerStats, HealthCheckResult, HealthChecks, HealthChecksFactory } from "./checks.js";
import { QueryCache, type CacheStats } from "./cache.js";
import { compileQuery, serviceQuerySchema, type CompiledQuery, toPlainQuery, type ServiceQuery, type ServiceQueryBuilder } from "./query.js";
import { DEFAULT_EVENT_FEED, EventFeed, followEvents, type ServiceEvent } from "./events.js";
import { ChangeWaiters, DEFAULT_MAX_WAITERS, DEFAULT_WAIT_MS, MAX_WAIT_MS } from "./watch.js";
import { BatchError, DEFAULT_REGISTRY_LIMITS, Registry, type RegistryLimits, type WriteItemError, type WriteOp } from "./registry.js";
import {
  parseOrThrow,
  serviceIdSchema,
  serviceInputSchema,
  toIssues,
  type HealthStatus,
  type ServiceEntry,
  type EntrySource,
  type ParsedServiceInput,
  type ServiceInput,
} from "../model/index.js";
import { entryMatches } from "../model/index.js";
import { FileStore, MemoryStore, type Store } from "../store/index.js";
import { RoutingTable } from "./routing.js";
import { Rollouts, type RolloutCounters } from "./rollout.js";
import { VERSION } from "../lib/version.js";
import { decodeSnapshot, encodeSnapshot, type RestoreResult } from "./snapshot.js";
import { routingPolicySchema } from "../model/index.js";

/** Services a source declares, as src/sources/files.ts reads them from a directory. */
export interface DeclaredServices {
  readonly services: readonly ParsedServiceInput[];
  /** The files read, for the log line. */
  readonly files: readonly string[];
  /** Where each service (by id) was declared. */
  readonly sources: ReadonlyMap<string, { readonly file: string }>;
}

export interface Limits extends RegistryLimits {
  /** Blocking queries waiting at once. */
  maxWatchers: number;
  /** Event streams (and library event iterators) open at once. */
  maxEventStreams: number;
  /** Events kept for a reconnecting client's replay (Last-Event-ID). */
  eventsReplay: number;
}
export const DEFAULT_LIMITS: Limits = {
  ...DEFAULT_REGISTRY_LIMITS,
  maxWatchers: DEFAULT_MAX_WAITERS,
  maxEventStreams: DEFAULT_EVENT_FEED.maxSubscribers,
  eventsReplay: DEFAULT_EVENT_FEED.ringSize,
};

export interface DiscoveryOptions {
  /** This node's id (a DNS label); defaults to the host name. */
  nodeId?: string;
  clusterName?: string;
  /** How long a query result may be served from cache; changes invalidate it at once anyway. */
  cacheTtlMs?: number;
  /** Bounds on instances, metadata and blocking queries (defaults in DEFAULT_LIMITS). */
  limits?: Partial<Limits>;
  /** Builds the health checker (src/health's, wired in src/app: the registry knows no probe). */
  checker: HealthChecksFactory;
  store?: Store;
  clock?: Clock;
  /** The root logger: the registry and the health checker log through children of it (component registry, health). */
  logger?: Logger;
}

export interface RegistryStats {
  nodeId: string;
  clusterName: string;
  generation: number;
  /** The index a query answered now carries (X-Index), and how many blocking queries wait for a change. */
  index: number;
  blockingQueries: number;
  /** Instances registered on this node. */
  localCount: number;
  /** Instances known to this node (all of them on a single node). */
  totalCount: number;
  services: number;
  byHealth: Record<HealthStatus, number>;
  cache: CacheStats;
  store: string;
  checks: CheckerStats;
  /** Services with a routing policy (issue 21). */
  routingPolicies: number;
  /** Rollouts (issue 21): running now, and what the rollouts did since the start. */
  rollouts: RolloutCounters & { running: number };
  /** Stats of the other parts of the process (DNS, ...), by name. */
  [part: string]: unknown;
}

export interface HealthCheckSummary {
  checked: number;
  byStatus: Record<HealthStatus, number>;
  results: HealthCheckResult[];
}

export interface SyncResult {
  mode: "standalone" | "cluster";
  synced: boolean;
  message: string;
  generation: number;
  /** Cluster mode: the replica and lease after the sync. */
  cluster?: unknown;
}

/** The node an instance belongs to, in cluster mode: writes for it run there. */
export interface Owner {
  nodeId: string;
  /** Undefined when the replica knows its instances but not (yet) its node key. */
  apiUrl: string | undefined;
}

/** What Discovery needs from cluster mode (src/cluster/cluster.ts): owners, status, sync and leaving. */
export interface ClusterLink {
  /** The owner of an instance when it is another node; undefined when it is this one (or nobody). */
  ownerOf(id: string): Owner | undefined;
  status(): { state: string; replica: { stale: boolean } };
  /** How long the replica has been stale, ms; 0 while it is in sync. */
  staleForMs(): number;
  sync(force: boolean): Promise<unknown>;
  stop(): Promise<void>;
}

export const heartbeatSchema = z.strictObject({
  status: z.enum(["healthy", "degraded", "unhealthy"]).default("healthy"),
  note: z.string().max(1024, "must be at most 1024 characters").optional(),
  /** Which TTL check, when the instance has several (its id in `checks`). */
  check: z.string().max(64).optional(),
});
export type HeartbeatReport = z.input<typeof heartbeatSchema>;

export const maintenanceSchema = z.strictObject({
  enable: z.boolean(),
  reason: z.string().max(512, "must be at most 512 characters").optional(),
});
export type MaintenanceRequest = z.input<typeof maintenanceSchema>;

export const watchOptionsSchema = z.strictObject({
  index: z.number().int().nonnegative().optional(),
  waitMs: z.number().int().positive().max(MAX_WAIT_MS, "may be at most 600000 (10 minutes)").default(DEFAULT_WAIT_MS),
});

export const bulkRequestSchema = z.strictObject({
  register: z.array(z.unknown()).max(10_000, "at most 10000 registrations per call").default([]),
  deregister: z.array(z.unknown()).max(10_000, "at most 10000 deregistrations per call").default([]),
});
export interface BulkRequest {
  register?: ServiceInput[];
  deregister?: string[];
}
export interface BulkResult {
  registered: ServiceEntry[];
  deregistered: string[];
  generation: number;
}

export interface WatchOptions {
  index?: number;
  waitMs?: number;
  /** Ends the wait early; the call then rejects with the signal's reason. */
  signal?: AbortSignal;
}
export interface EventsOptions {
  /** The index of the last event seen (an SSE Last-Event-ID): what came after it first, or a reset event. */
  after?: number;
  /** Ends the iteration (it returns; nothing throws). */
  signal?: AbortSignal;
}

export interface WatchResult {
  /** Pass it back as `index` to wait for the next change. */
  index: number;
  services: ServiceEntry[];
}
export interface WatchServiceResult {
  /** Pass it back as `index` to wait for the next change. */
  index: number;
  /** The instance, or null while it is not registered: a watch can wait for it to appear, or see it go. */
  service: ServiceEntry | null;
}

/** What embedded and remote callers share: `Discovery` implements it in-process, `DiscoveryClient` over HTTP. */
export interface DiscoveryApi {
  /** Registers or replaces an instance; replacing one declared in a services file needs `force`. */
  registerService(service: ServiceInput, opts?: { force?: boolean }): Promise<ServiceEntry>;
  deregisterService(id: string, opts?: { force?: boolean }): Promise<ServiceEntry>;
  getService(id: string): Promise<ServiceEntry>;
  discoverServices(query?: ServiceQuery | ServiceQueryBuilder): Promise<ServiceEntry[]>;
  /**
   * A blocking query: with no `index`, the answer now; with the `index` of an earlier answer, waits until the
   * answer may have changed (or `waitMs`, default 5 min, at most 10) and answers then. Pass each answer's index
   * to the next call.
   */
  watchServices(query: ServiceQuery | ServiceQueryBuilder | undefined, opts?: WatchOptions): Promise<WatchResult>;
  /** One instance, as a blocking query: with `index`, answers once the instance may have changed (or `waitMs`). */
  watchService(id: string, opts?: WatchOptions): Promise<WatchServiceResult>;
  /**
   * What happens to the instances a query matches (before or after the change), as it happens: registered,
   * deregistered, health, maintenance, each with the instance and its index; `reset` when events were lost
   * (read the list again). With `after`, the events since that index first.
   */
  serviceEvents(query?: ServiceQuery | ServiceQueryBuilder, opts?: EventsOptions): AsyncGenerator<ServiceEvent>;
  /** All-or-nothing; an instance declared in a services file is registered or removed only with `force`. */
  bulk(request: BulkRequest, opts?: { force?: boolean }): Promise<BulkResult>;
  healthCheckService(id: string): Promise<HealthCheckResult>;
  healthCheckAll(): Promise<HealthCheckSummary>;
  /** A TTL instance's heartbeat: healthy unless a status is given. */
  heartbeat(id: string, report?: HeartbeatReport): Promise<ServiceEntry>;
  /** Hides an instance from DNS and healthy queries (enable) or brings it back. */
  setMaintenance(id: string, maintenance: MaintenanceRequest): Promise<ServiceEntry>;
  getRegistryStats(): Promise<RegistryStats>;
  clearCache(): Promise<{ cleared: number }>;
  syncRegistry(opts?: { force?: boolean }): Promise<SyncResult>;
  stop(): Promise<void>;
}

export class Discovery implements DiscoveryApi {
  readonly registry: Registry;
  readonly cache: QueryCache;
  /** Blocking queries: waits for a change that could alter a query's answer. */
  readonly changes: ChangeWaiters;
  /** The change feed as events, with a ring for replay (GET /v1/events, serviceEvents). */
  readonly eventFeed: EventFeed;
  readonly nodeId: string;
  readonly clusterName: string;
  readonly logger: Logger;
  readonly startedAt: number;
  private readonly clock: Clock;
  private readonly store: Store;
  readonly checker: HealthChecks;
  private stopped = false;
  private readonly statsSources = new Map<string, () => unknown>();
  private readonly statusSources = new Map<string, () => unknown>();
  private cluster: ClusterLink | undefined;
  /** Version-aware routing policies by service name (routing.ts), beside the store's data when it has a directory. */
  readonly routing: RoutingTable;
  /** Gradual shifts between versions, each step a routing policy (rollout.ts). */
  readonly rollouts: Rollouts;

  private constructor(opts: DiscoveryOptions) {
    this.clock = opts.clock ?? systemClock;
    // Each part gets its own child of the given logger: a child of a child with the same key would write
    // "component" twice in one JSON line.
    const root = opts.logger ?? pino({ level: "silent" });
    this.logger = root.child({ component: "registry" });
    this.nodeId = opts.nodeId ?? defaultNodeId();
    this.clusterName = opts.clusterName ?? "homelab";
    this.store = opts.store ?? new MemoryStore();
    this.routing = new RoutingTable(this.store instanceof FileStore ? this.store.dir : undefined);
    this.startedAt = this.clock.now();
    const limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.registry = new Registry({ store: this.store, clock: this.clock, nodeId: this.nodeId, logger: this.logger, limits });
    this.cache = new QueryCache(this.clock, opts.cacheTtlMs ?? 60_000);
    this.registry.onChange((changes) => this.cache.invalidate(changes));
    // Routed answers (?routed=true, the providers) follow a policy change at once: the cache holds none of the old.
    this.routing.onChange(() => this.cache.clear());
    this.rollouts = new Rollouts(this.routing, this.registry, this.clock, root.child({ component: "rollout" }));
    // After the cache's listener, so a woken query renders the new answer.
    this.changes = new ChangeWaiters(this.registry, this.clock, Date.now(), limits.maxWatchers);
    this.eventFeed = new EventFeed(this.registry, (generation) => this.changes.indexOf(generation), { ringSize: limits.eventsReplay, maxSubscribers: limits.maxEventStreams });
    this.routing.onChange((name) => this.routingChanged(name));
    this.checker = opts.checker(this.registry, this.clock, root.child({ component: "health" }));
  }

  /**
   * A policy changed (by hand, a rollout, a restore): a new index, the blocking queries on the name answered
   * (their routed answers differ), and a `routing` event on the feed.
   */
  private routingChanged(name: string): void {
    const index = this.changes.indexOf(this.registry.advance());
    this.changes.touch(name, index);
    const stored = this.routing.get(name);
    const split = stored === undefined ? null : stored.split.map((s) => ({ version: s.version, weight: s.weight }));
    // The rollout that made this change: one running, or one that ended with it (same time); not one ended before.
    const r = stored?.rollout;
    const made = r !== undefined && (r.state === "running" || r.endedAt === stored!.updatedAt);
    const rollout = made ? { from: r.from, to: r.to, state: r.state, percent: split?.find((s) => s.version === r.to)?.weight ?? 0, ...(r.reason !== undefined ? { reason: r.reason } : {}) } : undefined;
    this.eventFeed.note({ type: "routing", index, name, split, ...(rollout ? { rollout } : {}) });
  }

  /** Creates the registry and loads what the store holds. */
  static async start(opts: DiscoveryOptions): Promise<Discovery> {
    const discovery = new Discovery(opts);
    const restored = await discovery.registry.load();
    const policies = await discovery.routing.load();
    discovery.rollouts.resume();
    discovery.checker.start();
    const where = discovery.store instanceof FileStore ? { dataDir: discovery.store.dir, ...discovery.store.loadReport } : {};
    discovery.logger.info({ nodeId: discovery.nodeId, store: discovery.store.kind, restored, ...(policies > 0 ? { routingPolicies: policies } : {}), ...where }, "registry ready");
    return discovery;
  }

  async registerService(service: ServiceInput, opts: { force?: boolean } = {}): Promise<ServiceEntry> {
    const input = parseOrThrow(serviceInputSchema, service, "service");
    const refused = this.checker.refusal(input);
    if (refused !== undefined) throw new InvalidError(`invalid service: ${refused.field}: ${refused.message}`, [{ path: [refused.field], message: refused.message }]);
    const before = this.registry.get(input.id);
    // Replaced through the API, it would stop being the file's (and a later DELETE would need no force), until a
    // reload put the file's version back: the file is where it changes.
    if (before?.source !== undefined && opts.force !== true) throw new ConflictError(`service ${input.id} ${sourceConflict(before, "change")}, or re-register with force`);
    const entry = await this.registry.register(input);
    this.logger.info({ id: entry.id, name: entry.name, healthStatus: entry.healthStatus }, before ? "service re-registered" : "service registered");
    return entry;
  }

  /** Deregisters an instance; one declared in a services file needs `force` (the file would bring it back on reload). */
  async deregisterService(id: string, opts: { force?: boolean } = {}): Promise<ServiceEntry> {
    const existing = this.registry.get(parseOrThrow(serviceIdSchema, id, "service id"));
    if (existing?.source !== undefined && opts.force !== true) throw new ConflictError(`service ${id} ${sourceConflict(existing, "remove")}, or deregister with force`);
    const entry = await this.registry.deregister(id);
    this.logger.info({ id: entry.id, name: entry.name }, "service deregistered");
    return entry;
  }

  /**
   * Makes the registry match the services files: declared services registered (or re-registered when changed),
   * file-declared services no longer declared deregistered, the rest untouched. One all-or-nothing batch.
   */
  async syncServiceFiles(set: DeclaredServices): Promise<{ registered: string[]; deregistered: string[]; unchanged: number }> {
    const refused = set.services.flatMap((input) => {
      const why = this.checker.refusal(input, "file");
      return why === undefined ? [] : [`${set.sources.get(input.id)?.file ?? "?"}: ${input.id}: ${why.field}: ${why.message}`];
    });
    // The whole set or nothing, as for a file with a bad field: a reload then keeps what was loaded before.
    if (refused.length > 0) throw new InvalidError(refused.join("\n"));
    const { skipped: _, ...result } = await this.applyDeclared("file", set.services, (input, entry) => {
      if (entry !== undefined && entry.source !== "file") {
        this.logger.warn({ id: input.id, file: set.sources.get(input.id)?.file }, "a services file declares an instance registered through the API: the file's replaces it");
      }
      return true;
    });
    this.logger.info({ files: set.files.length, ...result }, "services files applied");
    return result;
  }

  /**
   * Makes the registry match what the container source declares (src/sources/docker.ts): its instances
   * registered (or re-registered when changed), the container source's instances no longer declared deregistered.
   * Instances another source or the API holds under the same id are left alone and reported.
   */
  async syncContainers(services: readonly ParsedServiceInput[]): Promise<{ registered: string[]; deregistered: string[]; unchanged: number; conflicts: string[] }> {
    const { skipped, ...result } = await this.applyDeclared("docker", services, (input, entry) => (entry === undefined || entry.source === "docker") && this.checker.refusal(input, "docker") === undefined);
    return { ...result, conflicts: skipped };
  }

  /**
   * Makes the server's own instances (src/app/self.ts, --self-register) what it declares now: registered, or
   * re-registered when changed; its earlier ones no longer declared (another node id, the setting turned off)
   * deregistered. One batch. Their checks may go to loopback (CheckOrigin "self").
   */
  async syncSelf(inputs: readonly ParsedServiceInput[]): Promise<{ registered: string[]; deregistered: string[]; unchanged: number }> {
    for (const input of inputs) {
      const why = this.checker.refusal(input, "self");
      if (why !== undefined) throw new InvalidError(`the server's own instance ${input.id}: ${why.field}: ${why.message}`);
    }
    const { skipped: _, ...result } = await this.applyDeclared("self", inputs, (input, entry) => {
      if (entry !== undefined && entry.source !== "self") this.logger.warn({ id: input.id, source: entry.source ?? "api" }, "an instance holds the id of the server's own registration: the server's replaces it");
      return true;
    });
    return result;
  }

  /**
   * What syncServiceFiles and syncContainers share: a source's declared inputs registered (unless `take` says
   * no: skipped), re-registered when changed, left alone when unchanged; the source's instances it no longer
   * declares deregistered. One batch.
   */
  private async applyDeclared(
    source: EntrySource,
    inputs: readonly ParsedServiceInput[],
    take: (input: ParsedServiceInput, entry: ServiceEntry | undefined) => boolean,
  ): Promise<{ registered: string[]; deregistered: string[]; unchanged: number; skipped: string[] }> {
    const declared = new Set(inputs.map((s) => s.id));
    const ops: WriteOp[] = [];
    const skipped: string[] = [];
    let unchanged = 0;
    for (const input of inputs) {
      const entry = this.registry.get(input.id);
      if (entry !== undefined && entry.source === source && entryMatches(entry, input)) unchanged += 1;
      else if (!take(input, entry)) skipped.push(input.id);
      else ops.push({ op: "register", input, source });
    }
    // This node's only: in cluster mode the replica holds other nodes' instances of the same source, which only
    // their owners may remove (a deregister of one would fail the whole batch: owned_elsewhere).
    for (const entry of this.registry.localValues()) if (entry.source === source && !declared.has(entry.id)) ops.push({ op: "deregister", id: entry.id });
    const changes = ops.length > 0 ? await this.registry.write(ops) : [];
    return {
      registered: changes.filter((c) => c.after !== undefined).map((c) => c.id),
      deregistered: changes.filter((c) => c.after === undefined).map((c) => c.id),
      unchanged,
      skipped,
    };
  }

  async getService(id: string): Promise<ServiceEntry> {
    const entry = this.registry.get(id);
    if (entry === undefined) throw new NotFoundError(`service ${id} is not registered`);
    return entry;
  }

  async discoverServices(query?: ServiceQuery | ServiceQueryBuilder): Promise<ServiceEntry[]> {
    return [...this.discover(toPlainQuery(query))];
  }

  async watchServices(query: ServiceQuery | ServiceQueryBuilder | undefined, opts: WatchOptions = {}): Promise<WatchResult> {
    const compiled = compileQuery(parseOrThrow(serviceQuerySchema, toPlainQuery(query), "query"));
    await this.waitForChange(compiled.name ?? null, opts);
    return { index: this.changes.current, services: [...this.discoverCompiled(compiled)] };
  }

  async watchService(id: string, opts: WatchOptions = {}): Promise<WatchServiceResult> {
    const key = parseOrThrow(serviceIdSchema, id, "service id");
    // Changes are indexed by name: the instance's own, or any name while it is not registered.
    await this.waitForChange(this.registry.get(key)?.name ?? null, opts);
    return { index: this.changes.current, service: this.registry.get(key) ?? null };
  }

  async *serviceEvents(query?: ServiceQuery | ServiceQueryBuilder, opts: EventsOptions = {}): AsyncGenerator<ServiceEvent> {
    const compiled = compileQuery(parseOrThrow(serviceQuerySchema, toPlainQuery(query), "query"));
    const after = opts.after === undefined ? undefined : parseOrThrow(z.number().int().nonnegative(), opts.after, "after");
    yield* followEvents(this.eventFeed, compiled, { ...(after === undefined ? {} : { after }), ...(opts.signal ? { signal: opts.signal } : {}) });
  }

  /** With `opts.index`, waits until something that could change an answer about `name` changed, or `waitMs`. */
  private async waitForChange(name: string | null, opts: WatchOptions): Promise<void> {
    const { signal, ...rest } = opts;
    const { index, waitMs } = parseOrThrow(watchOptionsSchema, rest, "watch options");
    if (index !== undefined) await this.changes.wait(name, index, waitMs, signal);
    signal?.throwIfAborted();
  }

  /** The query, served from cache when it can be; the array is shared with the cache and must not be changed. */
  discover(query: ServiceQuery): readonly ServiceEntry[] {
    return this.discoverCompiled(compileQuery(parseOrThrow(serviceQuerySchema, query, "query")));
  }

  discoverCompiled(compiled: CompiledQuery): readonly ServiceEntry[] {
    const key = `q${compiled.key}`;
    const cached = this.cache.get<readonly ServiceEntry[]>(key);
    if (cached !== undefined) return cached;
    const result = this.registry.query(compiled);
    this.cache.set(key, result, compiled.name ?? null);
    return result;
  }

  /**
   * A rendered response cached under the caller's own key (the HTTP route uses the raw query string), so a
   * repeated request costs one map lookup. `render` runs only on a miss and may throw for bad input.
   */
  cachedRender(key: string, render: () => { body: string; name: string | null }): string {
    const cached = this.cache.get<string>(key);
    if (cached !== undefined) return cached;
    const { body, name } = render();
    this.cache.set(key, body, name);
    return body;
  }

  async bulk(request: BulkRequest, opts: { force?: boolean } = {}): Promise<BulkResult> {
    const parsed = parseOrThrow(bulkRequestSchema, request, "bulk request");
    const ops: WriteOp[] = [];
    const items: WriteItemError[] = [];
    // The rule registerService and deregisterService keep: a file's instance changes in its file, or with force.
    const fileDeclared = (index: number, id: string, what: "change" | "remove"): boolean => {
      const entry = this.registry.get(id);
      if (opts.force === true || entry?.source === undefined) return false;
      items.push({ index, id, code: entry.source === "file" ? "file_declared" : "container_declared", message: `service ${id} ${sourceConflict(entry, what)}, or send the bulk call with force` });
      return true;
    };
    // An id twice in one call is a mistake, not "the last one wins": refused, like register plus deregister.
    const registerIds = new Map<string, number>();
    const deregisterIds = new Set<string>();
    parsed.register.forEach((raw, index) => {
      const result = serviceInputSchema.safeParse(raw);
      const first = result.success ? registerIds.get(result.data.id) : undefined;
      if (result.success && first !== undefined) {
        items.push({ index, id: result.data.id, code: "conflict", message: `registered twice in the same call (also at index ${first})` });
      } else if (result.success) {
        if (fileDeclared(index, result.data.id, "change")) return;
        const refused = this.checker.refusal(result.data);
        if (refused !== undefined) {
          items.push({ index, id: result.data.id, code: "invalid", message: `${refused.field}: ${refused.message}` });
          return;
        }
        ops.push({ op: "register", input: result.data });
        registerIds.set(result.data.id, index);
      } else {
        const id = typeof (raw as { id?: unknown })?.id === "string" ? (raw as { id: string }).id : "";
        const issues = toIssues(result.error);
        const message = issues.map((i) => `${i.path.join(".") || "service"}: ${i.message}`).join("; ");
        items.push({ index, id, code: "invalid", message });
      }
    });
    parsed.deregister.forEach((raw, i) => {
      const index = parsed.register.length + i;
      const result = serviceIdSchema.safeParse(raw);
      if (!result.success) items.push({ index, id: String(raw), code: "invalid", message: `id: ${result.error.issues[0]?.message}` });
      else if (registerIds.has(result.data))
        items.push({ index, id: result.data, code: "conflict", message: "registered and deregistered in the same call" });
      else if (deregisterIds.has(result.data)) items.push({ index, id: result.data, code: "conflict", message: "deregistered twice in the same call" });
      else if (this.registry.get(result.data) === undefined)
        items.push({ index, id: result.data, code: "not_found", message: `service ${result.data} is not registered` });
      else if (!fileDeclared(index, result.data, "remove")) {
        ops.push({ op: "deregister", id: result.data });
        deregisterIds.add(result.data);
      }
    });
    if (items.length > 0) throw conflictOrInvalid(new BatchError(items, parsed.register.length + parsed.deregister.length));

    const changes = await this.registry.write(ops).catch((err: unknown) => {
      throw err instanceof BatchError ? conflictOrInvalid(err) : err;
    });
    const result: BulkResult = { registered: [], deregistered: [], generation: this.registry.generation };
    for (const change of changes) {
      if (change.after !== undefined) result.registered.push(change.after);
      else result.deregistered.push(change.id);
    }
    this.logger.info({ registered: result.registered.length, deregistered: result.deregistered.length }, "bulk write applied");
    return result;
  }

  async healthCheckService(id: string): Promise<HealthCheckResult> {
    return this.checker.checkNow(id);
  }

  async healthCheckAll(): Promise<HealthCheckSummary> {
    const results = await this.checker.checkAll();
    const byStatus = { healthy: 0, degraded: 0, unhealthy: 0, unknown: 0 } satisfies Record<HealthStatus, number>;
    for (const r of results) byStatus[r.status] += 1;
    return { checked: results.length, byStatus, results };
  }

  async heartbeat(id: string, report: HeartbeatReport = {}): Promise<ServiceEntry> {
    const { status, note, check } = parseOrThrow(heartbeatSchema, report, "heartbeat");
    return this.checker.heartbeat(id, status, note, check);
  }

  async setMaintenance(id: string, request: MaintenanceRequest): Promise<ServiceEntry> {
    const { enable, reason } = parseOrThrow(maintenanceSchema, request, "maintenance request");
    const entry = await this.registry.setMaintenance(id, enable ? (reason ?? "") : undefined);
    this.logger.info({ id, name: entry.name, maintenance: enable, reason }, enable ? "maintenance on" : "maintenance off");
    return entry;
  }

  /** Cluster mode: joins this Discovery to the cluster (writes for other nodes' instances, status, sync, stop). */
  attachCluster(cluster: ClusterLink): void {
    this.cluster = cluster;
    this.addStatsSource("cluster", () => cluster.status());
  }

  /** Cluster mode: how long this node's replica of the cluster has been stale, ms (0: in sync, or no cluster). */
  replicaStaleForMs(): number {
    return this.cluster?.staleForMs() ?? 0;
  }

  /** The owner of an instance when it is another node of the cluster (writes for it are forwarded there). */
  foreignOwner(id: string): Owner | undefined {
    return this.cluster?.ownerOf(id);
  }

  async getRegistryStats(): Promise<RegistryStats> {
    return {
      nodeId: this.nodeId,
      clusterName: this.clusterName,
      generation: this.registry.generation,
      index: this.changes.current,
      blockingQueries: this.changes.waiters,
      localCount: this.registry.localSize,
      totalCount: this.registry.size,
      services: this.registry.serviceNames().length,
      byHealth: this.registry.countsByHealth(),
      cache: this.cache.stats(),
      store: this.registry.storeKind,
      routingPolicies: this.routing.size,
      rollouts: { ...this.rollouts.counters, running: this.runningRollouts().length },
      checks: this.checker.stats(),
      ...Object.fromEntries([...this.statsSources].map(([name, read]) => [name, read()])),
    };
  }

  /** Adds a part's stats (e.g. "dns") to getRegistryStats. */
  addStatsSource(name: string, read: () => unknown): void {
    this.statsSources.set(name, read);
  }

  /** A part whose state /v1/status shows under `name` (the container source), without changing its status. */
  addStatusSource(name: string, read: () => unknown): void {
    this.statusSources.set(name, read);
  }

  async clearCache(): Promise<{ cleared: number }> {
    const cleared = this.cache.clear();
    this.logger.info({ cleared }, "query cache cleared");
    return { cleared };
  }

  async syncRegistry(opts: { force?: boolean } = {}): Promise<SyncResult> {
    if (this.cluster !== undefined) {
      let cluster: unknown;
      try {
        cluster = await this.cluster.sync(opts.force === true);
      } catch (err) {
        throw new UnavailableError(`sync failed: ${(err as Error).message}`);
      }
      this.logger.info({ force: opts.force === true }, "registry synced with the cluster");
      return { mode: "cluster", synced: true, message: "replica read again from etcd; this node's writes published", generation: this.registry.generation, cluster };
    }
    return {
      mode: "standalone",
      synced: false,
      message: "single node with an embedded store: there is no other node to sync with",
      generation: this.registry.generation,
    };
  }

  /**
   * Liveness: "failed" when the store refuses every write until a restart (the HTTP route answers it with 503, so
   * a container health check restarts the server), else "stale" for a stale cluster replica (the process still
   * serves: 200), else "ok".
   */
  status(): { status: "ok" | "stale" | "failed"; version: string; nodeId: string; uptimeMs: number; store?: { error: string }; cluster?: unknown; [source: string]: unknown } {
    const rollouts = this.runningRollouts();
    const base = { version: VERSION, nodeId: this.nodeId, uptimeMs: this.clock.now() - this.startedAt, ...(rollouts.length > 0 ? { rollouts } : {}), ...Object.fromEntries([...this.statusSources].map(([name, read]) => [name, read()])) };
    const failure = this.store.failure;
    const store = failure === undefined ? {} : { store: { error: failure.message } };
    if (this.cluster === undefined) return { status: failure ? "failed" : "ok", ...base, ...store };
    const cluster = this.cluster.status();
    return { status: failure ? "failed" : cluster.replica.stale ? "stale" : "ok", ...base, ...store, cluster };
  }

  /** The rollouts running now, as /v1/status shows them. */
  private runningRollouts(): { service: string; from: string; to: string; percent: number; step: number; of: number; nextAt: string | undefined }[] {
    return Object.entries(this.routing.all()).flatMap(([service, p]) =>
      p.rollout?.state === "running" ? [{ service, from: p.rollout.from, to: p.rollout.to, percent: p.rollout.steps[p.rollout.step]!, step: p.rollout.step + 1, of: p.rollout.steps.length, nextAt: p.rollout.nextAt === undefined ? undefined : new Date(p.rollout.nextAt).toISOString() }] : [],
    );
  }

  /**
   * A consistent copy of what this node keeps: its own instances as stored (secrets in checks unredacted: the
   * routes are the admin's), maintenance included, and the routing policies. Read in one turn of the event loop.
   * In cluster mode only this node's instances: the others are their owners' to save.
   */
  snapshot(): string {
    return encodeSnapshot({ entries: [...this.registry.localValues()], routing: this.routing.all() }, { nodeId: this.nodeId, createdAt: new Date(this.clock.now()).toISOString() });
  }

  private restoring = false;

  /**
   * Restores a snapshot: the file is checked whole first (snapshot.ts), then this node's API-registered instances
   * become the snapshot's in one all-or-nothing store batch (one journal record), then the routing policies are
   * replaced (routing.json). Instances a source declares (services files, containers) are left to the source,
   * which re-asserts them; the replica's are left to their owners.
   */
  async restoreSnapshot(text: string): Promise<RestoreResult> {
    const body = decodeSnapshot(text);
    for (const [name, stored] of Object.entries(body.routing)) parseOrThrow(routingPolicySchema, { split: stored.split }, `snapshot: routing policy of ${name}`);
    if (this.restoring) throw new ConflictError("a snapshot restore is already running");
    this.restoring = true;
    try {
      const skipped: RestoreResult["skipped"] = [];
      const wanted = new Set<string>();
      const ops: WriteOp[] = [];
      const remote = this.registry.remoteOwners();
      for (const entry of body.entries) {
        const current = this.registry.get(entry.id);
        if (entry.source !== undefined) skipped.push({ id: entry.id, reason: `declared by ${entry.source === "file" ? "a services file" : "a container"}: its source re-asserts it` });
        else if (current?.source !== undefined) skipped.push({ id: entry.id, reason: `now declared by ${current.source === "file" ? "a services file" : "a container"}: left to it` });
        else if (remote.has(entry.id)) skipped.push({ id: entry.id, reason: `registered on node ${remote.get(entry.id)}` });
        else {
          wanted.add(entry.id);
          ops.push({ op: "restore", entry });
        }
      }
      let removed = 0;
      for (const entry of [...this.registry.localValues()]) {
        if (entry.source !== undefined || wanted.has(entry.id)) continue;
        ops.unshift({ op: "deregister", id: entry.id });
        removed += 1;
      }
      if (ops.length > 0) {
        try {
          await this.registry.write(ops);
        } catch (err) {
          if (err instanceof BatchError) throw new ConflictError(`snapshot not restored (nothing changed): ${err.items.slice(0, 3).map((i) => `${i.id}: ${i.message}`).join("; ")}${err.items.length > 3 ? `; and ${err.items.length - 3} more` : ""}`, { items: err.items });
          throw err;
        }
      }
      const routingPolicies = await this.routing.replaceAll(body.routing);
      // The rollouts are the restored table's: a running one in the snapshot goes on from its step.
      this.rollouts.rearm();
      const result = { restored: wanted.size, removed, skipped, routingPolicies };
      this.logger.info({ restored: result.restored, removed, skipped: skipped.length, routingPolicies }, "snapshot restored");
      return result;
    } finally {
      this.restoring = false;
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.rollouts.stop();
    this.changes.close();
    this.eventFeed.close();
    await this.cluster?.stop();
    await this.checker.stop();
    await this.store.close();
  }
}

/**
 * A refused batch whose items are all owned elsewhere (another node, a services file) or past a limit is a
 * conflict (409), not bad input (400): the request was right, the registry's state refuses it.
 */
function conflictOrInvalid(err: BatchError): Error {
  const { items } = err;
  if (items.every((i) => i.code === "owned_elsewhere")) {
    return new ConflictError(`bulk request rejected: ${items.length} items belong to other nodes; send them there (nothing was applied)`, { items });
  }
  if (items.every((i) => i.code === "owned_elsewhere" || i.code === "file_declared" || i.code === "container_declared" || i.code === "limit")) {
    return new ConflictError(`bulk request rejected: ${items.length} items are declared in services files, on other nodes, or past a limit (nothing was applied)`, { items });
  }
  return err;
}

/** The host name as a DNS label: its first label, lowercased, anything else turned into '-'. */
export function defaultNodeId(): string {
  const label = (hostname().split(".")[0] ?? "")
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63);
  return label || "node";
}

/** The seed's `new_service_entry`: the registration input for an instance, to pass to `registerService`. */
export function newServiceEntry(id: string, name: string, version: string, nodeId: string, address: string, port: number): ServiceInput {
  return { id, name, version, nodeId, address, port, metadata: {}, tags: [] };
}

/** Why an API write to an instance a source declared needs force, as the message says it: where to change it. */
function sourceConflict(entry: ServiceEntry, what: "change" | "remove"): string {
  if (entry.source === "file") return `is declared in a services file: ${what} it there (and reload)`;
  if (entry.source === "self") return `is the server's own registration (--self-register): ${what === "change" ? "change its settings" : "start the server with --self-register=false"}`;
  const container = entry.metadata["container.name"];
  return `is registered from the labels of container ${container ?? "?"}: ${what === "change" ? "change the labels" : "stop the container"}`;
}

