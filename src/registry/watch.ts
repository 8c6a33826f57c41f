// Blocking queries, as Consul's `?index=&wait=`: every query answer carries an index, and a query that passes it
// back waits until something that could change its answer has changed (or its wait runs out), instead of polling.
import type { Clock } from "../lib/clock.js";
import { UnavailableError } from "../lib/errors.js";
import type { Registry, RegistryChange } from "./registry.js";

/** How long a blocking query waits unless it says, and at most (Consul's numbers). */
export const DEFAULT_WAIT_MS = 5 * 60_000;
export const MAX_WAIT_MS = 10 * 60_000;
export const DEFAULT_MAX_WAITERS = 4_096;

interface Waiter {
  readonly wake: () => void;
}

export class ChangeWaiters {
  /**
   * Indexes are `base + generation`. The base is the start time in microseconds, so an index never repeats
   * across restarts: a client holding an index from an earlier process gets an answer at once instead of
   * waiting on a number that now means something else.
   */
  private readonly base: number;
  /** Index of the last change to each name that still has instances (or had one since the last prune). */
  private readonly changedByName = new Map<string, number>();
  /** Names that left the map: their last change is at most this. */
  private floor: number;
  private lastAny: number;
  /** Waiters by the name their query filters on; null: queries that could match any name. */
  private readonly waiting = new Map<string | null, Set<Waiter>>();
  private count = 0;
  private closed = false;

  constructor(
    private readonly registry: Registry,
    private readonly clock: Clock,
    /** Wall-clock milliseconds at start (not the injected clock: it only has to differ between processes). */
    startedAtMs: number = Date.now(),
    /** Blocking queries waiting at once; one more is refused (503) rather than held. */
    private readonly maxWaiters = DEFAULT_MAX_WAITERS,
  ) {
    this.base = Math.floor(startedAtMs) * 1000;
    this.floor = this.base + registry.generation;
    this.lastAny = this.floor;
    registry.onChange((changes, generation) => this.record(changes, this.base + generation));
  }

  /** The index to hand out with an answer read now. */
  get current(): number {
    return this.base + this.registry.generation;
  }

  /** The index of a registry generation. */
  indexOf(generation: number): number {
    return this.base + generation;
  }

  /** Index of the last change that could alter the answer to a query on `name` (null: on any name). */
  changedAt(name: string | null): number {
    return name === null ? this.lastAny : (this.changedByName.get(name) ?? this.floor);
  }

  /**
   * Resolves once the answer to a query on `name` may differ from the one that carried `index`, or after `ms`.
   * An index this process did not hand out (from the future, or another process) resolves at once.
   */
  wait(name: string | null, index: number, ms: number, signal?: AbortSignal): Promise<void> {
    if (this.closed || this.changedAt(name) > index || index > this.current || signal?.aborted) return Promise.resolve();
    if (this.count >= this.maxWaiters) {
      return Promise.reject(new UnavailableError(`${this.count} blocking queries are waiting, the most --max-watchers allows: retry later, or without index`));
    }
    this.count += 1;
    return new Promise((resolve) => {
      let set = this.waiting.get(name);
      if (set === undefined) this.waiting.set(name, (set = new Set()));
      const waiters = set;
      const waiter: Waiter = {
        wake: () => {
          this.clock.clearTimer(timer);
          signal?.removeEventListener("abort", waiter.wake);
          waiters.delete(waiter);
          this.count -= 1;
          if (waiters.size === 0 && this.waiting.get(name) === waiters) this.waiting.delete(name);
          resolve();
        },
      };
      const timer = this.clock.setTimer(waiter.wake, ms);
      signal?.addEventListener("abort", waiter.wake, { once: true });
      waiters.add(waiter);
    });
  }

  /** Answers every waiting query now, and any later one at once: a stopping server must not wait out their waits. */
  close(): void {
    this.closed = true;
    for (const name of [...this.waiting.keys()]) this.wakeAll(name);
  }

  /** How many queries are waiting now. */
  get waiters(): number {
    return this.count;
  }

  /**
   * Something outside the entries changed the answers on `name` at `index` (its routing policy: ?routed=true,
   * the providers): its waiters answer now, and a query passing an older index gets an answer at once.
   */
  touch(name: string, index: number): void {
    this.lastAny = index;
    if (this.registry.hasName(name)) this.changedByName.set(name, index);
    else this.floor = index;
    this.wakeAll(name);
    this.wakeAll(null);
  }

  private record(changes: readonly RegistryChange[], index: number): void {
    const touched = new Set<string>();
    for (const change of changes) {
      // A check that ran and left the status as it was changes no answer anyone waits for.
      if (change.cause === "checked") continue;
      if (change.before !== undefined) touched.add(change.before.name);
      if (change.after !== undefined) touched.add(change.after.name);
    }
    if (touched.size === 0) return;
    this.lastAny = index;
    for (const name of touched) {
      // A name nobody has any more leaves the map (or it would grow with every name ever seen); the floor
      // keeps its index, so a query on it that waits from before still sees the change.
      if (this.registry.hasName(name)) this.changedByName.set(name, index);
      else {
        this.changedByName.delete(name);
        this.floor = index;
      }
      this.wakeAll(name);
    }
    this.wakeAll(null);
  }

  private wakeAll(name: string | null): void {
    const set = this.waiting.get(name);
    if (set === undefined) return;
    for (const waiter of [...set]) waiter.wake();
  }
}
