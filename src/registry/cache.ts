// Query results cached for a TTL and never stale: the registry's change feed invalidates every entry a change
// could affect (entries filtered by a service name are dropped only when an instance of that name changes).
import type { Clock } from "../lib/clock.js";
import type { RegistryChange } from "./registry.js";

interface Slot {
  readonly value: unknown;
  readonly expiresAt: number;
  /** The service name the cached query filters on, or null when it could match any name. */
  readonly name: string | null;
}

export interface CacheStats {
  entries: number;
  hits: number;
  misses: number;
  invalidations: number;
  ttlMs: number;
  maxEntries: number;
}

export class QueryCache {
  private readonly slots = new Map<string, Slot>();
  private readonly keysByName = new Map<string, Set<string>>();
  private readonly anyNameKeys = new Set<string>();
  private hits = 0;
  private misses = 0;
  private invalidations = 0;

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  get<T>(key: string): T | undefined {
    const slot = this.slots.get(key);
    if (slot !== undefined && slot.expiresAt > this.clock.now()) {
      this.hits += 1;
      return slot.value as T;
    }
    if (slot !== undefined) this.delete(key);
    this.misses += 1;
    return undefined;
  }

  set(key: string, value: unknown, name: string | null): void {
    if (this.ttlMs <= 0) return;
    if (this.slots.has(key)) this.delete(key);
    else if (this.slots.size >= this.maxEntries) {
      const oldest = this.slots.keys().next();
      if (!oldest.done) this.delete(oldest.value);
    }
    this.slots.set(key, { value, expiresAt: this.clock.now() + this.ttlMs, name });
    if (name === null) this.anyNameKeys.add(key);
    else {
      let keys = this.keysByName.get(name);
      if (keys === undefined) this.keysByName.set(name, (keys = new Set()));
      keys.add(key);
    }
  }

  /** Drops every cached result the changes could affect. Subscribed to the registry's change feed. */
  invalidate(changes: readonly RegistryChange[]): void {
    const size = this.slots.size;
    if (size === 0) return;
    for (const key of [...this.anyNameKeys]) this.delete(key);
    for (const change of changes) {
      if (change.before !== undefined) this.dropName(change.before.name);
      if (change.after !== undefined) this.dropName(change.after.name);
    }
    this.invalidations += size - this.slots.size;
  }

  /** Empties the cache; returns how many results were dropped. */
  clear(): number {
    const n = this.slots.size;
    this.slots.clear();
    this.keysByName.clear();
    this.anyNameKeys.clear();
    return n;
  }

  stats(): CacheStats {
    return {
      entries: this.slots.size,
      hits: this.hits,
      misses: this.misses,
      invalidations: this.invalidations,
      ttlMs: this.ttlMs,
      maxEntries: this.maxEntries,
    };
  }

  private dropName(name: string): void {
    const keys = this.keysByName.get(name);
    if (keys === undefined) return;
    for (const key of [...keys]) this.delete(key);
  }

  private delete(key: string): void {
    const slot = this.slots.get(key);
    if (slot === undefined) return;
    this.slots.delete(key);
    if (slot.name === null) this.anyNameKeys.delete(key);
    else {
      const keys = this.keysByName.get(slot.name);
      keys?.delete(key);
      if (keys?.size === 0) this.keysByName.delete(slot.name);
    }
  }
}
