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

export function listenHttp(app: Hono, host: string, port: number): Promise<HttpServerHandle> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: host, port }, (info: AddressInfo) => {
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
    server.once("error", reject);
  });
}
