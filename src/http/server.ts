// Serves a Hono app on a host:port with @hono/node-server, and closes it gracefully.
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { serve } from "@hono/node-server";
import type { Hono } from "hono";

export interface HttpServerHandle {
  readonly host: string;
  readonly port: number;
  /** Stops accepting, lets in-flight requests finish, closes keep-alive connections as they go idle. */
  close(): Promise<void>;
}

/** What a client may hold: slow or idle clients are cut off, and connections beyond the cap closed at once. */
export interface HttpLimits {
  /** Connections open at once; more are closed as they arrive. */
  maxConnections: number;
  /** A request's headers must arrive within this, ms. */
  headersTimeoutMs: number;
  /** The whole request (headers and body) must arrive within this, ms; the answer may take longer (blocking queries). */
  requestTimeoutMs: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = { maxConnections: 1024, headersTimeoutMs: 10_000, requestTimeoutMs: 30_000 };

export function listenHttp(app: Hono, host: string, port: number, limits: HttpLimits = DEFAULT_HTTP_LIMITS): Promise<HttpServerHandle> {
  return new Promise((resolve, reject) => {
    const serverOptions = {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      // How often Node looks for requests past those timeouts (30 s by default): a tenth of the shorter one.
      connectionsCheckingInterval: Math.max(100, Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 10),
    };
    const server = serve({ fetch: app.fetch, hostname: host, port, serverOptions }, (info: AddressInfo) => {
      server.off("error", reject);
      resolve({
        host: info.address,
        port: info.port,
        close: () =>
          new Promise<void>((done) => {
            const http = server as Server;
            // A connection busy at close (a blocking query being answered, say) stays open for the client's
            // keep-alive once its response is sent (measured: 3 s): close each as soon as it is idle.
            const sweep = setInterval(() => http.closeIdleConnections(), 20);
            http.close(() => {
              clearInterval(sweep);
              done();
            });
            http.closeIdleConnections();
          }),
      });
    }) as Server;
    server.maxConnections = limits.maxConnections;
    server.once("error", reject);
  });
}
