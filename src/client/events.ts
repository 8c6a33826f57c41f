// The SSE side of the client: reads GET /v1/events, and reconnects with Last-Event-ID after a dropped stream
// or a server that cannot be reached, so the iteration sees what it missed (or a reset), never a silent gap.
import { setTimeout as sleep } from "node:timers/promises";
import type { ServiceEvent } from "../registry/index.js";
import { UnavailableError } from "../lib/errors.js";

/** One SSE message: the fields of a block up to its blank line (the WHATWG event-stream format). */
export interface SseMessage {
  event: string;
  data: string;
  /** The last id seen so far on the stream (ids carry over blocks that have none). */
  lastId: string | undefined;
}

/** Splits an event stream into messages; blocks with no data (comments, id-only, retry) only move the id. */
export class SseParser {
  private buffer = "";
  private event = "";
  private data: string[] = [];
  lastId: string | undefined;

  push(text: string): SseMessage[] {
    this.buffer += text;
    const out: SseMessage[] = [];
    let start = 0;
    for (;;) {
      const nl = this.buffer.indexOf("\n", start);
      if (nl === -1) break;
      let line = this.buffer.slice(start, nl);
      start = nl + 1;
      if (line.endsWith("\r")) line = line.slice(0, -1);
      if (line === "") {
        if (this.data.length > 0) out.push({ event: this.event || "message", data: this.data.join("\n"), lastId: this.lastId });
        this.event = "";
        this.data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "data") this.data.push(value);
      else if (field === "event") this.event = value;
      else if (field === "id" && !value.includes("\0")) this.lastId = value;
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }
}

export interface RemoteEventsOptions {
  after?: number;
  signal?: AbortSignal;
  /** First and largest pause before connecting again, ms (default 500, 30 000). */
  retryMs?: [first: number, max: number];
}

/**
 * Follows a stream opened by `open` (given the Last-Event-ID to send), reconnecting after a drop. `open` throws
 * UnavailableError when the server cannot be reached (retried) and other typed errors for a refusal (thrown).
 */
export async function* followRemote(
  open: (after: number | undefined, signal: AbortSignal | undefined) => Promise<AsyncIterable<Uint8Array | string>>,
  opts: RemoteEventsOptions = {},
): AsyncGenerator<ServiceEvent> {
  const { signal } = opts;
  const [firstRetryMs, maxRetryMs] = opts.retryMs ?? [500, 30_000];
  let after = opts.after;
  let retryMs = firstRetryMs;
  while (!signal?.aborted) {
    const parser = new SseParser();
    try {
      const body = await open(after, signal);
      const decoder = new TextDecoder();
      for await (const chunk of body) {
        retryMs = firstRetryMs;
        for (const message of parser.push(typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true }))) {
          if (message.lastId !== undefined) after = Number(message.lastId);
          yield JSON.parse(message.data) as ServiceEvent;
        }
        if (parser.lastId !== undefined) after = Number(parser.lastId);
      }
    } catch (err) {
      if (signal?.aborted) return;
      if (!(err instanceof UnavailableError) && !isDropped(err)) throw err;
    }
    if (parser.lastId !== undefined) after = Number(parser.lastId);
    // Ends early (and quietly) when the signal aborts; the loop condition then ends the iteration.
    await sleep(retryMs, undefined, signal ? { signal } : {}).catch(() => undefined);
    retryMs = Math.min(retryMs * 2, maxRetryMs);
  }
}

/** The stream broke mid-way (the server went away): reconnect, as after an unreachable server. */
function isDropped(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && (code.startsWith("UND_ERR") || code === "ECONNRESET" || code === "EPIPE");
}
