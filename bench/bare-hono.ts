// The peer: a bare Hono route on the same @hono/node-server listener (src/http/server.ts listenHttp), no registry,
// no middleware. Serves the constant bodies in the JSON file given as the first argument ({"<name>": "<body>"}) at
// GET /bare/<name> with the same content-type our route sends. Prints {"port":...} once ready.
// --profile <file>: CPU profile of the serving phase, written on stop. --compress: hono/compress on every route
// (the peer of bench/compress.ts).
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Hono } from "hono";
import { compress } from "hono/compress";
import { listenHttp } from "../src/http/server.js";
import { startProfiler } from "./profiler.js";

const { values, positionals } = parseArgs({ options: { profile: { type: "string" }, compress: { type: "boolean", default: false } }, allowPositionals: true });
const file = positionals[0];
if (file === undefined) throw new Error("usage: bare-hono.js <bodies.json> [--profile <file>]");
const bodies = JSON.parse(readFileSync(file, "utf8")) as Record<string, string>;

const JSON_HEADERS = { "content-type": "application/json" } as const;
const app = new Hono();
if (values.compress) app.use(compress());
for (const [name, body] of Object.entries(bodies)) {
  app.get(`/bare/${name}`, (c) => c.body(body, 200, JSON_HEADERS));
}
const http = await listenHttp(app, "127.0.0.1", 0);
const stopProfiler = values.profile ? await startProfiler(values.profile) : undefined;

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(1), 5_000).unref();
  void (async () => {
    await stopProfiler?.();
    await http.close();
    process.exit(0);
  })();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

process.stdout.write(JSON.stringify({ port: http.port, routes: Object.keys(bodies) }) + "\n");
