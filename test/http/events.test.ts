// GET /v1/events (Server-Sent Events) against a started server over real sockets: the four kinds of event with
// their indexes, the filters of /v1/services, Last-Event-ID replay and reset, heartbeats, and a client that never
// reads being cut off without growing the server's memory.
import { request as httpRequest, type IncomingMessage } from "node:http";
import { connect } from "node:net";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { SseParser, type SseMessage } from "../../src/client/events.js";
import { api, startTestServer } from "../helpers.js";

interface Stream {
  res: IncomingMessage;
  messages: SseMessage[];
  raw: () => string;
  /** Waits until at least n messages arrived. */
  until(n: number): Promise<SseMessage[]>;
  ended: Promise<void>;
  close(): void;
}

function openStream(base: string, path: string, headers: Record<string, string> = {}): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { headers: { accept: "text/event-stream", ...headers } }, (res) => {
      const parser = new SseParser();
      const messages: SseMessage[] = [];
      let raw = "";
      res.setEncoding("utf8");
      res.on("data", (text: string) => {
        raw += text;
        messages.push(...parser.push(text));
      });
      const ended = new Promise<void>((done) => res.on("close", () => done()));
      resolve({
        res,
        messages,
        raw: () => raw,
        until: async (n) => {
          await expect.poll(() => messages.length, { timeout: 5_000 }).toBeGreaterThanOrEqual(n);
          return messages;
        },
        ended,
        close: () => req.destroy(),
      });
    });
    req.on("error", reject);
    req.end();
  });
}

const svc = (name: string, over: Record<string, unknown> = {}) => ({ name, address: "10.0.0.1", port: 80, ...over });
const data = (m: SseMessage) => JSON.parse(m.data) as Record<string, any>;

describe("GET /v1/events", () => {
  let server: ServerHandle;
  beforeAll(async () => {
    server = await startTestServer({ eventsHeartbeat: 100 });
  });
  afterAll(() => server.stop());

  it("streams registered, health, maintenance and deregistered with the instance, each id the registry index", async () => {
    const stream = await openStream(server.url, "/v1/events?name=ev");
    expect(stream.res.statusCode).toBe(200);
    expect(stream.res.headers["content-type"]).toMatch(/^text\/event-stream/);
    await api(server.url, "PUT", "/v1/services/ev-1", svc("ev", { ttl: 60_000 }));
    const afterRegister = Number((await api(server.url, "GET", "/v1/services?name=ev")).headers.get("x-index"));
    await api(server.url, "PUT", "/v1/services/ev-1/heartbeat", { status: "unhealthy", note: "disk full" });
    await api(server.url, "PUT", "/v1/services/ev-1/maintenance", { enable: true, reason: "swap disk" });
    await api(server.url, "DELETE", "/v1/services/ev-1");
    const messages = await stream.until(4);
    expect(messages.map((m) => m.event)).toEqual(["registered", "health", "maintenance", "deregistered"]);
    const [registered, health, maintenance, deregistered] = messages.map(data);
    expect(registered).toMatchObject({ type: "registered", replaced: false, index: afterRegister, instance: { id: "ev-1", name: "ev", healthStatus: "unknown" } });
    expect(messages[0]!.lastId).toBe(String(afterRegister));
    expect(health).toMatchObject({ type: "health", previousStatus: "unknown", healthStatus: "unhealthy", reason: "heartbeat: disk full", instance: { id: "ev-1" } });
    expect(maintenance).toMatchObject({ type: "maintenance", enabled: true, reason: "swap disk", instance: { maintenance: { reason: "swap disk" } } });
    expect(deregistered).toMatchObject({ type: "deregistered", instance: { id: "ev-1" } });
    const indexes = [registered, health, maintenance, deregistered].map((e) => e!.index as number);
    expect([...indexes].sort((a, b) => a - b)).toEqual(indexes);
    expect(new Set(indexes).size).toBe(4);
    expect(messages[3]!.lastId).toBe(String(indexes[3]));
    stream.close();
  });

  it("filters as /v1/services does, and an instance leaving a filtered set is news to it", async () => {
    const healthy = await openStream(server.url, "/v1/events?name=flt&health=healthy");
    const tagged = await openStream(server.url, "/v1/events?tag=blue");
    await api(server.url, "PUT", "/v1/services/other-1", svc("other", { ttl: 60_000 }));
    await api(server.url, "PUT", "/v1/services/other-1/heartbeat", {});
    await api(server.url, "PUT", "/v1/services/flt-1", svc("flt", { ttl: 60_000, tags: ["blue"] }));
    await api(server.url, "PUT", "/v1/services/flt-1/heartbeat", {}); // unknown -> healthy: enters the set
    await api(server.url, "PUT", "/v1/services/flt-1/heartbeat", { status: "unhealthy" }); // leaves it
    const messages = await healthy.until(2);
    await new Promise((r) => setTimeout(r, 100));
    expect(messages.map((m) => [data(m).instance.id, data(m).previousStatus, data(m).healthStatus])).toEqual([
      ["flt-1", "unknown", "healthy"],
      ["flt-1", "healthy", "unhealthy"],
    ]);
    expect((await tagged.until(3)).map((m) => m.event)).toEqual(["registered", "health", "health"]);
    healthy.close();
    tagged.close();
  });

  it("refuses a bad filter or a bad Last-Event-ID with 400 and the reason, before any stream starts", async () => {
    const bad = await api(server.url, "GET", "/v1/events?health=sick");
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/health/);
    expect(bad.body.error.issues[0].path).toEqual(["health"]);
    expect((await api(server.url, "GET", "/v1/events?tags=a")).status).toBe(400);
    const id = await api(server.url, "GET", "/v1/events", undefined, { "last-event-id": "yesterday" });
    expect(id.status).toBe(400);
    expect(id.body.error.message).toMatch(/Last-Event-ID/);
  });

  it("replays what a client missed after its Last-Event-ID, and nothing it had", async () => {
    const first = await openStream(server.url, "/v1/events?name=rp");
    await api(server.url, "PUT", "/v1/services/rp-1", svc("rp"));
    const [seen] = await first.until(1);
    first.close();
    await api(server.url, "PUT", "/v1/services/rp-2", svc("rp"));
    await api(server.url, "PUT", "/v1/services/other-2", svc("other"));
    await api(server.url, "DELETE", "/v1/services/rp-1");
    const again = await openStream(server.url, "/v1/events?name=rp", { "last-event-id": seen!.lastId! });
    const messages = await again.until(2);
    expect(messages.map((m) => [m.event, data(m).instance.id])).toEqual([
      ["registered", "rp-2"],
      ["deregistered", "rp-1"],
    ]);
    // The same through ?after= (a first connect after reading the list at its X-Index).
    const byParam = await openStream(server.url, `/v1/events?name=rp&after=${seen!.lastId}`);
    expect((await byParam.until(2)).map((m) => data(m).instance.id)).toEqual(["rp-2", "rp-1"]);
    // An id-only block tells a fresh stream where it starts, so a reconnect before any event misses nothing.
    expect(again.raw()).toMatch(/\nid: \d+\n\n/);
    again.close();
    byParam.close();
  });

  it("a bulk write's events carry one id, on its last event: a resume never lands mid-write", async () => {
    const stream = await openStream(server.url, "/v1/events?name=blk");
    await api(server.url, "POST", "/v1/services/bulk", { register: [svc("blk", { id: "blk-1" }), svc("blk", { id: "blk-2" })] });
    const [one, two] = await stream.until(2);
    expect(data(one!).index).toBe(data(two!).index);
    expect(stream.raw().match(/id: (\d+)\nevent: registered/g)).toHaveLength(1);
    expect(two!.lastId).toBe(String(data(two!).index));
    stream.close();
  });

  it("sends heartbeat comments while nothing happens", async () => {
    const stream = await openStream(server.url, "/v1/events?name=quiet");
    await expect.poll(() => stream.raw().split(":\n\n").length - 1, { timeout: 2_000 }).toBeGreaterThanOrEqual(3);
    expect(stream.messages).toEqual([]);
    stream.close();
  });

  it("ends its streams when the server stops, so the stop does not wait on them", async () => {
    const own = await startTestServer();
    const stream = await openStream(own.url, "/v1/events");
    const started = Date.now();
    await own.stop();
    await stream.ended;
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});

describe("GET /v1/events with a small replay ring", () => {
  let server: ServerHandle;
  beforeAll(async () => {
    server = await startTestServer({ eventsReplay: 4 });
  });
  afterAll(() => server.stop());

  it("sends a reset, never a silent gap, when the ring no longer reaches back or the id is from another process", async () => {
    const stream = await openStream(server.url, "/v1/events");
    await api(server.url, "PUT", "/v1/services/r-0", svc("r"));
    const [seen] = await stream.until(1);
    stream.close();
    for (let i = 1; i <= 6; i++) await api(server.url, "PUT", `/v1/services/r-${i}`, svc("r"));
    const late = await openStream(server.url, "/v1/events", { "last-event-id": seen!.lastId! });
    const [reset] = await late.until(1);
    expect(reset!.event).toBe("reset");
    const now = Number((await api(server.url, "GET", "/v1/services")).headers.get("x-index"));
    expect(data(reset!)).toMatchObject({ type: "reset", index: now, reason: expect.stringMatching(/older than the events kept/) });
    expect(reset!.lastId).toBe(String(now));
    // After the reset, the stream goes on with what comes next.
    await api(server.url, "PUT", "/v1/services/r-7", svc("r"));
    expect(data((await late.until(2))[1]!).instance.id).toBe("r-7");
    late.close();

    const stranger = await openStream(server.url, "/v1/events", { "last-event-id": "42" });
    const [other] = await stranger.until(1);
    expect(data(other!)).toMatchObject({ type: "reset", reason: expect.stringMatching(/not one this server handed out/) });
    stranger.close();

    // Within the ring: a replay, no reset.
    const recent = Number((await api(server.url, "GET", "/v1/services")).headers.get("x-index"));
    await api(server.url, "DELETE", "/v1/services/r-7");
    const near = await openStream(server.url, "/v1/events", { "last-event-id": String(recent) });
    expect((await near.until(1)).map((m) => m.event)).toEqual(["deregistered"]);
    near.close();
  });

  it("answers 503 past --max-event-streams", async () => {
    const own = await startTestServer({ maxEventStreams: 1 });
    const one = await openStream(own.url, "/v1/events");
    const two = await api(own.url, "GET", "/v1/events");
    expect(two.status).toBe(503);
    expect(two.body.error.message).toMatch(/--max-event-streams/);
    one.close();
    await expect.poll(async () => (await api(own.url, "GET", "/v1/stats")).body.events.open).toBe(0);
    await own.stop();
  });
});

describe("GET /v1/events and a client that does not read", () => {
  it("cuts the stream off at the bounded buffer; the server's memory does not grow with what it cannot send", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const bufferBytes = 64 * 1024;
    const server = await startTestServer({ eventsClientBuffer: bufferBytes, eventsHeartbeat: 200, maxMetadataBytes: 65_536, maxBodyBytes: 8 * 1024 * 1024 });
    try {
      // A real socket that sends the request and then never reads a byte.
      const socket = connect(Number(new URL(server.url).port), "127.0.0.1");
      await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
      socket.pause();
      socket.write("GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n");
      // A reading client beside it, to show the events do flow.
      const reader = await openStream(server.url, "/v1/events");
      await expect.poll(async () => (await api(server.url, "GET", "/v1/stats")).body.events.open).toBe(2);
      gc();
      const before = process.memoryUsage();
      // ~66 MB of events, one write at a time (a reader that keeps up gets each): 2,000 replacements of
      // instances with 33 KB of metadata.
      const value = "x".repeat(512);
      for (let i = 0; i < 2000; i++) {
        const metadata = Object.fromEntries(Array.from({ length: 64 }, (_, k) => [`k${k}`, `${i}${value}`.slice(0, 512)]));
        const res = await api(server.url, "PUT", `/v1/services/big-${i % 50}`, svc("big", { metadata }));
        expect(res.status).toBeLessThan(300);
      }
      await reader.until(2000);
      expect(new Set(reader.messages.map((m) => m.event))).toEqual(new Set(["registered"]));
      // Cut off once it has taken nothing for a heartbeat's time while events waited; the reader never was.
      await expect.poll(async () => (await api(server.url, "GET", "/v1/stats")).body.events, { timeout: 5_000 }).toMatchObject({ cutOff: 1, open: 1 });
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      socket.resume(); // reads what the kernel buffered, then sees the server's close
      await closed;
      // Memory freed by a GC is returned to the process a little later (external buffers are released after the
      // collection finishes): collect, let that happen, collect again, then read what is still held.
      gc();
      await new Promise((resolve) => setTimeout(resolve, 200));
      gc();
      const after = process.memoryUsage();
      // What the silent client was not sent (~66 MB) is not held. The server's own account: no stream ever held
      // more than the bound plus one frame.
      const { peakQueuedBytes } = (await api(server.url, "GET", "/v1/stats")).body.events;
      expect(peakQueuedBytes).toBeGreaterThan(bufferBytes / 2);
      expect(peakQueuedBytes).toBeLessThanOrEqual(bufferBytes + 40 * 1024);
      // And the process's: buffers grew by less than half of what the client was not sent (the measure is
      // coarse: what the HTTP clients and sockets of this worker hold moves it by up to ~20 MB here).
      expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(16 * 1024 * 1024);
      expect(reader.messages.length).toBe(2000);
      reader.close();
      socket.destroy();
    } finally {
      await server.stop();
    }
  });
});

describe("a routing policy's change over HTTP", () => {
  let server: ServerHandle;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.stop());

  it("is a routing event on the name's stream and answers a blocking ?routed=true query on it at once", async () => {
    for (const [id, version] of [["rt-2", "2.0.0"], ["rt-3", "3.0.0"]]) {
      expect((await api(server.url, "PUT", `/v1/services/${id}`, svc("rt", { version }))).status).toBe(201);
    }
    const stream = await openStream(server.url, "/v1/events?name=rt");
    const other = await openStream(server.url, "/v1/events?name=elsewhere");
    const first = await api(server.url, "GET", "/v1/services?name=rt&routed=true");
    expect(first.body.count).toBe(2);
    const index = first.headers.get("x-index");
    const t0 = performance.now();
    const blocked = api(server.url, "GET", `/v1/services?name=rt&routed=true&index=${index}&wait=30s`);
    await new Promise((r) => setTimeout(r, 50));
    expect((await api(server.url, "PUT", "/v1/routing/rt", { split: [{ version: "^3", weight: 100 }] })).status).toBe(200);
    const woke = await blocked;
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(woke.body.services.map((s: { id: string }) => s.id)).toEqual(["rt-3"]);
    expect(Number(woke.headers.get("x-index"))).toBeGreaterThan(Number(index));
    const [message] = await stream.until(1);
    expect(message!.event).toBe("routing");
    expect(data(message!)).toEqual({ type: "routing", index: Number(message!.lastId), name: "rt", split: [{ version: "^3", weight: 100 }] });
    expect(Number(message!.lastId)).toBe(Number(woke.headers.get("x-index")));
    await api(server.url, "DELETE", "/v1/routing/rt");
    expect((await stream.until(2)).map((m) => [m.event, data(m).split])).toEqual([["routing", [{ version: "^3", weight: 100 }]], ["routing", null]]);
    expect(other.messages.filter((m) => m.event !== undefined)).toEqual([]);
    stream.close();
    other.close();
  });
});
