// GET /v1/events: the registry's event feed as Server-Sent Events, with the filters of /v1/services. Each event is
// framed once and shared by every stream; a stream whose client stops reading is cut off once its queue passes
// a bounded number of bytes, so no client can grow the server's memory.
import type { Hono } from "hono";
import { InvalidError } from "../lib/errors.js";
import { passes, resetEvent, type Discovery, type FeedEvent } from "../registry/index.js";
import { compileServiceQuery, searchOf } from "./params.js";

export interface EventStreamOptions {
  /** Bytes queued for one stream past which it is cut off. */
  clientBufferBytes: number;
  /** A comment after this long, so proxies do not close an idle stream, ms. */
  heartbeatMs: number;
}
export const DEFAULT_EVENT_STREAM: EventStreamOptions = { clientBufferBytes: 262_144, heartbeatMs: 15_000 };

/** What the streams did, for /v1/stats. */
export interface EventStreamStats {
  open: number;
  opened: number;
  /** Streams cut off because their client took nothing for a heartbeat's time while events waited. */
  cutOff: number;
  /** Bursts past a stream's bound, turned into a reset event for it. */
  resets: number;
  /** The most one stream has had queued (this process): at most the bound plus one reset event. */
  peakQueuedBytes: number;
  eventsSent: number;
}

const encoder = new TextEncoder();
const HEARTBEAT = encoder.encode(":\n\n");
const RETRY = encoder.encode("retry: 2000\n\n");
/** The frame of the event being delivered: the feed hands each event to every stream in turn, so one slot
 * frames it once for all of them, and no frame outlives its delivery (the ring keeps events, not frames). */
let framed: FeedEvent | undefined;
let frame: Uint8Array = HEARTBEAT;

function frameOf(e: FeedEvent): Uint8Array {
  if (e !== framed) {
    // The id only on the last event of a write: a client resumes after a whole write, never in its middle.
    const id = e.last ? `id: ${e.event.index}\n` : "";
    frame = encoder.encode(`${id}event: ${e.event.type}\ndata: ${e.json}\n\n`);
    framed = e;
  }
  return frame;
}

/**
 * One stream's queue, between the feed and the socket: it holds only what the socket would not take yet (the
 * ReadableStream pulls a chunk each time @hono/node-server's write went through). A burst past the bound (a bulk
 * write of thousands) turns what is queued into one reset event, updated while it waits, so the client reads the
 * list again; a client that has taken nothing for a heartbeat's time while data waits is cut off. Either way the
 * queue never holds more than the bound.
 */
class SseStream {
  private queue: Uint8Array[] = [];
  private queued = 0;
  /** A reset waits in the queue (its last element): later events only move its index. */
  private resetPending = false;
  private lastPull = performance.now();
  private waiting: (() => void) | undefined;
  private done = false;
  readonly body: ReadableStream<Uint8Array>;

  constructor(
    private readonly limit: number,
    private readonly stallMs: number,
    /** Cut off: the connection is closed (the socket would otherwise wait for a drain that never comes). */
    private readonly onCut: () => void,
    private readonly onReset: () => void,
    /** The most any stream of the app has had queued: the bound's proof in /v1/stats. */
    private readonly peak: { bytes: number },
    onCancel: () => void,
  ) {
    this.body = new ReadableStream<Uint8Array>(
      {
        pull: (controller) => {
          this.lastPull = performance.now();
          if (this.queue.length === 0 && !this.done) return new Promise<void>((resolve) => (this.waiting = resolve)).then(() => this.deliver(controller));
          this.deliver(controller);
          return undefined;
        },
        cancel: onCancel,
      },
      { highWaterMark: 0 },
    );
  }

  private deliver(controller: ReadableStreamDefaultController<Uint8Array>): void {
    if (this.queue.length === 0) {
      if (this.done) controller.close();
      return;
    }
    // Everything waiting in one write: fewer, larger socket writes for a client that fell behind.
    const chunk = this.queue.length === 1 ? this.queue[0]! : Buffer.concat(this.queue, this.queued);
    this.queue = [];
    this.queued = 0;
    this.resetPending = false;
    controller.enqueue(chunk);
  }

  private cut = false;

  /** Queues a frame; `index`: the event's, for the reset that may replace the queue. */
  push(frame: Uint8Array, index: number | undefined, current: () => number): void {
    if (this.done || this.cut) return;
    if (this.queued > 0 && performance.now() - this.lastPull > this.stallMs) return this.cutOff();
    if (this.resetPending) {
      if (index !== undefined) this.replaceWith(resetFrame(index));
      return;
    }
    if (this.queued + frame.byteLength > this.limit) {
      this.onReset();
      this.replaceWith(resetFrame(index ?? current()));
      this.resetPending = true;
    } else {
      this.queue.push(frame);
      this.queued += frame.byteLength;
    }
    if (this.queued > this.peak.bytes) this.peak.bytes = this.queued;
    this.wake();
  }

  /** The heartbeat's look: data waiting and nothing taken for stallMs. */
  checkStall(): void {
    if (this.queued > 0 && performance.now() - this.lastPull > this.stallMs) this.cutOff();
  }

  /** Ends the stream once what is queued is sent (the server stops). */
  end(): void {
    this.done = true;
    this.wake();
  }

  private replaceWith(frame: Uint8Array): void {
    this.queue = [frame];
    this.queued = frame.byteLength;
  }

  private cutOff(): void {
    this.cut = true;
    this.queue = [];
    this.queued = 0;
    // Closes the connection; the stream then ends quietly (an error would be logged as a failed response).
    this.onCut();
    this.end();
  }

  private wake(): void {
    const waiting = this.waiting;
    if (waiting === undefined) return;
    // The client was ready for more until now: a burst that queues behind this is not a stall.
    this.lastPull = performance.now();
    this.waiting = undefined;
    waiting();
  }
}

function resetFrame(index: number): Uint8Array {
  return frameOf(resetEvent(index, "more events came than this stream could queue for its client: read the list again"));
}

export function eventRoutes(app: Hono, discovery: Discovery, opts: EventStreamOptions = DEFAULT_EVENT_STREAM): void {
  const streams = new Set<SseStream>();
  const stats = { opened: 0, cutOff: 0, resets: 0, eventsSent: 0 };
  const peak = { bytes: 0 };
  discovery.addStatsSource("events", (): EventStreamStats => ({ ...stats, open: streams.size, peakQueuedBytes: peak.bytes }));
  const current = () => discovery.changes.current;
  // One timer for every stream, running while any is open: heartbeats, and the look for stalled clients.
  let heartbeat: NodeJS.Timeout | undefined;
  const beat = () => {
    for (const s of streams) {
      s.checkStall();
      s.push(HEARTBEAT, undefined, current);
    }
  };

  app.get("/v1/events", (c) => {
    const params = new URLSearchParams(searchOf(c.req.url));
    const after = resumeIndex(c.req.header("last-event-id"), params.getAll("after"));
    params.delete("after");
    const filter = compileServiceQuery(params.toString());
    let unsubscribe: (() => void) | undefined;
    const end = () => {
      unsubscribe?.();
      unsubscribe = undefined;
      streams.delete(stream);
      if (streams.size === 0 && heartbeat !== undefined) {
        clearInterval(heartbeat);
        heartbeat = undefined;
      }
    };
    const stream = new SseStream(
      opts.clientBufferBytes,
      opts.heartbeatMs,
      () => {
        stats.cutOff += 1;
        end();
        (c.env as { outgoing?: { destroy(): void } } | undefined)?.outgoing?.destroy();
      },
      () => (stats.resets += 1),
      peak,
      end,
    );
    const subscription = discovery.eventFeed.subscribe(
      {
        onEvent(e) {
          if (!passes(e, filter)) return;
          stats.eventsSent += 1;
          stream.push(frameOf(e), e.last ? e.event.index : undefined, current);
        },
        onClose() {
          end();
          stream.end();
        },
      },
      after,
      filter,
    );
    unsubscribe = subscription.unsubscribe;
    streams.add(stream);
    stats.opened += 1;
    heartbeat ??= setInterval(beat, opts.heartbeatMs).unref();
    // Reconnect after 2 s; what was missed, then where this stream starts (an id-only block sets the client's
    // Last-Event-ID without an event) unless a reset said it. A replay past the bound becomes a reset, as above.
    stream.push(RETRY, undefined, current);
    for (const e of subscription.replay) stream.push(frameOf(e), e.last ? e.event.index : undefined, current);
    if (!subscription.replay.some((e) => e.event.type === "reset")) stream.push(encoder.encode(`id: ${current()}\n\n`), current(), current);
    c.req.raw.signal.addEventListener("abort", end, { once: true });
    return new Response(stream.body, {
      status: 200,
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        // nginx buffers proxied answers unless told not to.
        "x-accel-buffering": "no",
        "x-index": String(current()),
      },
    });
  });
}

/** Last-Event-ID (the browser's reconnect) or ?after= (a first connect that read the list at that X-Index). */
function resumeIndex(header: string | undefined, params: string[]): number | undefined {
  if (params.length > 1) throw new InvalidError("invalid query: 'after' may be given once");
  const raw = header ?? params[0];
  if (raw === undefined || raw === "") return undefined;
  if (!/^\d{1,16}$/.test(raw)) throw new InvalidError(`invalid ${header !== undefined ? "Last-Event-ID" : "query: after"}: must be the index of an earlier event, not '${raw.slice(0, 40)}'`);
  return Number(raw);
}
