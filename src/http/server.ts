// Serves a Hono app on a host:port with @hono/node-server, over HTTP or HTTPS, and closes it gracefully.
import { Socket, type AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { serve } from "@hono/node-server";
import type { Hono } from "hono";
import type { TlsMaterial } from "./tls.js";

export interface HttpServerHandle {
  readonly host: string;
  readonly port: number;
  /** "https" when it was given TLS material. */
  readonly scheme: "http" | "https";
  /** New connections get this material (the certificate reloaded on SIGHUP); open ones keep theirs. */
  setTls(material: TlsMaterial): void;
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

/** Requests one connection may have waiting for their answers (HTTP/1.1 pipelining). No browser or HTTP client
 * library pipelines; a client that sends a flood of requests in one write would otherwise have every answer built
 * and queued in memory at once (Node pauses the parser only once answers are written, and ours are async). */
export const MAX_PIPELINED = 16;

export const DEFAULT_HTTP_LIMITS: HttpLimits = { maxConnections: 1024, headersTimeoutMs: 10_000, requestTimeoutMs: 30_000 };

export function listenHttp(app: Hono, host: string, port: number, limits: HttpLimits = DEFAULT_HTTP_LIMITS, tls?: TlsMaterial): Promise<HttpServerHandle> {
  return new Promise((resolve, reject) => {
    const serverOptions = {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      // How often Node looks for requests past those timeouts (30 s by default): a tenth of the shorter one.
      connectionsCheckingInterval: Math.max(100, Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 10),
      ...(tls !== undefined ? tlsOptions(tls, limits) : {}),
    };
    const listener = tls !== undefined ? { createServer: createHttpsServer } : {};
    const server = serve({ fetch: app.fetch, hostname: host, port, serverOptions, ...listener }, (info: AddressInfo) => {
      server.off("error", reject);
      resolve({
        host: info.address,
        port: info.port,
        scheme: tls !== undefined ? "https" : "http",
        setTls: (material) => {
          if (tls === undefined) throw new Error("this listener speaks plain HTTP: TLS is chosen at start");
          (server as unknown as HttpsServer).setSecureContext(material.options);
        },
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
    boundPipelining(server as Server);
    if (tls !== undefined) answerPlainHttp(server as unknown as HttpsServer);
    server.once("error", reject);
  });
}

/** The https.Server's options: the certificate, client certificates when a CA is given, and a handshake that must
 * end within the headers' timeout (Node's default, 120 s, would let a client that never finishes one hold a
 * connection of the cap that long). */
function tlsOptions(tls: TlsMaterial, limits: HttpLimits) {
  return {
    ...tls.options,
    handshakeTimeout: limits.headersTimeoutMs,
    ...(tls.requireClientCert ? { requestCert: true, rejectUnauthorized: true } : {}),
  };
}

/**
 * Plain HTTP sent to the HTTPS port (`curl http://...`) is answered 400 "this port speaks HTTPS", as Go's server
 * and nginx do, rather than with a closed connection ("empty reply from server"). OpenSSL recognises the request
 * (ERR_SSL_HTTP_REQUEST); the answer goes on the raw socket under the TLS one, which Node keeps as `_parent` (not a
 * public field: without it the connection is only closed, as before).
 */
function answerPlainHttp(server: HttpsServer): void {
  server.on("tlsClientError", (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    const raw = (socket as unknown as { _parent?: unknown })._parent;
    if (err.code !== "ERR_SSL_HTTP_REQUEST" || !(raw instanceof Socket) || raw.destroyed) return;
    raw.end("HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nthis port speaks HTTPS: ask for https:// (--tls-cert is set)\n");
  });
}

/** Closes a connection with more than MAX_PIPELINED requests waiting for their answers: the app never sees them
 * (Node's parser goes on emitting the rest of a chunk's requests after the socket is destroyed). */
function boundPipelining(server: Server): void {
  const app = server.listeners("request") as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners("request");
  const waiting = new WeakMap<object, number>();
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    const n = (waiting.get(socket) ?? 0) + 1;
    if (n > MAX_PIPELINED || socket.destroyed) {
      socket.destroy();
      return;
    }
    waiting.set(socket, n);
    res.once("close", () => waiting.set(socket, (waiting.get(socket) ?? 1) - 1));
    for (const listener of app) listener.call(server, req, res);
  });
}
