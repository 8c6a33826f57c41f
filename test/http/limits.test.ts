// Hostile HTTP clients: slow headers, a body dripped a byte at a time, more connections than allowed. None of them
// holds the server; a blocking query, whose answer is slow on purpose, is not cut by the request timeout.
import { connect, type Socket } from "node:net";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerHandle } from "../../src/app/server.js";
import { api, startTestServer } from "../helpers.js";

let server: ServerHandle;
beforeAll(async () => {
  server = await startTestServer({ httpHeadersTimeout: 400, httpRequestTimeout: 800, httpMaxConnections: 4 });
});
afterAll(() => server.stop());

function open(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.http.port, "127.0.0.1", () => resolve(socket));
    socket.once("error", reject);
  });
}
/** Writes `text` a byte every `everyMs` until the server closes the connection; resolves with how long it took. */
function drip(socket: Socket, text: string, everyMs: number): Promise<number> {
  const start = Date.now();
  let i = 0;
  const timer = setInterval(() => {
    if (!socket.destroyed && i < text.length) socket.write(text[i++]!);
  }, everyMs);
  socket.on("error", () => undefined);
  return new Promise((resolve) =>
    socket.once("close", () => {
      clearInterval(timer);
      resolve(Date.now() - start);
    }),
  );
}

describe("the HTTP server under hostile clients", () => {
  it("closes a connection whose headers come too slowly (a byte every 50 ms keeps no connection)", async () => {
    const took = await drip(await open(), `GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: ${"a".repeat(200)}\r\n\r\n`, 50);
    expect(took).toBeLessThan(3_000);
  });

  it("closes a connection whose body comes too slowly, and registers nothing", async () => {
    const body = JSON.stringify({ name: "slow", address: "10.0.0.1", port: 1 });
    const head = `PUT /v1/services/slow-1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const socket = await open();
    socket.write(head);
    const took = await drip(socket, body, 50);
    expect(took).toBeLessThan(3_000);
    expect((await api(server.url, "GET", "/v1/services/slow-1")).status).toBe(404);
  });

  it("answers a blocking query that waits longer than the request timeout", async () => {
    const first = await api(server.url, "GET", "/v1/services?name=nothing");
    const start = Date.now();
    const blocked = await api(server.url, "GET", `/v1/services?name=nothing&index=${first.headers.get("x-index")}&wait=1500ms`);
    expect(blocked.status).toBe(200);
    expect(Date.now() - start).toBeGreaterThanOrEqual(1_400);
  });

  it("logs a client that hangs up mid-body at debug, without a stack: a client cannot fill the log at error level", async () => {
    const lines: { level: number; msg: string }[] = [];
    const logger = pino({ level: "debug" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const own = await startTestServer({}, { logger });
    try {
      const socket = connect(own.http.port, "127.0.0.1");
      await new Promise((resolve) => socket.once("connect", resolve));
      socket.write('PUT /v1/services/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"id":');
      await new Promise((resolve) => setTimeout(resolve, 100));
      socket.destroy();
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      await own.stop();
    }
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(lines.some((l) => l.level === 20 && l.msg === "client closed the connection before the request was read")).toBe(true);
  });

  it("answers 16 pipelined requests on one connection, and closes one that sends more without reading", async () => {
    const ask = (n: number) =>
      new Promise<{ answers: number; closed: boolean }>((resolve) => {
        void open().then((socket) => {
          let text = "";
          socket.on("data", (chunk: Buffer) => {
            text += chunk.toString("latin1");
            if ((text.match(/HTTP\/1\.1 200/g) ?? []).length === n) {
              socket.destroy();
              resolve({ answers: n, closed: false });
            }
          });
          socket.on("error", () => undefined);
          socket.on("close", () => resolve({ answers: (text.match(/HTTP\/1\.1 200/g) ?? []).length, closed: true }));
          socket.write("GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n".repeat(n));
        });
      });
    expect(await ask(16)).toEqual({ answers: 16, closed: false });
    const flood = await ask(1_000);
    expect(flood.closed).toBe(true);
    expect(flood.answers).toBeLessThanOrEqual(16); // the rest were never handed to the app
  });

  it("closes connections beyond the cap as they arrive, and takes new ones once others leave", async () => {
    const held = await Promise.all([open(), open(), open(), open()]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const extra = await open();
    const closed = await new Promise<boolean>((resolve) => {
      extra.once("close", () => resolve(true));
      extra.on("error", () => undefined);
      setTimeout(() => resolve(false), 1_000);
    });
    expect(closed).toBe(true);
    for (const s of held) s.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await api(server.url, "GET", "/v1/status")).status).toBe(200);
  });
});
