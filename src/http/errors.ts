// Error kinds to HTTP status codes, in one place, and the one JSON shape every error response has:
// {"error": {"code", "message", "issues"?, "items"?}}.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Logger } from "pino";
import { DiscoveryError, type ErrorKind } from "../lib/errors.js";

export const STATUS_OF_KIND: Record<ErrorKind, ContentfulStatusCode> = {
  invalid: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  unavailable: 503,
  internal: 500,
};

/** The inverse, for the client: an error body's code is authoritative, the status is the fallback. */
export function kindOfStatus(status: number): ErrorKind {
  for (const [kind, code] of Object.entries(STATUS_OF_KIND)) if (code === status) return kind as ErrorKind;
  return status >= 400 && status < 500 ? "invalid" : "internal";
}

/** An HTTP-level failure that is not a registry error (415, 413, 404 route): carries its own code. */
export class HttpError extends HTTPException {
  constructor(
    status: ContentfulStatusCode,
    readonly code: string,
    message: string,
  ) {
    super(status, { message });
  }
}

export function errorBody(code: string, message: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ error: { code, message, ...extra } });
}

export function renderError(err: Error, c: Context, logger: Logger): Response {
  const json = (status: ContentfulStatusCode, body: string) => c.body(body, status, { "content-type": "application/json" });
  if (err instanceof DiscoveryError) {
    const extra: Record<string, unknown> = {};
    if (err.issues) extra.issues = err.issues;
    if (err.details) Object.assign(extra, err.details);
    return json(STATUS_OF_KIND[err.kind], errorBody(err.kind, err.message, extra));
  }
  if (err instanceof HttpError) return json(err.status as ContentfulStatusCode, errorBody(err.code, err.message));
  if (err instanceof HTTPException) return json(err.status as ContentfulStatusCode, errorBody("http", err.message || "request failed"));
  if (clientWentAway(err, c)) {
    // Nobody is left to answer, and a client must not be able to fill the log at error level with stacks.
    logger.debug({ method: c.req.method, path: c.req.path, reason: err.message }, "client closed the connection before the request was read");
    return json(400, errorBody("aborted", "the request was not received whole"));
  }
  logger.error({ err, method: c.req.method, path: c.req.path }, "request failed");
  return json(500, errorBody("internal", "internal error; see the server log"));
}

/** The client closed the connection while its request was being read (Node's "aborted", ECONNRESET). */
function clientWentAway(err: Error, c: Context): boolean {
  return c.req.raw.signal.aborted || ((err as { code?: unknown }).code === "ECONNRESET" && err.message === "aborted");
}
