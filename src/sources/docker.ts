// Containers as a source of instances (--docker-socket): the Docker Engine API (Docker's, or Podman's compatible
// one) over its socket, through undici. At start, and after every container event that can change what runs
// (EVENTS), the running containers are listed and their labels
// (containers.ts) made into the instances this source declares; Discovery.syncContainers makes the registry
// match. A dropped event stream is reconnected with backoff, and reconciled against a fresh list when it is back,
// so nothing is missed and nothing stale stays. While the engine cannot be reached, what was registered stays.
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
      await this.syncNow().catch((err: unknown) => this.failed(err));
      let pending = "";
      for await (const chunk of response.body) {
        pending += (chunk as Buffer).toString("utf8");
        let nl: number;
        let changed = false;
        while ((nl = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, nl).trim();
          pending = pending.slice(nl + 1);
          if (line === "") continue;
          changed = true;
          this.note(line);
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
  private note(line: string): void {
    let event: { Action?: string; status?: string; id?: string; Actor?: { ID?: string } };
    try {
      event = JSON.parse(line) as typeof event;
    } catch {
      return;
    }
    const id = event.Actor?.ID ?? event.id;
    const action = event.Action ?? event.status ?? "";
    if (id === undefined) return;
    if (STOPPED.has(action)) this.stoppedIds.add(id);
    else if (action === "start" || action === "restart" || action === "unpause") this.stoppedIds.delete(id);
  }

  private schedule(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.syncNow().catch((err: unknown) => this.failed(err)), DEBOUNCE_MS);
  }

  private async reconcile(): Promise<void> {
    const list = await this.json<{ Id: string; Labels?: Record<string, string> | null }[]>(`${API}/containers/json`);
    // Ids an event said stopped and the engine no longer lists are forgotten: the set stays as small as the list.
    for (const id of this.stoppedIds) if (!list.some((c) => c.Id === id)) this.stoppedIds.delete(id);
    const labelled = list.filter((c) => !this.stoppedIds.has(c.Id) && Object.keys(c.Labels ?? {}).some((k) => k.startsWith("homelab.")));
    const inspected = await Promise.all(labelled.map((c) => this.json<ContainerInspect>(`${API}/containers/${c.Id}/json`).catch(() => undefined)));
    const inputs: ParsedServiceInput[] = [];
    const health = new Map<string, "healthy" | "unhealthy" | "unknown">();
    for (const c of inspected) {
      if (c === undefined) continue; // gone between the list and the inspect: the next event syncs again
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
    this.state.containers = labelled.length;
    this.state.instances = inputs.length;
    this.state.syncs += 1;
    this.state.lastSync = new Date().toISOString();
    if (result.registered.length + result.deregistered.length > 0) {
      this.opts.logger.info({ registered: result.registered, deregistered: result.deregistered, unchanged: result.unchanged }, "containers applied");
    }
  }

  private async json<T>(path: string): Promise<T> {
    const response = await this.pool!.request({ path, method: "GET", headersTimeout: 5_000, bodyTimeout: 10_000 });
    const text = await response.body.text();
    if (response.statusCode !== 200) throw new Error(`GET ${path} answered ${response.statusCode}: ${text.slice(0, 200)}`);
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
