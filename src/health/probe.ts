// Probes: one check of one instance, returning a status and the check's output. Adapters over undici;
// the scheduler (periodic checks, thresholds, backoff) builds on these.
import { connect, type LookupFunction } from "node:net";
import type { Agent } from "undici";
import { urlHost } from "../lib/hostport.js";
import { loadUndici } from "../lib/undici.js";
import type { HealthStatus, ServiceEntry } from "../model/index.js";

export const MAX_OUTPUT_BYTES = 4096;

export interface ProbeResult {
  readonly status: HealthStatus;
  /** What the check saw: the start of the response body, or the error. At most 4 KB. */
  readonly output: string;
  readonly durationMs: number;
}

export function healthUrl(entry: Pick<ServiceEntry, "address" | "port" | "healthEndpoint">): string | undefined {
  const endpoint = entry.healthEndpoint;
  if (endpoint === undefined) return undefined;
  if (!endpoint.startsWith("/")) return endpoint;
  return `http://${urlHost(entry.address)}:${entry.port}${endpoint}`;
}

/** HTTP status to health, as Consul does: 2xx healthy, 429 degraded, anything else unhealthy. */
export function statusOfHttp(code: number): HealthStatus {
  if (code >= 200 && code < 300) return "healthy";
  if (code === 429) return "degraded";
  return "unhealthy";
}

export class Prober {
  /** One keep-alive pool for every HTTP check; redirects are never followed (undici's request does not). */
  private dispatcher: Agent | undefined;

  /** `lookup`: how the probes' sockets resolve names (targets.ts refuses metadata addresses there). */
  constructor(private readonly lookup?: LookupFunction) {}

  /** 2xx healthy (degraded when slower than degradedAfterMs), 429 degraded, anything else unhealthy. */
  async http(url: string, timeoutMs: number, degradedAfterMs = Infinity): Promise<ProbeResult> {
    // Loaded before the clock starts: loading is not the instance's slowness.
    const { Agent, request } = await loadUndici();
    // No cap per origin (checkConcurrency caps them all): with one, the checks of instances behind one
    // address:port queued behind a hung one, and their timeout counted the queue.
    this.dispatcher ??= new Agent({ keepAliveTimeout: 30_000, ...(this.lookup ? { connect: { lookup: this.lookup } } : {}) });
    const started = performance.now();
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const res = await request(url, {
        method: "GET",
        dispatcher: this.dispatcher,
        signal,
        headers: { "user-agent": "homelab-discovery health check" },
      });
      const body = await readCapped(res.body, MAX_OUTPUT_BYTES);
      const durationMs = performance.now() - started;
      let status = statusOfHttp(res.statusCode);
      let output = `HTTP ${res.statusCode}: ${body}`;
      if (status === "healthy" && durationMs > degradedAfterMs) {
        status = "degraded";
        output = `HTTP ${res.statusCode} after ${Math.round(durationMs)} ms (slower than ${degradedAfterMs} ms): ${body}`;
      }
      return { status, output, durationMs };
    } catch (err) {
      const reason = signal.aborted ? `timed out after ${timeoutMs} ms` : describe(err);
      return { status: "unhealthy", output: `GET ${url}: ${reason}`, durationMs: performance.now() - started };
    }
  }

  /** Connected is healthy. */
  tcp(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
    const started = performance.now();
    return new Promise((resolve) => {
      const socket = connect({ host, port, ...(this.lookup ? { lookup: this.lookup } : {}) });
      const done = (status: HealthStatus, output: string) => {
        socket.destroy();
        resolve({ status, output, durationMs: performance.now() - started });
      };
      socket.setTimeout(timeoutMs, () => done("unhealthy", `TCP ${host}:${port}: timed out after ${timeoutMs} ms`));
      socket.once("connect", () => done("healthy", `TCP ${host}:${port}: connected`));
      socket.once("error", (err) => done("unhealthy", `TCP ${host}:${port}: ${describe(err)}`));
    });
  }

  /** Ends the checks in flight too: a stop must not wait for a backend that takes its time (up to the timeout). */
  async close(): Promise<void> {
    await this.dispatcher?.destroy();
  }
}

async function readCapped(body: AsyncIterable<Buffer> & { destroy(): unknown }, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= limit) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, limit).toString("utf8");
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string }).code ?? (err.cause as { code?: string } | undefined)?.code;
    return code ? `${code} ${err.message}` : err.message;
  }
  return String(err);
}
