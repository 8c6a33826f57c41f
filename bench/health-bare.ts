// The control for the health benchmark: no registry, no scheduler state, no DNS; just the same HTTP GETs our
// checker sends (undici request through one Agent with the checker's options, an AbortSignal.timeout, the body
// read), each URL once every interval, spread evenly. Its CPU is the floor an HTTP checker in Node pays for the
// requests themselves. Forked with IPC like bench/health-server.ts: sends {ready}; takes {start: {interval, urls}}
// (answered {started}) and answers {usage: true}.
import { Agent, request } from "undici";
import { ownUsage } from "./procstat.js";

const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 4 });
let done = 0;
let failed = 0;

async function check(url: string): Promise<void> {
  const signal = AbortSignal.timeout(5000);
  try {
    const res = await request(url, { method: "GET", dispatcher, signal, headers: { "user-agent": "homelab-discovery health check" } });
    const chunks: Buffer[] = [];
    for await (const chunk of res.body) chunks.push(chunk as Buffer);
    if (res.statusCode !== 200) failed += 1;
    Buffer.concat(chunks).toString("utf8");
  } catch {
    failed += 1;
  }
  done += 1;
}

function start(interval: number, urls: readonly string[]): void {
  urls.forEach((url, i) => {
    const schedule = (delay: number) =>
      setTimeout(() => {
        void check(url).finally(() => schedule(interval));
      }, delay);
    schedule(Math.floor((i / urls.length) * interval));
  });
}

process.on("message", (msg: { usage?: boolean; start?: { interval: number; urls: string[] } }) => {
  if (msg.start) {
    start(msg.start.interval, msg.start.urls);
    process.send!({ started: true });
  } else if (msg.usage) {
    process.send!({
      usage: { ...ownUsage(), done, failed },
    });
  }
});
process.on("disconnect", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
process.send!({ ready: true });
