// The health checker: runs each instance's check at registration and then every interval (with jitter),
// never two at once for one instance, at most `concurrency` in all; moves instances between states with
// thresholds against flapping; backs off on instances that stay unhealthy; expires TTL heartbeats; and
// deregisters instances unhealthy for longer than deregisterAfter. Every status change goes through the
// registry (so DNS and the query cache follow at once) and is logged once.
import type { Logger } from "pino";
import type { Clock, Timer } from "../lib/clock.js";
import { ConflictError, InvalidError, NotFoundError } from "../lib/errors.js";
import type { CheckerStats, HealthCheckResult, HealthChecks, Registry, RegistryChange } from "../registry/index.js";
import { checkKind, type HealthStatus, type ServiceEntry } from "../model/index.js";
import { healthUrl, Prober, type ProbeResult } from "./probe.js";
import { CheckTargets } from "./targets.js";

export interface CheckerSettings {
  /** Timeout of one check, ms; also kept below 90% of the instance's interval. */
  timeoutMs: number;
  /** A 2xx slower than this is degraded, ms. */
  degradedAfterMs: number;
  /** Checks running at once, in all. */
  concurrency: number;
  /** Consecutive passing checks that bring an unhealthy instance back. */
  successesBeforeHealthy: number;
  /** Consecutive failing checks that make a healthy or degraded instance unhealthy. */
  failuresBeforeUnhealthy: number;
  /** Longest wait between checks of an instance that stays unhealthy, ms. */
  backoffMaxMs: number;
  /** Deregister instances unhealthy this long (ms) unless they set their own; 0 is off. */
  deregisterAfterMs: number;
  /** Hosts, addresses and CIDR blocks checks may go to besides each instance's own address (targets.ts). */
  allowHosts: readonly string[];
}

export const DEFAULT_CHECKER_SETTINGS: CheckerSettings = {
  timeoutMs: 5_000,
  degradedAfterMs: 2_000,
  concurrency: 256,
  successesBeforeHealthy: 1,
  failuresBeforeUnhealthy: 2,
  backoffMaxMs: 300_000,
  deregisterAfterMs: 0,
  allowHosts: [],
};

interface State {
  /** The definition the timers were set for; a change of it reschedules. */
  entry: ServiceEntry;
  timer: Timer | undefined;
  dueAt: number | undefined;
  inFlight: Promise<HealthCheckResult> | undefined;
  passes: number;
  failures: number;
  /** Checks that failed since the instance became unhealthy: the backoff exponent. */
  backoff: number;
  unhealthySince: number | undefined;
  lastOutput: string;
  ttlTimer: Timer | undefined;
}

const DELAY_SAMPLES = 4096;

export class HealthChecker implements HealthChecks {
  private readonly states = new Map<string, State>();
  private readonly targets: CheckTargets;
  private readonly prober: Prober;
  private readonly waiting: (() => void)[] = [];
  private running = 0;
  private checks = 0;
  private readonly delays: number[] = [];
  private unsubscribe: (() => void) | undefined;
  private stopped = false;

  constructor(
    private readonly registry: Registry,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly settings: CheckerSettings = DEFAULT_CHECKER_SETTINGS,
    private readonly random: () => number = Math.random,
  ) {
    this.targets = new CheckTargets(settings.allowHosts);
    this.prober = new Prober(this.targets.lookup);
  }

  /** Follows the registry from now on and checks every instance already in it. */
  start(): void {
    this.unsubscribe = this.registry.onChange((changes) => this.follow(changes));
    for (const entry of this.registry.values()) this.track(entry);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    for (const id of [...this.states.keys()]) this.untrack(id);
    await this.prober.close();
  }

  /** Runs an instance's check now (joining one already running) and returns its result. */
  async checkNow(id: string): Promise<HealthCheckResult> {
    const entry = this.registry.get(id);
    if (entry === undefined) throw new NotFoundError(`service ${id} is not registered`);
    const state = this.states.get(id);
    const kind = checkKind(entry);
    if (state === undefined || kind === "ttl" || kind === "none") {
      const output =
        kind === "ttl" ? (state?.lastOutput ?? "TTL check: waiting for the first heartbeat") : "no check declared: the instance is taken as registered";
      const at = entry.lastHealthCheck ?? new Date(this.clock.now()).toISOString();
      return { id, kind, status: entry.healthStatus, previousStatus: entry.healthStatus, healthStatus: entry.healthStatus, output, checkedAt: at, durationMs: 0 };
    }
    return this.run(id, state, false);
  }

  /** Runs every check now, within the concurrency limit, and returns the results sorted by id. */
  async checkAll(): Promise<HealthCheckResult[]> {
    const ids = [...this.states.keys()];
    const results = await Promise.all(ids.map((id) => this.checkNow(id).catch(() => undefined)));
    return results.filter((r): r is HealthCheckResult => r !== undefined).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** A TTL heartbeat: sets the status (healthy unless said otherwise) and restarts the TTL. */
  heartbeat(id: string, status: HealthStatus = "healthy", note?: string): ServiceEntry {
    const entry = this.registry.get(id);
    if (entry === undefined) throw new NotFoundError(`service ${id} is not registered`);
    if (entry.ttl === undefined) throw new ConflictError(`service ${id} has no ttl: it is checked, not heartbeating`);
    if (status === "unknown") throw new InvalidError("a heartbeat reports healthy, degraded or unhealthy");
    const state = this.states.get(id)!;
    state.lastOutput = note ? `heartbeat: ${note}` : "heartbeat";
    this.setTtlTimer(id, state, entry.ttl);
    return this.apply(id, state, status, state.lastOutput, true) ?? entry;
  }

  /** Resolves once no check is running (for tests and shutdown). */
  async settled(): Promise<void> {
    for (;;) {
      const inFlight = [...this.states.values()].map((s) => s.inFlight).filter((p) => p !== undefined);
      if (inFlight.length === 0) return;
      await Promise.allSettled(inFlight);
    }
  }

  stats(): CheckerStats {
    const sorted = [...this.delays].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    return {
      running: this.running,
      scheduled: [...this.states.values()].filter((s) => s.timer !== undefined).length,
      checks: this.checks,
      startDelayMs: { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? 0, samples: sorted.length },
    };
  }

  private follow(changes: readonly RegistryChange[]): void {
    for (const change of changes) {
      // Only the owner checks an instance: the replica's come checked.
      if (change.cause === "health" || change.cause === "checked" || change.cause === "maintenance" || change.cause === "replica") continue;
      if (change.after === undefined) this.untrack(change.id);
      else this.track(change.after);
    }
  }

  /** (Re)starts checking an instance: the first check runs at once, so a healthy instance is in DNS at once. */
  private track(entry: ServiceEntry): void {
    this.untrack(entry.id);
    const kind = checkKind(entry);
    if (kind === "none" || this.stopped) return;
    const state: State = {
      entry,
      timer: undefined,
      dueAt: undefined,
      inFlight: undefined,
      passes: 0,
      failures: 0,
      backoff: 0,
      unhealthySince: entry.healthStatus === "unhealthy" ? this.clock.now() : undefined,
      lastOutput: "",
      ttlTimer: undefined,
    };
    this.states.set(entry.id, state);
    if (kind === "ttl") this.setTtlTimer(entry.id, state, entry.ttl!);
    else void this.run(entry.id, state, false);
  }

  private untrack(id: string): void {
    const state = this.states.get(id);
    if (state === undefined) return;
    if (state.timer) this.clock.clearTimer(state.timer);
    if (state.ttlTimer) this.clock.clearTimer(state.ttlTimer);
    state.timer = undefined;
    state.ttlTimer = undefined;
    this.states.delete(id);
  }

  private run(id: string, state: State, scheduled: boolean): Promise<HealthCheckResult> {
    if (state.inFlight) return state.inFlight;
    if (state.timer) this.clock.clearTimer(state.timer);
    state.timer = undefined;
    const dueAt = state.dueAt;
    const promise = (async () => {
      await this.acquire();
      try {
        if (scheduled && dueAt !== undefined) this.recordDelay(this.clock.now() - dueAt);
        const entry = state.entry;
        const previous = this.registry.get(id)?.healthStatus ?? entry.healthStatus;
        const probe = await this.probe(entry);
        this.checks += 1;
        const after = this.states.get(id) === state ? this.apply(id, state, probe.status, probe.output, false) : undefined;
        return {
          id,
          kind: checkKind(entry),
          status: probe.status,
          previousStatus: previous,
          healthStatus: after?.healthStatus ?? previous,
          output: probe.output,
          checkedAt: after?.lastHealthCheck ?? new Date(this.clock.now()).toISOString(),
          durationMs: Math.round(probe.durationMs * 1000) / 1000,
        };
      } finally {
        this.release();
        state.inFlight = undefined;
        if (this.states.get(id) === state && !this.stopped) this.scheduleNext(id, state);
      }
    })();
    state.inFlight = promise;
    return promise;
  }

  /** Why a registration's check may not run here (the registry refuses the registration), or undefined. */
  refusal(input: Pick<ServiceEntry, "address" | "healthEndpoint" | "tcpCheck" | "ttl">): { field: string; message: string } | undefined {
    return this.targets.refusal(input);
  }

  private async probe(entry: ServiceEntry): Promise<ProbeResult> {
    // An entry stored before the allowed hosts changed is checked against today's rule.
    const refused = this.targets.refusal(entry);
    if (refused !== undefined) return { status: "unhealthy", output: `check refused: ${refused.message}`, durationMs: 0 };
    const timeout = Math.max(100, Math.min(this.settings.timeoutMs, Math.floor(entry.healthCheckInterval * 0.9)));
    if (checkKind(entry) === "tcp") return this.prober.tcp(entry.address, entry.port, timeout);
    return this.prober.http(healthUrl(entry)!, timeout, this.settings.degradedAfterMs);
  }

  /**
   * Applies one result with the thresholds: from unknown the first result decides; a healthy or degraded
   * instance turns unhealthy after `failuresBeforeUnhealthy` failures in a row, an unhealthy one comes back
   * after `successesBeforeHealthy` passes in a row. Heartbeats (direct) set the status as reported.
   */
  private apply(id: string, state: State, result: HealthStatus, output: string, direct: boolean): ServiceEntry | undefined {
    const current = this.registry.get(id);
    if (current === undefined) return undefined;
    const from = current.healthStatus;
    const passed = result === "healthy" || result === "degraded";
    state.passes = passed ? state.passes + 1 : 0;
    state.failures = passed ? 0 : state.failures + 1;
    state.lastOutput = output;
    let to: HealthStatus;
    if (direct || from === "unknown") to = result;
    else if (from === "unhealthy") to = passed && state.passes >= this.settings.successesBeforeHealthy ? result : "unhealthy";
    else to = passed ? result : state.failures >= this.settings.failuresBeforeUnhealthy ? "unhealthy" : from;

    const now = this.clock.now();
    const after = this.registry.setHealth(id, to, now, output);
    if (to !== from) this.logger.info({ id, name: current.name, from, to, reason: output.slice(0, 300) }, "health changed");
    if (to === "unhealthy") {
      state.unhealthySince ??= now;
      // Only failures back off: a pass that does not yet bring it back (successesBeforeHealthy) checks again soon.
      state.backoff = from === "unhealthy" && !passed ? state.backoff + 1 : 0;
      this.maybeDeregister(id, state, current, now);
    } else {
      state.unhealthySince = undefined;
      state.backoff = 0;
    }
    return after;
  }

  private maybeDeregister(id: string, state: State, entry: ServiceEntry, now: number): void {
    const limit = entry.deregisterAfter ?? this.settings.deregisterAfterMs;
    if (!limit || state.unhealthySince === undefined || now - state.unhealthySince < limit) return;
    this.logger.info({ id, name: entry.name, unhealthyForMs: now - state.unhealthySince }, "deregistering an instance unhealthy for longer than deregisterAfter");
    this.untrack(id);
    this.registry.deregister(id).catch((err: unknown) => {
      if (!(err instanceof NotFoundError)) this.logger.error({ err, id }, "deregistration after deregisterAfter failed");
    });
  }

  /** The next check: the interval with +-10% jitter; sooner to confirm a first failure; backing off while unhealthy. */
  private scheduleNext(id: string, state: State): void {
    const interval = state.entry.healthCheckInterval;
    const status = this.registry.get(id)?.healthStatus;
    let base = interval;
    if (status === "unhealthy") base = Math.min(Math.max(interval, this.settings.backoffMaxMs), interval * 2 ** state.backoff);
    else if (state.failures > 0) base = Math.max(1_000, interval / 4); // confirm a blip quickly, without waiting a whole interval
    // After the first check (at registration), the second lands anywhere in the interval, as Consul does:
    // instances registered together (a bulk call, a restart) then spread out instead of checking in waves.
    const first = state.dueAt === undefined;
    const delay = Math.round(first ? base * this.random() : base * (0.9 + 0.2 * this.random()));
    state.dueAt = this.clock.now() + delay;
    state.timer = this.clock.setTimer(() => {
      state.timer = undefined;
      if (this.states.get(id) === state) void this.run(id, state, true);
    }, delay);
  }

  private setTtlTimer(id: string, state: State, ttl: number): void {
    if (state.ttlTimer) this.clock.clearTimer(state.ttlTimer);
    state.ttlTimer = this.clock.setTimer(() => {
      state.ttlTimer = undefined;
      if (this.states.get(id) !== state) return;
      const output = `TTL expired: no heartbeat within ${ttl} ms`;
      this.apply(id, state, "unhealthy", output, true);
      // Keep watching, so deregisterAfter is noticed while no heartbeat comes.
      if (this.states.get(id) === state) this.setTtlTimer(id, state, ttl);
    }, ttl);
  }

  private acquire(): Promise<void> {
    if (this.running < this.settings.concurrency) {
      this.running += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(() => resolve()));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running -= 1;
  }

  private recordDelay(ms: number): void {
    if (this.delays.length >= DELAY_SAMPLES) this.delays.splice(0, this.delays.length - DELAY_SAMPLES + 1);
    this.delays.push(Math.max(0, ms));
  }
}
