// Serves a Hono app on a host:port with @hono/node-server, and closes it gracefully.
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { serve } from "@hono/node-server";
import type { Hono } from "hono";

export interface HttpServerHandle {
  readonly host: string;
  readonly port: number;
  /** Stops accepting, lets in-flight requests finish, closes idle keep-alive connections. */
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
            http.close(() => done());
            http.closeIdleConnections();
          }),
      });
    }) as Server;
    server.once("error", reject);
  });
}
