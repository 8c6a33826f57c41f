// A query's answers as they change, over blocking queries, for any DiscoveryApi (embedded or remote): what
// `consul watch` and consul-template do, as an async iterator.
import { setTimeout as sleep } from "node:timers/promises";
import type { DiscoveryApi } from "../registry/index.js";
import { UnavailableError } from "../lib/errors.js";
import type { ServiceQuery, ServiceQueryBuilder } from "../registry/index.js";
import type { ServiceEntry } from "../model/index.js";

export interface UpdatesOptions {
  /** Ends the iteration (it returns; nothing throws). */
  signal?: AbortSignal;
  /** How long each blocking query waits, ms (default 5 min). */
  waitMs?: number;
  /** First and largest pause before asking again after the server could not be reached, ms (default 500, 30 000). */
  retryMs?: [first: number, max: number];
}

/**
 * Yields the query's answer now, then again each time it differs from the last one yielded. A server that cannot
 * be reached is asked again with a growing pause (a restart loses nothing: its indexes start past the old ones);
 * other errors (an invalid query, say) end the iteration by throwing.
 */
export async function* serviceUpdates(api: DiscoveryApi, query: ServiceQuery | ServiceQueryBuilder | undefined, opts: UpdatesOptions = {}): AsyncGenerator<ServiceEntry[]> {
  const { signal } = opts;
  const [firstRetryMs, maxRetryMs] = opts.retryMs ?? [500, 30_000];
  let index: number | undefined;
  let last: string | undefined;
  let retryMs = firstRetryMs;
  while (!signal?.aborted) {
    let result;
    try {
      result = await api.watchServices(query, { ...(index === undefined ? {} : { index }), ...(opts.waitMs === undefined ? {} : { waitMs: opts.waitMs }), ...(signal ? { signal } : {}) });
    } catch (err) {
      if (signal?.aborted) return;
      if (!(err instanceof UnavailableError)) throw err;
      // Ends early (and quietly) when the signal aborts; the loop condition then ends the iteration.
      await sleep(retryMs, undefined, signal ? { signal } : {}).catch(() => undefined);
      retryMs = Math.min(retryMs * 2, maxRetryMs);
      index = undefined; // ask for the answer as it is once the server is back
      continue;
    }
    retryMs = firstRetryMs;
    index = result.index;
    const body = JSON.stringify(result.services);
    if (body === last) continue; // woken by a change the query's filter hides, or the wait ran out
    last = body;
    yield result.services;
  }
}
