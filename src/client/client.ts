// DiscoveryClient: the DiscoveryApi over the JSON API (undici), so code moves between embedded and remote
// use unchanged. API errors come back as the same typed errors the embedded registry throws.
import { Agent, request } from "undici";
import type {
  BulkRequest,
  BulkResult,
  DiscoveryApi,
  EventsOptions,
  HealthCheckResult,
  HealthCheckSummary,
  HeartbeatReport,
  MaintenanceRequest,
  RegistryStats,
  ServiceEvent,
  SyncResult,
  WatchOptions,
  WatchResult,
  WatchServiceResult,
} from "../registry/index.js";
import { parseJsonOrUndefined } from "../lib/json.js";
import { ERROR_KINDS, errorOfKind, UnavailableError, type ErrorIssue, type ErrorKind } from "../lib/errors.js";
import { kindOfStatus } from "../http/index.js";
import { paramsFromQuery } from "../http/index.js";
import { toPlainQuery, type ServiceQuery, type ServiceQueryBuilder } from "../registry/index.js";
import { rootCertificates } from "node:tls";
import type { ServiceEntry, ServiceInput } from "../model/index.js";
import { DEFAULT_WAIT_MS } from "../registry/index.js";
import { followRemote } from "./events.js";

export interface DiscoveryClientOptions {
  /** Base URL of a server, e.g. http://127.0.0.1:8500, or https://... for one with --tls-cert (or behind a TLS proxy). */
  url: string;
  /** Sent on every request (the event stream too) as `Authorization: Bearer`: a read, write or admin token. */
  token?: string;
  /** The same as `token` (its name before scoped tokens); `token` wins when both are given. */
  adminToken?: string;
  /** Per-request timeout in ms (default 10 s). */
  timeoutMs?: number;
  /** PEM: the CA that signed the server's certificate (a homelab's own), trusted besides the system's. */
  ca?: string | Buffer;
  /** PEM: a client certificate and its key, for a server with --tls-client-ca (or a proxy that asks for one). */
  cert?: string | Buffer;
  key?: string | Buffer;
}

export class DiscoveryClient implements DiscoveryApi {
  private readonly base: string;
  private readonly dispatcher: Agent;
  private readonly token: string | undefined;

  constructor(private readonly opts: DiscoveryClientOptions) {
    this.base = opts.url.replace(/\/+$/, "");
    this.token = opts.token || opts.adminToken || undefined;
    // Node's `ca` replaces the system's CAs: they are kept beside it, as the option says.
    const tls = { ...(opts.ca !== undefined ? { ca: [...rootCertificates, opts.ca] } : {}), ...(opts.cert !== undefined ? { cert: opts.cert } : {}), ...(opts.key !== undefined ? { key: opts.key } : {}) };
    this.dispatcher = new Agent({ keepAliveTimeout: 10_000, ...(Object.keys(tls).length > 0 ? { connect: tls } : {}) });
  }

  registerService(service: ServiceInput, opts: { force?: boolean } = {}): Promise<ServiceEntry> {
    return this.call("PUT", `/v1/services/${encodeURIComponent(service.id)}${opts.force ? "?force=true" : ""}`, service);
  }
  deregisterService(id: string, opts: { force?: boolean } = {}): Promise<ServiceEntry> {
    return this.call("DELETE", `/v1/services/${encodeURIComponent(id)}${opts.force ? "?force=true" : ""}`);
  }
  getService(id: string): Promise<ServiceEntry> {
    return this.call("GET", `/v1/services/${encodeURIComponent(id)}`);
  }
  async discoverServices(query?: ServiceQuery | ServiceQueryBuilder): Promise<ServiceEntry[]> {
    const params = paramsFromQuery(toPlainQuery(query)).toString();
    const result = await this.call<{ services: ServiceEntry[] }>("GET", `/v1/services${params ? `?${params}` : ""}`);
    return result.services;
  }
  async watchServices(query: ServiceQuery | ServiceQueryBuilder | undefined, opts: WatchOptions = {}): Promise<WatchResult> {
    const path = `/v1/services${search(blockingParams(paramsFromQuery(toPlainQuery(query)), opts))}`;
    const { body, headers } = await this.exchange<{ services: ServiceEntry[] }>("GET", path, { holdMs: holdMs(opts), signal: opts.signal });
    return { index: Number(headers["x-index"]), services: body!.services };
  }
  async watchService(id: string, opts: WatchOptions = {}): Promise<WatchServiceResult> {
    const path = `/v1/services/${encodeURIComponent(id)}${search(blockingParams(new URLSearchParams(), opts))}`;
    const { body, headers } = await this.exchange<ServiceEntry>("GET", path, { holdMs: holdMs(opts), signal: opts.signal, absentOk: true });
    return { index: Number(headers["x-index"]), service: body };
  }
  /** GET /v1/events, reconnecting with Last-Event-ID when the stream drops (so nothing is missed silently). */
  serviceEvents(query?: ServiceQuery | ServiceQueryBuilder, opts: EventsOptions & { retryMs?: [number, number] } = {}): AsyncGenerator<ServiceEvent> {
    const params = paramsFromQuery(toPlainQuery(query)).toString();
    const open = async (after: number | undefined, signal: AbortSignal | undefined) => {
      const headers: Record<string, string> = { accept: "text/event-stream" };
      if (this.token) headers.authorization = `Bearer ${this.token}`;
      if (after !== undefined) headers["last-event-id"] = String(after);
      let res;
      try {
        res = await request(`${this.base}/v1/events${params ? `?${params}` : ""}`, {
          method: "GET",
          headers,
          dispatcher: this.dispatcher,
          ...(signal ? { signal } : {}),
          headersTimeout: this.opts.timeoutMs ?? 10_000,
          // Heartbeats come every --events-heartbeat (15 s): silence much longer than that is a dead stream.
          bodyTimeout: 0,
        });
      } catch (err) {
        signal?.throwIfAborted();
        throw new UnavailableError(`cannot reach ${this.base}: ${(err as Error).message}`);
      }
      if (res.statusCode >= 400) throw errorFromBody(res.statusCode, await res.body.text());
      return res.body;
    };
    return followRemote(open, { ...(opts.after === undefined ? {} : { after: opts.after }), ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.retryMs ? { retryMs: opts.retryMs } : {}) });
  }
  bulk(body: BulkRequest, opts: { force?: boolean } = {}): Promise<BulkResult> {
    return this.call("POST", `/v1/services/bulk${opts.force ? "?force=true" : ""}`, body);
  }
  healthCheckService(id: string): Promise<HealthCheckResult> {
    return this.call("POST", `/v1/services/${encodeURIComponent(id)}/check`);
  }
  healthCheckAll(): Promise<HealthCheckSummary> {
    return this.call("POST", "/v1/checks");
  }
  heartbeat(id: string, report: HeartbeatReport = {}): Promise<ServiceEntry> {
    return this.call("PUT", `/v1/services/${encodeURIComponent(id)}/heartbeat`, report);
  }
  setMaintenance(id: string, request: MaintenanceRequest): Promise<ServiceEntry> {
    return this.call("PUT", `/v1/services/${encodeURIComponent(id)}/maintenance`, request);
  }
  getRegistryStats(): Promise<RegistryStats> {
    return this.call("GET", "/v1/stats");
  }
  clearCache(): Promise<{ cleared: number }> {
    return this.call("DELETE", "/v1/cache");
  }
  syncRegistry(opts: { force?: boolean } = {}): Promise<SyncResult> {
    return this.call("POST", `/v1/sync${opts.force ? "?force=true" : ""}`);
  }
  /** Liveness and version of the server. */
  status(): Promise<{ status: string; version: string; nodeId: string; uptimeMs: number }> {
    return this.call("GET", "/v1/status");
  }
  /** GET /v1/snapshot: the snapshot file's text, as the server wrote it (admin token when the server has one). */
  async saveSnapshot(): Promise<string> {
    return (await this.exchange<string>("GET", "/v1/snapshot", { raw: true, holdMs: 50_000 })).body!;
  }
  /** PUT /v1/snapshot: restores a snapshot file's text, all or nothing. */
  restoreSnapshot(text: string): Promise<{ restored: number; removed: number; skipped: { id: string; reason: string }[]; routingPolicies: number }> {
    return this.exchange<{ restored: number; removed: number; skipped: { id: string; reason: string }[]; routingPolicies: number }>("PUT", "/v1/snapshot", { text, holdMs: 50_000 }).then((r) => r.body!);
  }
  /** Closes the client's connections; the server keeps running. */
  async stop(): Promise<void> {
    await this.dispatcher.close();
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await this.exchange<T>(method, path, { body })).body!;
  }

  /**
   * One request. `holdMs`: how long the server may hold it (a blocking query) before the timeout starts.
   * `absentOk`: a 404 is an answer (body null), not a NotFoundError.
   */
  private async exchange<T>(
    method: string,
    path: string,
    { body, text: rawText, raw = false, holdMs = 0, signal, absentOk = false }: { body?: unknown; text?: string; raw?: boolean; holdMs?: number; signal?: AbortSignal | undefined; absentOk?: boolean },
  ): Promise<{ body: T | null; headers: Record<string, string | string[] | undefined> }> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined || rawText !== undefined) headers["content-type"] = "application/json";
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const timeout = AbortSignal.timeout(holdMs + (this.opts.timeoutMs ?? 10_000));
    let res;
    try {
      res = await request(`${this.base}${path}`, {
        method: method as "GET",
        headers,
        body: rawText ?? (body === undefined ? null : JSON.stringify(body)),
        dispatcher: this.dispatcher,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        // undici's own timeouts (300 s) would end a blocking query that waits longer.
        ...(holdMs > 0 ? { headersTimeout: 0, bodyTimeout: 0 } : {}),
      });
    } catch (err) {
      signal?.throwIfAborted(); // the caller gave up: not the server's fault
      throw new UnavailableError(`cannot reach ${this.base}: ${(err as Error).message}`);
    }
    const text = await res.body.text();
    if (res.statusCode === 404 && absentOk) return { body: null, headers: res.headers };
    if (res.statusCode >= 400) throw errorFromBody(res.statusCode, text);
    return { body: raw ? (text as T) : (JSON.parse(text) as T), headers: res.headers };
  }
}

/** `params` with a blocking query's `index` and `wait` added. */
function blockingParams(params: URLSearchParams, opts: WatchOptions): URLSearchParams {
  if (opts.index !== undefined) params.set("index", String(opts.index));
  if (opts.waitMs !== undefined) params.set("wait", `${opts.waitMs}ms`);
  return params;
}

/** The server may hold a blocking query for its whole wait (plus up to 1/16 of it): the timeout starts after it. */
function holdMs(opts: WatchOptions): number {
  return opts.index === undefined ? 0 : Math.ceil((opts.waitMs ?? DEFAULT_WAIT_MS) * (17 / 16));
}

function search(params: URLSearchParams): string {
  const s = params.toString();
  return s ? `?${s}` : "";
}

function errorFromBody(status: number, text: string) {
  const error = (parseJsonOrUndefined(text) as { error?: { code?: string; message?: string; issues?: ErrorIssue[]; items?: unknown } } | undefined)?.error;
  const code = error?.code;
  const kind = code !== undefined && (ERROR_KINDS as readonly string[]).includes(code) ? (code as ErrorKind) : kindOfStatus(status);
  const message = error?.message ?? `HTTP ${status}: ${text.slice(0, 200)}`;
  return errorOfKind(kind, message, error?.issues, error?.items !== undefined ? { items: error.items } : undefined);
}
