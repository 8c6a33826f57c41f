// Containers as a source of instances (--docker-socket): the Docker Engine API (Docker's, or Podman's compatible
// one) over its socket, through undici. At start (and on every reconnect) the running containers are listed and
// the labelled ones inspected; after that, each container event that can change what runs (EVENTS) re-inspects
// the container it names (its labels come in the event: others are ignored). The labels (containers.ts) of the
// containers known are the instances this source declares; Discovery.syncContainers makes the registry match.
// A dropped event stream is reconnected with backoff, and reconciled against a fresh list when it is back, and a
// fresh list is read every 10 s besides (an event lost under load), so nothing is missed and nothing stale stays. While the engine cannot be reached, what was registered stays.
import type { Logger } from "pino";
import type { Dispatcher, Pool } from "undici";
import { loadUndici } from "../lib/undici.js";
import type { ParsedServiceInput } from "../model/index.js";
import { instancesOfContainer, type ContainerInspect } from "./containers.js";

const API = "/v1.41";
/** Docker's container events that can change what runs, and Podman's "cleanup" and "remove": Podman sends "die"
 * before the container leaves its list (a sync then still sees it running), and "cleanup" once it has. */
const EVENTS = ["start", "restart", "die", "stop", "kill", "oom", "destroy", "rename", "health_status", "pause", "unpause", "update", "cleanup", "remove"];
/** Events after which a container no longer runs, whatever the engine's list says for a moment. */
const STOPPED = new Set(["die", "stop", "destroy", "cleanup", "remove", "pause"]); // not "kill": a signal need not stop it
/** Events within this are applied together: a `docker compose up` of ten containers is one sync, not ten. */
const DEBOUNCE_MS = 25;
/** How long after a health_status event the container is inspected again. */
const RECHECK_MS = 1_000;
/** A full list and inspect this often besides the events: an engine may drop an event under load (anti-entropy). */
const RESYNC_MS = 10_000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;

export interface DockerSourceOptions {
  /** unix:///var/run/docker.sock, /var/run/docker.sock or tcp://host:port (DOCKER_HOST's forms). */
  endpoint: string;
  /** The address of instances in containers with host networking or published ports. */
  hostAddress: string;
  logger: Logger;
  sync(inputs: readonly ParsedServiceInput[]): Promise<{ registered: string[]; deregistered: string[]; unchanged: number; conflicts: string[] }>;
  /** Sets the health of an instance of ours from the engine's healthcheck (instances without a check of ours). */
  setHealth(id: string, status: "healthy" | "unhealthy" | "unknown"): void;
}

export interface DockerSourceStatus {
  endpoint: string;
  connected: boolean;
  /** Running containers with homelab.* labels, and the instances they declare, at the last sync. */
  containers: number;
  instances: number;
  syncs: number;
  lastSync: string | null;
  lastError: string | null;
}

export class DockerSource {
  private pool: Pool | undefined;
  private stream: Dispatcher.ResponseData | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private backoff = BACKOFF_MIN_MS;
  /** Problems already logged, so a bad label is one warning, not one per sync. */
  private readonly warned = new Set<string>();
  private readonly stoppedIds = new Set<string>();
  /** The running labelled containers, as last inspected; events mark the ones to inspect again. */
  private readonly inspected = new Map<string, ContainerInspect>();
  private readonly dirty = new Set<string>();
  private readonly rechecks = new Set<NodeJS.Timeout>();
  private resync: NodeJS.Timeout | undefined;
  private needFull = true;
  private readonly state: DockerSourceStatus;

  constructor(private readonly opts: DockerSourceOptions) {
    this.state = { endpoint: opts.endpoint, connected: false, containers: 0, instances: 0, syncs: 0, lastSync: null, lastError: null };
  }

  status(): DockerSourceStatus {
    return { ...this.state };
  }

  /** Connects in the background: the engine being down is a warning and a retry, never a failed start. */
  async start(): Promise<void> {
    const { Pool } = await loadUndici();
    const { origin, socketPath } = parseEndpoint(this.opts.endpoint);
    this.pool = new Pool(origin, { ...(socketPath ? { socketPath } : {}), connections: 4 });
    void this.follow();
  }

  /**
   * A sync that starts after any running one, so it sees every event before the call; calls while one waits to
   * start share it. Resolves when the registry matches the engine.
   */
  syncNow(): Promise<void> {
    if (this.queued !== undefined) return this.queued;
    const previous = this.running ?? Promise.resolve();
    const next = previous
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        const run = this.reconcile();
        this.running = run;
        return run.finally(() => {
          if (this.running === run) this.running = undefined;
        });
      });
    this.queued = next;
    return next;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.debounce);
    clearTimeout(this.retry);
    for (const timer of this.rechecks) clearTimeout(timer);
    clearInterval(this.resync);
    this.stream?.body.destroy();
    await this.running?.catch(() => undefined);
    await this.pool?.destroy();
  }

  /** The event stream, then a sync (so what happened while it was down is seen), and a sync per burst of events. */
  private async follow(): Promise<void> {
    const filters = encodeURIComponent(JSON.stringify({ type: ["container"], event: EVENTS }));
    try {
      const response = await this.pool!.request({ path: `${API}/events?filters=${filters}`, method: "GET", bodyTimeout: 0, headersTimeout: 5_000 });
      if (response.statusCode !== 200) throw new Error(`GET /events answered ${response.statusCode}: ${(await response.body.text()).slice(0, 200)}`);
      this.stream = response;
      this.connected();
      this.needFull = true; // what happened while the stream was down is seen in a fresh list
      this.resync ??= setInterval(() => {
        if (!this.state.connected) return;
        this.needFull = true;
        void this.syncNow().catch((err: unknown) => this.failed(err));
      }, RESYNC_MS);
      this.resync.unref();
      await this.syncNow().catch((err: unknown) => this.failed(err));
      let pending = "";
      for await (const chunk of response.body) {
        pending += (chunk as Buffer).toString("utf8");
        let nl: number;
        let changed = false;
        while ((nl = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, nl).trim();
          pending = pending.slice(nl + 1);
          if (line !== "" && this.note(line)) changed = true;
        }
        if (changed) this.schedule();
      }
      throw new Error("the event stream ended");
    } catch (err) {
      if (this.stopped) return;
      this.failed(err);
      this.retry = setTimeout(() => void this.follow(), this.backoff);
      this.backoff = Math.min(BACKOFF_MAX_MS, this.backoff * 2);
    }
  }

  /** Containers an event said stopped: an engine may list one as running a moment longer (Podman sends "die"
   * before its list changes), and it must leave DNS now. A start takes it back. */
  private note(line: string): boolean {
    let event: { Action?: string; status?: string; id?: string; Actor?: { ID?: string; Attributes?: Record<string, string> } };
    try {
      event = JSON.parse(line) as typeof event;
    } catch {
      this.needFull = true; // not an event we can read: read everything again
      return true;
    }
    const id = event.Actor?.ID ?? event.id;
    const action = event.Action ?? event.status ?? "";
    if (id === undefined) return false;
    // Events carry the container's labels: one without homelab.* labels, and not known to us, changes nothing.
    const labelled = Object.keys(event.Actor?.Attributes ?? {}).some((k) => k.startsWith("homelab."));
    if (!labelled && !this.inspected.has(id)) return false;
    if (STOPPED.has(action)) this.stoppedIds.add(id);
    else if (action === "start" || action === "restart" || action === "unpause") this.stoppedIds.delete(id);
    // Podman sends health_status before its inspect shows the new status: look again a moment later.
    if (action.startsWith("health_status")) this.recheck(id);
    this.dirty.add(id);
    return true;
  }

  private recheck(id: string): void {
    const timer = setTimeout(() => {
      this.rechecks.delete(timer);
      this.dirty.add(id);
      this.schedule();
    }, RECHECK_MS);
    this.rechecks.add(timer);
  }

  private schedule(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.syncNow().catch((err: unknown) => this.failed(err)), DEBOUNCE_MS);
  }

  /**
   * Brings the containers known up to date, then makes the registry match them. After a (re)connect: the list
   * and an inspect of every labelled container. After events: an inspect of each container they named (one call
   * for a start, none for a stop).
   */
  private async reconcile(): Promise<void> {
    try {
      await this.refresh();
    } catch (err) {
      this.needFull = true; // what the failed refresh would have read is read again, whole, next time
      throw err;
    }
    await this.apply();
  }

  private async refresh(): Promise<void> {
    const dirty = [...this.dirty];
    this.dirty.clear();
    if (this.needFull) {
      this.needFull = false;
      const list = await this.json<{ Id: string; Labels?: Record<string, string> | null }[]>(`${API}/containers/json`);
      // Ids an event said stopped and the engine no longer lists are forgotten: the set stays as small as the list.
      for (const id of this.stoppedIds) if (!list.some((c) => c.Id === id)) this.stoppedIds.delete(id);
      const labelled = list.filter((c) => !this.stoppedIds.has(c.Id) && Object.keys(c.Labels ?? {}).some((k) => k.startsWith("homelab.")));
      const fresh = await Promise.all(labelled.map((c) => this.inspect(c.Id)));
      this.inspected.clear();
      for (const c of fresh) if (c !== undefined) this.inspected.set(c.Id, c);
    } else {
      await Promise.all(
        dirty.map(async (id) => {
          const c = this.stoppedIds.has(id) ? undefined : await this.inspect(id);
          if (c === undefined || c.State?.Running === false) this.inspected.delete(id);
          else this.inspected.set(id, c);
          if (c === undefined) this.stoppedIds.delete(id); // gone from the engine: nothing left to remember
        }),
      );
    }
  }

  /** Makes the registry match the containers known. */
  private async apply(): Promise<void> {
    const inputs: ParsedServiceInput[] = [];
    const health = new Map<string, "healthy" | "unhealthy" | "unknown">();
    for (const c of this.inspected.values()) {
      const found = instancesOfContainer(c, this.opts.hostAddress);
      inputs.push(...found.inputs);
      for (const [id, status] of found.engineHealth) health.set(id, status);
      for (const problem of found.problems) {
        if (this.warned.has(problem)) continue;
        this.warned.add(problem);
        this.opts.logger.warn({ container: c.Name.replace(/^\//, "") }, `${problem}; that instance is skipped`);
      }
    }
    const result = await this.opts.sync(inputs);
    const conflicted = new Set(result.conflicts);
    for (const [id, status] of health) if (!conflicted.has(id)) this.opts.setHealth(id, status);
    for (const id of result.conflicts) {
      const key = `conflict ${id}`;
      if (this.warned.has(key)) continue;
      this.warned.add(key);
      this.opts.logger.warn({ id }, "a container declares an instance id registered otherwise (through the API or a services file), or whose check is refused: skipped");
    }
    this.state.containers = this.inspected.size;
    this.state.instances = inputs.length;
    this.state.syncs += 1;
    this.state.lastSync = new Date().toISOString();
    if (result.registered.length + result.deregistered.length > 0) {
      this.opts.logger.info({ registered: result.registered, deregistered: result.deregistered, unchanged: result.unchanged }, "containers applied");
    }
  }

  /** A container's inspect, when it runs with homelab.* labels; undefined when it is gone or has none. */
  private async inspect(id: string): Promise<ContainerInspect | undefined> {
    try {
      const c = await this.json<ContainerInspect>(`${API}/containers/${id}/json`);
      return Object.keys(c.Config?.Labels ?? {}).some((k) => k.startsWith("homelab.")) ? c : undefined;
    } catch (err) {
      if (err instanceof EngineError && err.status === 404) return undefined;
      throw err;
    }
  }

  private async json<T>(path: string): Promise<T> {
    const response = await this.pool!.request({ path, method: "GET", headersTimeout: 5_000, bodyTimeout: 10_000 });
    const text = await response.body.text();
    if (response.statusCode !== 200) throw new EngineError(response.statusCode, `GET ${path} answered ${response.statusCode}: ${text.slice(0, 200)}`);
    return JSON.parse(text) as T;
  }

  private connected(): void {
    if (!this.state.connected) this.opts.logger.info({ endpoint: this.opts.endpoint }, "container engine connected");
    this.state.connected = true;
    this.state.lastError = null;
    this.backoff = BACKOFF_MIN_MS;
  }

  private failed(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    if (this.state.connected || this.state.lastError === null) {
      this.opts.logger.warn({ endpoint: this.opts.endpoint, err: message }, "container engine unreachable; retrying (what it registered stays until it is back)");
    }
    this.state.connected = false;
    this.state.lastError = message;
  }
}

/** undici's origin and socket path for an endpoint in DOCKER_HOST's forms. */
export function parseEndpoint(endpoint: string): { origin: string; socketPath?: string } {
  if (endpoint.startsWith("unix://")) return { origin: "http://engine", socketPath: endpoint.slice("unix://".length) };
  if (endpoint.startsWith("/")) return { origin: "http://engine", socketPath: endpoint };
  if (endpoint.startsWith("tcp://")) return { origin: `http://${endpoint.slice("tcp://".length)}` };
  throw new Error(`${endpoint} is not unix:///path, /path or tcp://host:port`);
}

/** An answer of the engine other than 200. */
class EngineError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

