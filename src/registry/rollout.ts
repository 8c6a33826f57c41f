// Rollouts (issue 21): a service's traffic moved from one version to another in steps, on a schedule, while the
// canary stays healthy; rolled back to 0 the moment it does not. Each step is a routing policy written through the
// RoutingTable (durable, told to DNS before the write resolves), with the rollout's state beside it, so a restart
// picks the schedule up where it was. Health is judged at every step and on every change of the service's
// instances: a canary instance turning unhealthy rolls back at once, not at the next step.
import type { Logger } from "pino";
import type { Clock, Timer } from "../lib/clock.js";
import { ConflictError, NotFoundError } from "../lib/errors.js";
import { canaryHealth, parseOrThrow, rolloutRequestSchema, rolloutVerdict, splitAt, type RolloutRecord } from "../model/index.js";
import type { Registry } from "./registry.js";
import type { RoutingTable } from "./routing.js";

export interface RolloutCounters {
  started: number;
  steps: number;
  completed: number;
  rolledBack: number;
  cancelled: number;
}

export class Rollouts {
  readonly counters: RolloutCounters = { started: 0, steps: 0, completed: 0, rolledBack: 0, cancelled: 0 };
  private readonly timers = new Map<string, Timer>();
  /** Transitions of one name, one at a time: a rollback and a step never interleave their writes. */
  private readonly chains = new Map<string, Promise<unknown>>();
  private stopped = false;

  constructor(
    private readonly table: RoutingTable,
    private readonly registry: Registry,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    registry.onChange((changes) => {
      let names: Set<string> | undefined;
      for (const c of changes) {
        const name = (c.after ?? c.before)?.name;
        if (name !== undefined && this.running(name) !== undefined) (names ??= new Set()).add(name);
      }
      if (names !== undefined) for (const name of names) void this.transition(name, async (r) => (r === undefined ? undefined : this.judge(name, r))).catch(() => undefined);
    });
    // A policy set by hand ends a rollout (the table records it cancelled): its timer goes with it.
    table.onChange((name) => {
      if (this.running(name) === undefined) this.disarm(name);
    });
  }

  /** The running rollout of a name, if any. */
  running(name: string): RolloutRecord | undefined {
    const r = this.table.get(name)?.rollout;
    return r?.state === "running" ? r : undefined;
  }

  /** Re-arms the rollouts the table loaded as running (after a restart): each step when it was due, or now. */
  resume(): number {
    let n = 0;
    for (const [name, stored] of Object.entries(this.table.all())) {
      if (stored.rollout?.state !== "running") continue;
      this.arm(name, stored.rollout.nextAt ?? this.clock.now());
      n++;
    }
    if (n > 0) this.logger.info({ rollouts: n }, "rollouts resumed");
    return n;
  }

  /** After the table was replaced (a snapshot restore): timers for the rollouts it holds as running, and no others. */
  rearm(): number {
    for (const name of [...this.timers.keys()]) this.disarm(name);
    return this.resume();
  }

  /** Starts a rollout: its first step is in force when this resolves. */
  async start(name: string, input: unknown): Promise<RolloutRecord> {
    const key = name.toLowerCase();
    const req = parseOrThrow(rolloutRequestSchema, input, "rollout");
    return this.transition(key, async () => {
      const current = this.running(key);
      if (current !== undefined) throw new ConflictError(`a rollout of ${key} to "${current.to}" is running (step ${current.step + 1} of ${current.steps.length}): cancel it first (DELETE /v1/routing/${key}/rollout)`);
      const health = canaryHealth(this.registry.instancesOf(key), req.to);
      if (health.healthy === 0) {
        throw new ConflictError(`no healthy instance of ${key} has a version matching "${req.to}" (${health.instances} registered): register the canary and let its check pass first`);
      }
      const now = this.clock.now();
      const last = req.steps.length === 1;
      const record: RolloutRecord = { ...req, state: last ? "completed" : "running", step: 0, startedAt: new Date(now).toISOString(), ...(last ? { endedAt: new Date(now).toISOString() } : { nextAt: now + req.pauseMs }) };
      await this.table.setByRollout(key, splitAt(req, req.steps[0]!), record, new Date(now));
      this.counters.started++;
      if (last) this.counters.completed++;
      else this.arm(key, record.nextAt!);
      this.logger.info({ service: key, from: req.from, to: req.to, steps: req.steps, pauseMs: req.pauseMs, percent: req.steps[0] }, "rollout started");
      return record;
    });
  }

  /** Stops a running rollout where it is: the split in force stays. */
  async cancel(name: string): Promise<RolloutRecord> {
    const key = name.toLowerCase();
    return this.transition(key, async () => {
      const r = this.running(key);
      if (r === undefined) throw new NotFoundError(`no rollout of ${key} is running`);
      const now = this.clock.now();
      const ended = this.ended(r, "cancelled", "cancelled through the API", now);
      await this.table.setByRollout(key, splitAt(r, r.steps[r.step]!), ended, new Date(now));
      this.counters.cancelled++;
      this.logger.info({ service: key, to: r.to, percent: r.steps[r.step] }, "rollout cancelled; its split stays");
      return ended;
    });
  }

  stop(): void {
    this.stopped = true;
    for (const name of [...this.timers.keys()]) this.disarm(name);
  }

  /** A step fell due: judge the canary, then go on, wait for a verdict, or roll back. */
  private async step(name: string, r: RolloutRecord): Promise<void> {
    const health = canaryHealth(this.registry.instancesOf(name), r.to);
    const v = rolloutVerdict(health, r);
    if (v.verdict === "rollback") return this.rollback(name, r, v.reason);
    const now = this.clock.now();
    if (v.verdict === "wait") {
      // Every canary instance still unknown (just registered, or its checks restarted): no step on no evidence.
      const waiting: RolloutRecord = { ...r, nextAt: now + r.pauseMs };
      await this.table.setByRollout(name, splitAt(r, r.steps[r.step]!), waiting, new Date(now));
      this.arm(name, waiting.nextAt!);
      this.logger.info({ service: name, to: r.to }, "rollout waits: no canary instance has been checked yet");
      return;
    }
    const step = r.step + 1;
    const last = step === r.steps.length - 1;
    const { nextAt: _due, ...rest } = r;
    const next: RolloutRecord = last ? { ...rest, step, state: "completed", endedAt: new Date(now).toISOString() } : { ...rest, step, nextAt: now + r.pauseMs };
    await this.table.setByRollout(name, splitAt(r, r.steps[step]!), next, new Date(now));
    this.counters.steps++;
    if (last) {
      this.counters.completed++;
      this.logger.info({ service: name, to: r.to }, `rollout completed: ${r.to} takes all the traffic`);
    } else {
      this.arm(name, next.nextAt!);
      this.logger.info({ service: name, to: r.to, percent: r.steps[step], step: step + 1, of: r.steps.length }, "rollout step");
    }
  }

  /** A change of the service's instances: roll back at once if the canary no longer holds. */
  private async judge(name: string, r: RolloutRecord): Promise<void> {
    const v = rolloutVerdict(canaryHealth(this.registry.instancesOf(name), r.to), r);
    if (v.verdict === "rollback") await this.rollback(name, r, v.reason);
  }

  private async rollback(name: string, r: RolloutRecord, reason: string): Promise<void> {
    this.disarm(name);
    const now = this.clock.now();
    const ended = this.ended(r, "rolled-back", reason, now);
    await this.table.setByRollout(name, splitAt(r, 0), ended, new Date(now));
    this.counters.rolledBack++;
    this.logger.warn({ service: name, from: r.from, to: r.to, atPercent: r.steps[r.step], reason }, `rollout rolled back: all traffic to ${r.from}`);
  }

  /** The record of a rollout that ends at `now` (the time of the policy it writes, too: one change). */
  private ended(r: RolloutRecord, state: "rolled-back" | "cancelled", reason: string, now: number): RolloutRecord {
    const { nextAt: _due, ...rest } = r;
    return { ...rest, state, endedAt: new Date(now).toISOString(), reason };
  }

  /**
   * Runs fn after the name's transitions before it, with its running rollout as it is by then (or undefined).
   */
  private transition<T>(name: string, fn: (r: RolloutRecord | undefined) => Promise<T>): Promise<T> {
    const run = (this.chains.get(name) ?? Promise.resolve()).catch(() => undefined).then(() => fn(this.running(name)));
    const settled = run.catch((err: unknown) => {
      if (!(err instanceof ConflictError || err instanceof NotFoundError)) this.logger.error({ err, service: name }, "rollout transition failed");
    });
    this.chains.set(name, settled);
    void settled.then(() => {
      if (this.chains.get(name) === settled) this.chains.delete(name);
    });
    return run;
  }

  private arm(name: string, at: number): void {
    this.disarm(name);
    if (this.stopped) return;
    const timer = this.clock.setTimer(() => {
      this.timers.delete(name);
      void this.transition(name, async (r) => {
        if (r !== undefined) await this.step(name, r);
      }).catch(() => undefined);
    }, Math.max(0, at - this.clock.now()));
    this.timers.set(name, timer);
  }

  private disarm(name: string): void {
    const t = this.timers.get(name);
    if (t === undefined) return;
    this.clock.clearTimer(t);
    this.timers.delete(name);
  }
}
