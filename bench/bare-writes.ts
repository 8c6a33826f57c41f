// The least an HTTP registry does for a write, the peer of our write path (bench/write-cost.ts, and inside our
// server for bench/dns-churn.ts's `bare` phase): a node:http server taking `PUT /v1/services/:id` with a JSON
// body, keeping `{...body, id}` in a Map and answering it back.
import { createServer } from "node:http";

const JSON_HEADERS = { "content-type": "application/json" } as const;

export async function startBareWrites(host = "127.0.0.1"): Promise<{ port: number; close: () => Promise<void> }> {
  const store = new Map<string, unknown>();
  const server = createServer((req, res) => {
    const id = decodeURIComponent((req.url ?? "").slice("/v1/services/".length));
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const entry = { ...(JSON.parse(Buffer.concat(chunks).toString("utf8")) as object), id };
      store.set(id, entry);
      res.writeHead(200, JSON_HEADERS).end(JSON.stringify(entry));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
