// Keep-alive pools for HTTP checks: one undici Agent per TLS setting (verify against the system CAs, plus a CA
// file, or not at all), shared by every check with that setting. undici is loaded on the first HTTP check.
import type { LookupFunction } from "node:net";
import type { Agent } from "undici";
import { loadUndici } from "../lib/undici.js";

export class HttpPools {
  private readonly agents = new Map<string, Agent>();
  private closed = false;

  constructor(private readonly lookup?: LookupFunction) {}

  /** The pool for checks with this TLS setting (`key` names it; `tls` is undici's connect options for it). */
  async agent(key = "", tls: Record<string, unknown> = {}): Promise<Agent> {
    const { Agent } = await loadUndici();
    let agent = this.agents.get(key);
    if (agent === undefined) {
      if (this.closed) throw new Error("the checker is stopping");
      // No cap per origin (checkConcurrency caps them all): with one, the checks of instances behind one
      // address:port queued behind a hung one, and their timeout counted the queue.
      agent = new Agent({ keepAliveTimeout: 30_000, connect: { ...(this.lookup ? { lookup: this.lookup } : {}), ...tls } });
      this.agents.set(key, agent);
    }
    return agent;
  }

  /** Ends the checks in flight too: a stop must not wait for a backend that takes its time (up to the timeout). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.agents.values()].map((a) => a.destroy()));
    this.agents.clear();
  }
}
