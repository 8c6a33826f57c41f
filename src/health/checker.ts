// The health checker: runs each of an instance's checks at registration and then every interval (with jitter),
// never two runs of one check at once, at most `concurrency` in all; moves each check between states with
// thresholds against flapping; backs off on checks that stay unhealthy; expires TTL heartbeats; and deregisters
// instances unhealthy for longer than deregisterAfter. An instance is as healthy as its worst check. Every status
// change goes through the registry (so DNS and the query cache follow at once) and is logged once. What a check
// does is its kind's (kind.ts, kinds/): this file only schedules.
import { isIP } from "node:net";
import type { Logger } from "pino";
import type { Clock, Timer } from "../lib/clock.js";
import { isLoopback } from "../lib/hostport.js";
import { ConflictError, InvalidError, NotFoundError } from "../lib/errors.js";
import type { CheckerStats, CheckRunReport, HealthCheckResult, HealthChecks, Registry, RegistryChange } from "../registry/index.js";
import { checkKind, HEALTH_STATUSES, LIMITS, withResults, type HealthStatus, type ServiceEntry } from "../model/index.js";
import type { CheckOrigin, Probe } from "./kind.js";
import { readCa } from "./kinds/http.js";
import { capText, describe, MAX_OUTPUT_BYTES } from "./kinds/output.js";
import { HttpPools } from "./pools.js";
import { compileChecks, fieldOf, type CheckInput, type CheckSpec } from "./specs.js";
import { CheckTargets } from "./targets.js";

/** A loopback address written as an address (127.0.0.0/8, ::1), not a name that could resolve elsewhere. */
const isLoopbackAddress = (host: string): boolean => {
  const bare = host.replace(/^\[|\]$/g, "");
  return isIP(bare) !== 0 && isLoopback(bare);
};

export interface CheckerSettings {
  /** Timeout of one check, ms, unless the check sets its own; also kept below 90% of the check's interval. */
  timeoutMs: number;
  /** A 2xx slower than this is degraded, ms. */
  degradedAfterMs: number;
  /** Checks running at once, in all. */
  concurrency: number;
  /** Consecutive passing checks that bring an unhealthy check back. */
  successesBeforeHealthy: number;
  /** Consecutive failing checks that make a healthy or degraded check unhealthy. */
  failuresBeforeUnhealthy: number;
  /** Longest wait between runs of a check that stays unhealthy, ms. */
  backoffMaxMs: number;
  /** Deregister instances unhealthy this long (ms) unless they set their own; 0 is off. */
  deregisterAfterMs: number;
  /** Hosts, addresses and CIDR blocks checks may go to besides each instance's own address (targets.ts). */
  allowHosts: readonly string[];
  /** A PEM file of a CA that HTTPS checks trust besides the system's (--check-ca-file). */
  caFile?: string | undefined;
  /** exec checks may run (--checks-allow-exec): from services files, and through the API when it is authenticated. */
  allowExec?: boolean;
  /** --admin-token is set: API writes are authenticated (exec checks may then come through the API). */
  authenticatedApi?: boolean;
  /** More than this share of a service's checked instances (2 at least) unhealthy at once raises the service's
   * alarm (a warning, /v1/stats, /metrics); 1 turns it off. */
  serviceAlarmShare?: number;
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

/** One run of one check. */
interface CheckRun {
  readonly status: HealthStatus;
  readonly output: string;
  readonly durationMs: number;
  readonly at: number;
}

/** One check of one instance: its schedule, its thresholds' counters, its status after them. */
interface CheckState {
  readonly spec: CheckSpec;
  /** Undefined for heartbeat kinds (TTL). */
  readonly probe: Probe | undefined;
  status: HealthStatus;
  passes: number;
  failures: number;
  /** Runs that failed since the check became unhealthy: the backoff exponent. */
  backoff: number;
  timer: Timer | undefined;
  dueAt: number | undefined;
  inFlight: Promise<CheckRun> | undefined;
  ttlTimer: Timer | undefined;
  last: CheckRun | undefined;
}

interface State {
  /** The definition the timers were set for; a change of it reschedules. */
  readonly entry: ServiceEntry;
  readonly checks: CheckState[];
  unhealthySince: number | undefined;
}

const DELAY_SAMPLES = 4096;
/** Worst first: an instance is as healthy as its worst check; one not yet run keeps it unknown. */
const SEVERITY: Record<HealthStatus, number> = { healthy: 0, degraded: 1, unknown: 2, unhealthy: 3 };

export function worstOf(statuses: Iterable<HealthStatus>): HealthStatus {
  let worst: HealthStatus = "healthy";
  for (const s of statuses) if (SEVERITY[s] > SEVERITY[worst]) worst = s;
  return worst;
}

const zeroCounts = (): Record<HealthStatus, number> => Object.fromEntries(HEALTH_STATUSES.map((s) => [s, 0])) as Record<HealthStatus, number>;

export class HealthChecker implements HealthChecks {
  private readonly states = new Map<string, State>();
  private readonly targets: CheckTargets;
  private readonly pools: HttpPools;
  /** The runs in progress: stop() aborts them. */
  private readonly controllers = new Set<AbortController>();
  private readonly waiting: (() => void)[] = [];
  private running = 0;
  private checks = 0;
  private readonly delays: number[] = [];
  /** Runs by kind and what they saw. */
  private readonly runs = new Map<string, Record<HealthStatus, number>>();
  /** Services whose instances fail together: since when, and how many of how many at the last count. */
  private readonly alarms = new Map<string, { since: number; unhealthy: number; instances: number }>();
  private alarmsRaised = 0;
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
    this.pools = new HttpPools(this.targets.lookup);
    // A CA file that cannot be used would fail every HTTPS check: refuse to start instead.
    const ca = settings.caFile === undefined ? undefined : readCa(settings.caFile);
    if (ca !== undefined && "problem" in ca) throw new InvalidError(`--check-ca-file: ${ca.problem}`);
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
    for (const controller of this.controllers) controller.abort();
    await this.pools.close();
  }

  /** Runs an instance's checks now (joining runs in progress) and returns their result. */
  async checkNow(id: string): Promise<HealthCheckResult> {
    const entry = this.registry.get(id);
    if (entry === undefined) throw new NotFoundError(`service ${id} is not registered`);
    const state = this.states.get(id);
    const kind = checkKind(entry);
    const at = () => entry.lastHealthCheck ?? new Date(this.clock.now()).toISOString();
    if (state === undefined || kind === "none") {
      const output = kind === "none" ? "no check declared: the instance is taken as registered" : "not checked here";
      return { id, kind, status: entry.healthStatus, previousStatus: entry.healthStatus, healthStatus: entry.healthStatus, output, checkedAt: at(), durationMs: 0 };
    }
    const previous = entry.healthStatus;
    const runs = await Promise.all(state.checks.map((cs) => (cs.probe === undefined ? Promise.resolve(this.heartbeatRun(cs)) : this.run(id, state, cs, false))));
    const after = this.registry.get(id)?.healthStatus ?? previous;
    const reports: CheckRunReport[] = runs.map((r, i) => ({
      id: state.checks[i]!.spec.id,
      kind: state.checks[i]!.spec.kind.kind,
      status: r.status,
      output: r.output,
      checkedAt: new Date(r.at).toISOString(),
      durationMs: r.durationMs,
    }));
    const one = runs.length === 1 && entry.checks === undefined ? reports[0]! : undefined;
    return {
      id,
      kind,
      status: worstOf(runs.map((r) => r.status)),
      previousStatus: previous,
      healthStatus: after,
      output: one?.output ?? reports.map((r) => `${r.id} (${r.kind}): ${r.status}: ${r.output}`).join("\n"),
      checkedAt: new Date(Math.max(...runs.map((r) => r.at))).toISOString(),
      durationMs: Math.max(...runs.map((r) => r.durationMs)),
      ...(one === undefined ? { checks: reports } : {}),
    };
  }

  /** Runs every check now, within the concurrency limit, and returns the results sorted by id. */
  async checkAll(): Promise<HealthCheckResult[]> {
    const ids = [...this.states.keys()];
    const results = await Promise.all(ids.map((id) => this.checkNow(id).catch(() => undefined)));
    return results.filter((r): r is HealthCheckResult => r !== undefined).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** A TTL heartbeat: sets the status (healthy unless said otherwise) and restarts the TTL. */
  heartbeat(id: string, status: HealthStatus = "healthy", note?: string, check?: string): ServiceEntry {
    const entry = this.registry.get(id);
    if (entry === undefined) throw new NotFoundError(`service ${id} is not registered`);
    const state = this.states.get(id);
    const beating = state?.checks.filter((cs) => cs.probe === undefined && (check === undefined || cs.spec.id === check)) ?? [];
    if (beating.length === 0) {
      if (check !== undefined) throw new NotFoundError(`service ${id} has no TTL check ${check}`);
      throw new ConflictError(`service ${id} has no ttl: it is checked, not heartbeating`);
    }
    if (beating.length > 1) throw new InvalidError(`service ${id} has several TTL checks (${beating.map((c) => c.spec.id).join(", ")}): name one as "check"`);
    if (status === "unknown") throw new InvalidError("a heartbeat reports healthy, degraded or unhealthy");
    const cs = beating[0]!;
    const output = note ? `heartbeat: ${note}` : "heartbeat";
    this.setTtlTimer(id, state!, cs);
    return this.apply(id, state!, cs, { status, output, durationMs: 0, at: this.clock.now() }, true) ?? entry;
  }

  /** Resolves once no check is running (for tests and shutdown). */
  async settled(): Promise<void> {
    for (;;) {
      const inFlight = [...this.states.values()].flatMap((s) => s.checks.map((c) => c.inFlight)).filter((p) => p !== undefined);
      if (inFlight.length === 0) return;
      await Promise.allSettled(inFlight);
    }
  }

  stats(): CheckerStats {
    const sorted = [...this.delays].sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
    let scheduled = 0;
    const byKind: Record<string, Record<HealthStatus, number>> = {};
    for (const s of this.states.values()) {
      for (const c of s.checks) {
        if (c.timer !== undefined) scheduled += 1;
        (byKind[c.spec.kind.kind] ??= zeroCounts())[c.status] += 1;
      }
    }
    return {
      running: this.running,
      scheduled,
      checks: this.checks,
      startDelayMs: { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? 0, samples: sorted.length },
      byKind,
      runsByKind: Object.fromEntries([...this.runs].map(([kind, counts]) => [kind, { ...counts }])),
      alarms: [...this.alarms].sort(([a], [b]) => (a < b ? -1 : 1)).map(([service, a]) => ({ service, unhealthy: a.unhealthy, instances: a.instances, since: new Date(a.since).toISOString() })),
      alarmsRaised: this.alarmsRaised,
    };
  }

  /** Why a registration's checks may not run here (the registry refuses the registration), or undefined. */
  refusal(input: CheckInput, origin: CheckOrigin = "api"): { field: string; message: string } | undefined {
    const compiled = compileChecks(input);
    if ("refusal" in compiled) return compiled.refusal;
    for (const spec of compiled.specs) {
      const why = this.specRefusal(spec, input, origin);
      if (why !== undefined) return why;
    }
    return undefined;
  }

  private specRefusal(spec: CheckSpec, input: CheckInput, origin: CheckOrigin): { field: string; message: string } | undefined {
    const own = spec.kind.refusal?.(spec.options, { origin, allowExec: this.settings.allowExec === true, authenticatedApi: this.settings.authenticatedApi === true });
    if (own !== undefined) return { field: fieldOf(spec, own.field), message: own.message };
    const target = spec.kind.target?.(spec.options, input);
    // The server's own instances (--self-register) check it over loopback, whatever address they advertise.
    if (target !== undefined && origin === "self" && isLoopbackAddress(target.host)) return undefined;
    const message = target && this.targets.refusal(target.host, input.address);
    return message ? { field: fieldOf(spec, target!.field), message } : undefined;
  }

  private follow(changes: readonly RegistryChange[]): void {
    for (const change of changes) {
      // Only the owner checks an instance: the replica's come checked.
      if (change.cause === "health" || change.cause === "checked" || change.cause === "maintenance" || change.cause === "replica") continue;
      if (change.after === undefined) this.untrack(change.id);
      else this.track(change.after);
      // An alarmed service that gains or loses instances is counted again.
      for (const name of new Set([change.before?.name, change.after?.name])) if (name !== undefined && this.alarms.has(name)) this.guard(name);
    }
  }

  /**
   * The service-level guard: when more than serviceAlarmShare of a service's checked instances (2 at least) are
   * unhealthy at once, the checker says so (a warning, the service in /v1/stats and /metrics) instead of letting
   * the service empty silently: a shared dependency down, a bad deploy, or the checks themselves wrong (a
   * network path, an expired token). It changes no answer: DNS still serves only the healthy ones.
   */
  private guard(name: string): void {
    const share = this.settings.serviceAlarmShare ?? 0.5;
    if (share >= 1) return;
    let instances = 0;
    let unhealthy = 0;
    for (const e of this.registry.instancesOf(name)) {
      if (checkKind(e) === "none") continue;
      instances += 1;
      if (e.healthStatus === "unhealthy") unhealthy += 1;
    }
    const raised = this.alarms.get(name);
    const alarm = instances >= 2 && unhealthy >= 2 && unhealthy > share * instances;
    if (alarm && raised === undefined) {
      this.alarms.set(name, { since: this.clock.now(), unhealthy, instances });
      this.alarmsRaised += 1;
      this.logger.warn({ name, unhealthy, instances, share }, "most of a service's instances are unhealthy at once: a shared cause (a dependency, a deploy, the checks themselves)?");
    } else if (alarm) {
      this.alarms.set(name, { ...raised!, unhealthy, instances });
    } else if (raised !== undefined) {
      this.alarms.delete(name);
      this.logger.info({ name, unhealthy, instances, alarmForMs: this.clock.now() - raised.since }, "a service's instances are back: alarm over");
    }
  }

  /** (Re)starts checking an instance: the first runs start at once, so a healthy instance is in DNS at once. */
  private track(entry: ServiceEntry): void {
    this.untrack(entry.id);
    if (checkKind(entry) === "none" || this.stopped) return;
    const compiled = compileChecks(entry);
    if ("refusal" in compiled) {
      // A stored entry this version cannot read (written by a newer one, or by hand): say so, and take it out of DNS.
      this.logger.error({ id: entry.id, field: compiled.refusal.field, reason: compiled.refusal.message }, "an instance's checks cannot be run: unhealthy");
      if (entry.healthStatus !== "unhealthy") this.registry.setHealth(entry.id, "unhealthy", this.clock.now());
      return;
    }
    const origin: CheckOrigin = entry.source ?? "api";
    const state: State = {
      entry,
      checks: compiled.specs.map((spec) => ({
        spec,
        probe: this.probeOf(spec, entry, origin),
        // A re-registration with the same checks carried their results over (model/entry.ts).
        status: spec.index === undefined ? entry.healthStatus : (entry.checks![spec.index]!.status ?? "unknown"),
        passes: 0,
        failures: 0,
        backoff: 0,
        timer: undefined,
        dueAt: undefined,
        inFlight: undefined,
        ttlTimer: undefined,
        last: undefined,
      })),
      unhealthySince: entry.healthStatus === "unhealthy" ? this.clock.now() : undefined,
    };
    this.states.set(entry.id, state);
    for (const cs of state.checks) {
      if (cs.probe === undefined) this.setTtlTimer(entry.id, state, cs);
      else void this.run(entry.id, state, cs, false);
    }
  }

  /** The probe of a check; an entry stored before a rule changed (allowed hosts) is checked against today's. */
  private probeOf(spec: CheckSpec, entry: ServiceEntry, origin: CheckOrigin): Probe | undefined {
    const refused = this.specRefusal(spec, entry, origin);
    if (refused !== undefined) return { label: spec.kind.kind, run: async () => ({ status: "unhealthy", output: `check refused: ${refused.message}` }) };
    return spec.kind.probe?.(spec.options, {
      address: entry.address,
      port: entry.port,
      lookup: this.targets.lookup,
      degradedAfterMs: this.settings.degradedAfterMs,
      caFile: this.settings.caFile,
      pools: this.pools,
      reachable: (host) => this.targets.reachable(host, entry.address),
    });
  }

  private untrack(id: string): void {
    const state = this.states.get(id);
    if (state === undefined) return;
    for (const cs of state.checks) {
      if (cs.timer) this.clock.clearTimer(cs.timer);
      if (cs.ttlTimer) this.clock.clearTimer(cs.ttlTimer);
      // A run in progress ends first (on its timeout at most).
      if (cs.inFlight) void cs.inFlight.finally(() => cs.probe?.close?.());
      else cs.probe?.close?.();
      cs.timer = undefined;
      cs.ttlTimer = undefined;
    }
    this.states.delete(id);
  }

  private run(id: string, state: State, cs: CheckState, scheduled: boolean): Promise<CheckRun> {
    if (cs.inFlight) return cs.inFlight;
    if (cs.timer) this.clock.clearTimer(cs.timer);
    cs.timer = undefined;
    const dueAt = cs.dueAt;
    const promise = (async () => {
      await this.acquire();
      try {
        if (scheduled && dueAt !== undefined) this.recordDelay(this.clock.now() - dueAt);
        const result = await this.probe(cs);
        this.checks += 1;
        if (this.states.get(id) === state) this.apply(id, state, cs, result, false);
        return result;
      } finally {
        this.release();
        cs.inFlight = undefined;
        if (this.states.get(id) === state && !this.stopped) this.scheduleNext(id, state, cs);
      }
    })();
    cs.inFlight = promise;
    return promise;
  }

  /** One run of a check's probe, within its timeout; a probe that throws is unhealthy, its error the output. */
  private async probe(cs: CheckState): Promise<CheckRun> {
    const probe = cs.probe!;
    const timeout = Math.max(100, Math.min(cs.spec.timeoutMs ?? this.settings.timeoutMs, Math.floor(cs.spec.intervalMs * 0.9)));
    // One controller per run, aborted at the timeout or by stop(). AbortSignal.any over a long-lived stop signal
    // grew the heap by ~0.6 KB per run on Node 20 (37 MB after 300k runs, measured): the stop signal kept them.
    const controller = new AbortController();
    const { signal } = controller;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeout);
    this.controllers.add(controller);
    // A probe that does not end on its signal still ends its run here.
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => signal.addEventListener("abort", (onAbort = () => reject(signal.reason)), { once: true }));
    aborted.catch(() => undefined);
    const started = performance.now();
    let status: HealthStatus;
    let output: string;
    try {
      ({ status, output } = await Promise.race([probe.run(signal), aborted]));
    } catch (err) {
      status = "unhealthy";
      output = `${probe.label}: ${timedOut ? `timed out after ${timeout} ms` : signal.aborted ? "the checker stopped" : describe(err)}`;
    } finally {
      clearTimeout(timer);
      this.controllers.delete(controller);
      signal.removeEventListener("abort", onAbort!);
    }
    const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
    return { status, output: capText(output, MAX_OUTPUT_BYTES), durationMs, at: this.clock.now() };
  }

  /** A heartbeat check's state as a run, for checkNow. */
  private heartbeatRun(cs: CheckState): CheckRun {
    const ttl = (cs.spec.options as { ttl: number }).ttl;
    return cs.last ?? { status: cs.status, output: `TTL check: waiting for the first heartbeat (within ${ttl} ms)`, durationMs: 0, at: this.clock.now() };
  }

  /**
   * Applies one result to its check with the thresholds: from unknown the first result decides; a healthy or
   * degraded check turns unhealthy after `failuresBeforeUnhealthy` failures in a row, an unhealthy one comes back
   * after `successesBeforeHealthy` passes in a row. Heartbeats (direct) set the status as reported. The instance
   * then takes the worst status of its checks.
   */
  private apply(id: string, state: State, cs: CheckState, run: CheckRun, direct: boolean): ServiceEntry | undefined {
    const current = this.registry.get(id);
    if (current === undefined) return undefined;
    const result = run.status;
    const from = cs.status;
    const passed = result === "healthy" || result === "degraded";
    cs.passes = passed ? cs.passes + 1 : 0;
    cs.failures = passed ? 0 : cs.failures + 1;
    cs.last = run;
    const counts = this.runs.get(cs.spec.kind.kind) ?? this.runs.set(cs.spec.kind.kind, zeroCounts()).get(cs.spec.kind.kind)!;
    counts[result] += 1;
    let to: HealthStatus;
    if (direct || from === "unknown") to = result;
    else if (from === "unhealthy") to = passed && cs.passes >= this.settings.successesBeforeHealthy ? result : "unhealthy";
    else to = passed ? result : cs.failures >= this.settings.failuresBeforeUnhealthy ? "unhealthy" : from;
    // Only failures back off: a pass that does not yet bring it back (successesBeforeHealthy) checks again soon.
    cs.backoff = to === "unhealthy" && from === "unhealthy" && !passed ? cs.backoff + 1 : 0;
    cs.status = to;

    const now = this.clock.now();
    const instanceFrom = current.healthStatus;
    const instanceTo = worstOf(state.checks.map((c) => c.status));
    const after = this.registry.setHealth(id, instanceTo, now, state.entry.checks === undefined ? undefined : this.results(state), run.output);
    if (instanceTo !== instanceFrom) {
      const check = state.checks.length > 1 ? { check: cs.spec.id } : {};
      this.logger.info({ id, name: current.name, from: instanceFrom, to: instanceTo, ...check, reason: run.output.slice(0, 300) }, "health changed");
      if (instanceTo === "unhealthy" || instanceFrom === "unhealthy") this.guard(current.name);
    }
    if (instanceTo === "unhealthy") {
      state.unhealthySince ??= now;
      this.maybeDeregister(id, state, current, now);
    } else state.unhealthySince = undefined;
    return after;
  }

  /** Each check's status and last run, as the entry shows them (the output cut to LIMITS.entryOutputBytes). */
  private results(state: State): ServiceEntry["checks"] {
    return withResults(state.entry, (check, i) => {
      const cs = state.checks[i]!;
      const last = cs.last;
      if (last === undefined) return { status: cs.status, ...(check.output !== undefined ? { output: check.output, durationMs: check.durationMs, checkedAt: check.checkedAt } : {}) };
      return { status: cs.status, output: capText(last.output, LIMITS.entryOutputBytes), durationMs: last.durationMs, checkedAt: new Date(last.at).toISOString() };
    });
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

  /** The next run: the interval with +-10% jitter; sooner to confirm a first failure; backing off while unhealthy. */
  private scheduleNext(id: string, state: State, cs: CheckState): void {
    const interval = cs.spec.intervalMs;
    let base = interval;
    if (cs.status === "unhealthy") base = Math.min(Math.max(interval, this.settings.backoffMaxMs), interval * 2 ** cs.backoff);
    else if (cs.failures > 0) base = Math.max(1_000, interval / 4); // confirm a blip quickly, without waiting a whole interval
    // After the first run (at registration), the second lands anywhere in the interval, as Consul does:
    // instances registered together (a bulk call, a restart) then spread out instead of checking in waves.
    const first = cs.dueAt === undefined;
    const delay = Math.round(first ? base * this.random() : base * (0.9 + 0.2 * this.random()));
    cs.dueAt = this.clock.now() + delay;
    cs.timer = this.clock.setTimer(() => {
      cs.timer = undefined;
      if (this.states.get(id) === state) void this.run(id, state, cs, true);
    }, delay);
  }

  private setTtlTimer(id: string, state: State, cs: CheckState): void {
    const ttl = (cs.spec.options as { ttl: number }).ttl;
    if (cs.ttlTimer) this.clock.clearTimer(cs.ttlTimer);
    cs.ttlTimer = this.clock.setTimer(() => {
      cs.ttlTimer = undefined;
      if (this.states.get(id) !== state) return;
      this.apply(id, state, cs, { status: "unhealthy", output: `TTL expired: no heartbeat within ${ttl} ms`, durationMs: 0, at: this.clock.now() }, true);
      // Keep watching, so deregisterAfter is noticed while no heartbeat comes.
      if (this.states.get(id) === state) this.setTtlTimer(id, state, cs);
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
