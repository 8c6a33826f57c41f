// The change feed as events a client can follow and resume: registered, deregistered, health, maintenance, each
// with the instance and the registry index it happened at, kept in a bounded ring so a client that reconnects with
// the last index it saw gets what it missed, or a `reset` (read the whole list again) when the ring no longer
// reaches back. Never a silent gap. Transport-free: the SSE route (src/http/events.ts) and the library's async
// iterator both read it.
import { z } from "zod";
import { UnavailableError } from "../lib/errors.js";
import { healthStatusSchema, serviceEntrySchema, type ServiceEntry } from "../model/index.js";
import { matches, type CompiledQuery } from "./query.js";
import type { Registry, RegistryChange } from "./registry.js";

const index = z.number().int().nonnegative().describe("the registry index of the change (X-Index); the SSE id");
export const registeredEventSchema = z.strictObject({
  type: z.literal("registered"),
  index,
  /** True when it replaced an instance with the same id. */
  replaced: z.boolean(),
  instance: serviceEntrySchema,
});
export const deregisteredEventSchema = z.strictObject({ type: z.literal("deregistered"), index, instance: serviceEntrySchema });
export const healthEventSchema = z.strictObject({
  type: z.literal("health"),
  index,
  previousStatus: healthStatusSchema,
  healthStatus: healthStatusSchema,
  /** The check's output that turned it (empty when the change came from elsewhere: a container's state, a replica). */
  reason: z.string(),
  instance: serviceEntrySchema,
});
export const maintenanceEventSchema = z.strictObject({
  type: z.literal("maintenance"),
  index,
  enabled: z.boolean(),
  reason: z.string().optional(),
  instance: serviceEntrySchema,
});
/**
 * A service's routing policy changed (PUT or DELETE /v1/routing/<name>, a rollout's step, its rollback, a
 * restore): `split` is the policy now, null when there is none; `rollout` the rollout that made the change.
 */
export const routingEventSchema = z.strictObject({
  type: z.literal("routing"),
  index,
  name: z.string().describe("the service name"),
  split: z.array(z.strictObject({ version: z.string(), weight: z.number().int() })).nullable().describe("the policy in force now; null: none (every healthy instance)"),
  rollout: z
    .strictObject({
      from: z.string(),
      to: z.string(),
      state: z.enum(["running", "completed", "rolled-back", "cancelled"]),
      /** Percent of traffic to `to` now. */
      percent: z.number(),
      reason: z.string().optional(),
    })
    .optional()
    .describe("the rollout that set it, when one did"),
});
/** What happened before `index` can no longer be replayed: read the whole list again (GET /v1/services). */
export const resetEventSchema = z.strictObject({ type: z.literal("reset"), index, reason: z.string() });
export const serviceEventSchema = z.discriminatedUnion("type", [registeredEventSchema, deregisteredEventSchema, healthEventSchema, maintenanceEventSchema, routingEventSchema, resetEventSchema]);

/** An event's shape from its schema, with the registry's (frozen) entry as the instance. */
type WithEntry<S extends z.ZodType> = Readonly<Omit<z.output<S>, "instance">> & { readonly instance: ServiceEntry };
export type ServiceEvent =
  | WithEntry<typeof registeredEventSchema>
  | WithEntry<typeof deregisteredEventSchema>
  | WithEntry<typeof healthEventSchema>
  | WithEntry<typeof maintenanceEventSchema>
  | Readonly<z.output<typeof routingEventSchema>>
  | Readonly<z.output<typeof resetEventSchema>>;
export type ServiceEventType = ServiceEvent["type"];

/** One event as the feed keeps it: serialised once, shared by every subscriber. `last`: the last of its write. */
export interface FeedEvent {
  readonly event: ServiceEvent;
  readonly json: string;
  /** The instance before and after, for filters: an instance leaving a filtered set is news to its watchers. */
  readonly before: ServiceEntry | undefined;
  readonly after: ServiceEntry | undefined;
  /** The last event of one registry write: a client resumes after it, never in the middle of a write. */
  readonly last: boolean;
}

/** A recorded event: its JSON is made the first time a subscriber or a replay needs it, once (most writes have no
 * stream open to see them: serialising every one cost a registration 4 us). Entries are frozen, so it is the same. */
class RecordedEvent implements FeedEvent {
  private text: string | undefined;
  constructor(
    readonly event: ServiceEvent,
    readonly before: ServiceEntry | undefined,
    readonly after: ServiceEntry | undefined,
    public last: boolean,
  ) {}
  get json(): string {
    return (this.text ??= JSON.stringify(this.event));
  }
}

export interface EventFeedOptions {
  /** Events kept for replay. */
  ringSize: number;
  /** Subscribers at once; one more is refused (503). */
  maxSubscribers: number;
}
export const DEFAULT_EVENT_FEED: EventFeedOptions = { ringSize: 4096, maxSubscribers: 1024 };

export interface Subscriber {
  /** Called synchronously for each event the filter lets through (after the registry's write). */
  onEvent(e: FeedEvent): void;
  /** The feed is closing (the server stops). */
  onClose(): void;
}

export class EventFeed {
  private readonly ring: (FeedEvent | undefined)[];
  private head = 0; // next slot
  private size = 0;
  /** Events at or before this index may be missing from the ring: a resume from before it gets a reset. */
  private horizon: number;
  private readonly subscribers = new Set<Subscriber>();
  private closed = false;

  constructor(
    registry: Registry,
    /** The index of the registry's generation (ChangeWaiters' base + generation). */
    private readonly indexOf: (generation: number) => number,
    private readonly opts: EventFeedOptions = DEFAULT_EVENT_FEED,
  ) {
    this.ring = new Array<FeedEvent | undefined>(opts.ringSize);
    this.horizon = indexOf(registry.generation);
    registry.onChange((changes, generation) => this.record(changes, indexOf(generation)));
  }

  /** The index of the newest change (events or not). */
  get current(): number {
    return this.latest;
  }
  private latest = 0;

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /**
   * Subscribes; with `after` (the last index a client saw), first hands it what it missed: the events after it
   * from the ring, or one reset event when the ring no longer reaches back, or `after` is not an index of this
   * process (a restart). Returns the replay and the unsubscribe function.
   */
  subscribe(sub: Subscriber, after: number | undefined, filter: CompiledQuery | undefined): { replay: FeedEvent[]; unsubscribe: () => void } {
    if (this.closed) throw new UnavailableError("the server is stopping");
    if (this.subscribers.size >= this.opts.maxSubscribers) {
      throw new UnavailableError(`${this.subscribers.size} event streams are open, the most --max-event-streams allows: retry later`);
    }
    const replay = after === undefined ? [] : this.since(after, filter);
    this.subscribers.add(sub);
    return { replay, unsubscribe: () => this.subscribers.delete(sub) };
  }

  /** What happened after `after` that passes `filter`, or a reset. */
  since(after: number, filter: CompiledQuery | undefined): FeedEvent[] {
    const now = Math.max(this.latest, this.horizon);
    if (after === now) return [];
    if (after < this.horizon || after > now) {
      const why = after > now || after < this.indexOf(0) ? "the index is not one this server handed out (a restart?)" : "the index is older than the events kept for replay";
      return [resetEvent(now, why)];
    }
    const out: FeedEvent[] = [];
    for (let i = 0; i < this.size; i++) {
      const e = this.ring[(this.head - this.size + i + this.ring.length) % this.ring.length]!;
      if (e.event.index > after && passes(e, filter)) out.push(e);
    }
    return out;
  }

  /** Ends every subscription (the server stops): streams must not hold its shutdown. */
  close(): void {
    this.closed = true;
    for (const sub of [...this.subscribers]) sub.onClose();
    this.subscribers.clear();
  }

  /** An event about something other than the entries (a routing policy), at an index of its own (Registry.advance). */
  note(event: Extract<ServiceEvent, { type: "routing" }>): void {
    this.latest = event.index;
    this.push([new RecordedEvent(event, undefined, undefined, true)]);
  }

  private record(changes: readonly RegistryChange[], at: number): void {
    this.latest = at;
    const events: RecordedEvent[] = [];
    for (const change of changes) {
      const event = eventOf(change, at);
      if (event === undefined) {
        // A change no event describes (a store load) still changed what a client saw: nobody resumes across it.
        if (change.cause !== "checked") this.horizon = at;
        continue;
      }
      events.push(new RecordedEvent(event, change.before, change.after, false));
    }
    if (events.length === 0) return;
    events[events.length - 1]!.last = true;
    this.push(events);
  }

  /** Into the ring, then to every subscriber. */
  private push(events: readonly FeedEvent[]): void {
    for (const e of events) {
      // A write larger than the ring evicts events of its own index: a resume from before it then gets a reset.
      const evicted = this.size === this.ring.length ? this.ring[this.head] : undefined;
      if (evicted !== undefined) this.horizon = Math.max(this.horizon, evicted.event.index);
      this.ring[this.head] = e;
      this.head = (this.head + 1) % this.ring.length;
      this.size = Math.min(this.size + 1, this.ring.length);
    }
    // Event by event, each to every subscriber: a transport can frame an event once for all of them.
    const subs = [...this.subscribers];
    for (const e of events) for (const sub of subs) if (this.subscribers.has(sub)) sub.onEvent(e);
  }
}

/** Whether an event is news to a query's watcher: the instance matched it before or after. */
export function passes(e: FeedEvent, filter: CompiledQuery | undefined): boolean {
  if (filter === undefined || e.event.type === "reset") return true;
  // A policy is a name's: news to every watcher of that name, or of no name in particular.
  if (e.event.type === "routing") return filter.name === undefined || filter.name.toLowerCase() === e.event.name;
  return (e.before !== undefined && matches(e.before, filter)) || (e.after !== undefined && matches(e.after, filter));
}

export function resetEvent(at: number, reason: string): FeedEvent {
  const event: ServiceEvent = { type: "reset", index: at, reason };
  return { event, json: JSON.stringify(event), before: undefined, after: undefined, last: true };
}

function eventOf(change: RegistryChange, at: number): ServiceEvent | undefined {
  const { before, after } = change;
  if (change.cause === "checked" || change.cause === "load") return undefined;
  if (after === undefined) return before === undefined ? undefined : { type: "deregistered", index: at, instance: before };
  if (before === undefined) return { type: "registered", index: at, replaced: false, instance: after };
  if (change.cause === "maintenance" || (change.cause === "replica" && (before.maintenance === undefined) !== (after.maintenance === undefined))) {
    const enabled = after.maintenance !== undefined;
    return { type: "maintenance", index: at, enabled, ...(enabled ? { reason: after.maintenance!.reason } : {}), instance: after };
  }
  if (change.cause === "health" || (change.cause === "replica" && before.healthStatus !== after.healthStatus)) {
    return { type: "health", index: at, previousStatus: before.healthStatus, healthStatus: after.healthStatus, reason: change.reason ?? "", instance: after };
  }
  return { type: "registered", index: at, replaced: true, instance: after };
}

export interface FollowOptions {
  /** The index of the last event seen: replays what came after it (or a reset). */
  after?: number;
  /** Ends the iteration (it returns; nothing throws). */
  signal?: AbortSignal;
  /** Events held for a consumer that does not keep up; past it they are dropped for one reset event. */
  maxQueued?: number;
}

/**
 * The feed as an async iterator, for the embedded library API. A consumer that falls more than `maxQueued`
 * events behind loses them for one reset event (read the list again), never the process's memory.
 */
export async function* followEvents(feed: EventFeed, filter: CompiledQuery | undefined, opts: FollowOptions = {}): AsyncGenerator<ServiceEvent> {
  const { signal } = opts;
  const maxQueued = opts.maxQueued ?? 10_000;
  if (signal?.aborted) return;
  let queue: FeedEvent[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  let resetPending = false;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  const { replay, unsubscribe } = feed.subscribe(
    {
      onEvent: (e) => {
        if (!passes(e, filter)) return;
        // A reset not yet read stands for what comes until it is: later events only move its index.
        if (resetPending || queue.length >= maxQueued) {
          queue = [resetEvent(e.event.index, `more than ${maxQueued} events were not read in time: read the list again`)];
          resetPending = true;
        } else queue.push(e);
        notify();
      },
      onClose: () => {
        ended = true;
        notify();
      },
    },
    opts.after,
    filter,
  );
  queue = [...replay, ...queue];
  const onAbort = () => {
    ended = true;
    notify();
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      while (queue.length > 0 && !signal?.aborted) {
        const batch = queue;
        queue = [];
        resetPending = false;
        for (const e of batch) yield e.event;
      }
      if (ended || signal?.aborted) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    unsubscribe();
  }
}
