// The peers of bench/write-cost.ts: a server that takes `PUT /v1/services/:id` with a JSON body, keeps the parsed
// body in a Map and answers it back, as little as an HTTP registry can do. `--kind node`: bench/bare-writes.ts, a
// bare node:http handler; `--kind hono`: one Hono route on our listener (src/http/server.ts listenHttp), reading
// the body with c.req.json().
// Prints {"port":...} once ready; SIGTERM stops it.
import { parseArgs } from "node:util";
import { Hono } from "hono";
import { listenHttp } from "../src/http/server.js";
import { startBareWrites } from "./bare-writes.js";

const { values } = parseArgs({ options: { kind: { type: "string", default: "node" } } });
const JSON_HEADERS = { "content-type": "application/json" } as const;
let close: () => Promise<void>;
let port: number;
if (values.kind === "node") {
  ({ port, close } = await startBareWrites());
} else if (values.kind === "hono") {
  const app = new Hono();
  const store = new Map<string, unknown>();
  app.put("/v1/services/:id", async (c) => {
    const id = c.req.param("id");
    const entry = { ...((await c.req.json()) as object), id };
    store.set(id, entry);
    return c.body(JSON.stringify(entry), 200, JSON_HEADERS);
  });
  const http = await listenHttp(app, "127.0.0.1", 0);
  port = http.port;
  close = http.close;
} else {
  throw new Error(`--kind: node or hono, not ${values.kind}`);
}
console.log(JSON.stringify({ port }));
process.once("SIGTERM", () => void close().then(() => process.exit(0)));
