// Writes for another node's instance run on that node (docs/cluster-design.md): the request is proxied once, with
// the caller's credentials, and the owner's answer goes back as it is. A forwarded request is never forwarded again.
import type { Context } from "hono";
import type { Agent } from "undici";
import { ConflictError } from "../lib/errors.js";
import type { Owner } from "../registry/index.js";
import { loadUndici } from "../lib/undici.js";
import { errorBody } from "./errors.js";

export const FORWARDED_BY = "x-hd-forwarded-by";
export const OWNER = "x-hd-owner";
const TIMEOUT_MS = 2_000;

/** How this node connects to another's https:// API: the CAs it trusts and the certificate it shows. */
export interface PeerTls {
  ca?: (string | Buffer)[];
  cert?: string | Buffer;
  key?: string | Buffer;
}

/** The forwarding of one app: its own connection pool, made again when the TLS toward the other nodes changes
 * (a certificate reloaded on SIGHUP). */
export function ownerForwarder(tls: () => PeerTls | undefined): (c: Context, owner: Owner, self: string) => Promise<Response> {
  let dispatcher: Agent | undefined;
  let madeWith: PeerTls | undefined;
  return async (c, owner, self) => {
    const { Agent } = await loadUndici();
    const now = tls();
    if (dispatcher !== undefined && now !== madeWith) {
      void dispatcher.close();
      dispatcher = undefined;
    }
    madeWith = now;
    dispatcher ??= new Agent({ keepAliveTimeout: 10_000, connectTimeout: TIMEOUT_MS, ...(now !== undefined ? { connect: now } : {}) });
    return forwardToOwner(c, owner, self, dispatcher);
  };
}

async function forwardToOwner(c: Context, owner: Owner, self: string, dispatcher: Agent): Promise<Response> {
  const via = c.req.header(FORWARDED_BY);
  if (via !== undefined) {
    throw new ConflictError(`this node (${self}) does not own the instance: node ${owner.nodeId} does (request forwarded by ${via}); retry`, {
      reason: "not_owner",
      owner: owner.nodeId,
    });
  }
  const unreachable = (why: string) =>
    c.body(errorBody("owner_unreachable", `the instance belongs to node ${owner.nodeId}, which cannot be reached: ${why}; retry`, { owner: owner.nodeId }), 503, {
      "content-type": "application/json",
      "retry-after": "1",
      [OWNER]: owner.nodeId,
    });
  if (owner.apiUrl === undefined) return unreachable("its address is not known yet");
  const url = new URL(c.req.url);
  const headers: Record<string, string> = { [FORWARDED_BY]: self };
  for (const name of ["content-type", "authorization"]) {
    const value = c.req.header(name);
    if (value !== undefined) headers[name] = value;
  }
  const body = Buffer.from(await c.req.arrayBuffer());
  try {
    const { request } = await loadUndici();
    const res = await request(`${owner.apiUrl}${url.pathname}${url.search}`, {
      method: c.req.method as "PUT",
      headers,
      body: body.length > 0 ? body : null,
      dispatcher,
      headersTimeout: TIMEOUT_MS,
      bodyTimeout: TIMEOUT_MS,
    });
    const text = await res.body.text();
    const type = res.headers["content-type"];
    return new Response(text, {
      status: res.statusCode,
      headers: { "content-type": typeof type === "string" ? type : "application/json", [OWNER]: owner.nodeId },
    });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== "UND_ERR_HEADERS_TIMEOUT" && code !== "UND_ERR_BODY_TIMEOUT") return unreachable(`${owner.apiUrl}: ${(err as Error).message}`);
    // The request went out and no answer came: the owner may have applied it (a stalled process, say).
    const message = `the instance belongs to node ${owner.nodeId}, which took over ${TIMEOUT_MS / 1000} s to answer: the write may have been applied there; check before retrying`;
    return c.body(errorBody("owner_timeout", message, { owner: owner.nodeId }), 504, { "content-type": "application/json", [OWNER]: owner.nodeId });
  }
}
