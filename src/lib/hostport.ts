// host:port text, in one place: what a listen address or an upstream is, how an IPv6 host is bracketed in a URL,
// and which hosts are wildcards or loopback. A leaf: it imports no part.
import { isIP } from "node:net";
import { z } from "zod";

export interface Listen {
  host: string;
  port: number;
}

/** "host:port" or "[v6]:port" into a Listen; the message names the accepted forms. */
export const listenSchema = z.string().transform((raw, ctx): Listen => {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(raw.trim());
  const host = m ? (m[1] ?? m[2] ?? "") : "";
  const port = m ? Number(m[3]) : NaN;
  if (!m || host === "" || !(port >= 0 && port <= 65535) || (m[1] !== undefined && isIP(host) !== 6)) {
    ctx.addIssue({ code: "custom", message: `must be host:port (e.g. 127.0.0.1:8500 or [::1]:8500), got ${JSON.stringify(raw)}` });
    return z.NEVER;
  }
  return { host, port };
});

/** "host", "host:port", "v6" or "[v6]:port" with `port` filled in when none is given. */
export function withDefaultPort(text: string, port: number): string {
  const hasPort = /^\[.+\]:\d+$/.test(text) || /^[^:]+:\d+$/.test(text);
  return hasPort ? text : `${urlHost(text)}:${port}`;
}

/** A host as it stands in a URL or before ":port": an IPv6 address in brackets. */
export function urlHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

export function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::";
}

/** Where this machine reaches its own listener bound to `bound`: loopback for a wildcard or "localhost", else the
 * address itself (the server's self-checks, the container's healthcheck). */
export function ownHost(bound: string): string {
  if (bound === "::") return "::1";
  if (bound === "0.0.0.0" || bound === "localhost") return "127.0.0.1";
  return bound;
}

export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}
