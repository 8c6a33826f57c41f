// The container's HEALTHCHECK (Dockerfile): exit 0 when the API on HD_HTTP_LISTEN answers GET /v1/status, else 1.
// A wildcard address is asked on loopback. With HD_TLS_CERT it asks over HTTPS without verifying the certificate
// (it reaches its own server, by an address the certificate need not name); with HD_TLS_CLIENT_CA, which it holds
// no certificate for, a TCP connect is all it can see. Settings given as flags instead of HD_ variables are not
// seen here: the image's are variables.
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { connect } from "node:net";
import { listenSchema, ownHost } from "./lib/hostport.js";

const TIMEOUT_MS = 2_500;
// Read as the server reads it: an address it would refuse to start on is unhealthy here too.
const listen = listenSchema.safeParse(process.env.HD_HTTP_LISTEN || "127.0.0.1:8500");
if (!listen.success) process.exit(1);
const host = ownHost(listen.data.host);
const port = listen.data.port;
const done = (ok: boolean) => process.exit(ok ? 0 : 1);
setTimeout(() => done(false), TIMEOUT_MS).unref();

if (process.env.HD_TLS_CLIENT_CA) {
  const socket = connect({ host, port }, () => {
    socket.destroy();
    done(true);
  });
  socket.on("error", () => done(false));
} else {
  const request = process.env.HD_TLS_CERT ? httpsRequest : httpRequest;
  const req = request({ host, port, path: "/v1/status", rejectUnauthorized: false, timeout: TIMEOUT_MS }, (res) => {
    res.resume();
    done(res.statusCode === 200);
  });
  req.on("error", () => done(false));
  req.end();
}
