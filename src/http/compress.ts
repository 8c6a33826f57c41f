// Compressed answers for large JSON bodies when the client asks (Accept-Encoding: zstd where this Node has it, br,
// gzip), never below a size (a small answer is sent as it is: compressing it costs more than it saves), never for
// the event stream (its route does not come here). No middleware: a GET middleware would cost every request (see
// app.ts). A body's compressed forms are kept beside it while it is among the last few compressed, so a cached
// answer is compressed once per change, not once per request; compression runs on libuv's thread pool.
import type { Context } from "hono";
import { promisify } from "node:util";
import zlib from "node:zlib";

export type Encoding = "zstd" | "br" | "gzip";

type Compress = (body: string) => Promise<Buffer>;
const gzip = promisify(zlib.gzip);
const brotli = promisify(zlib.brotliCompress);
// Fast levels: at the defaults (gzip 6, brotli 11) a 1.7 MB answer takes tens to hundreds of ms of a thread.
const COMPRESSORS: Partial<Record<Encoding, Compress>> = {
  gzip: (body) => gzip(body, { level: 5 }),
  br: (body) => brotli(body, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: Buffer.byteLength(body) } }),
};
// zstd: Node 22.15 and 23.8 on; not in Node 20.
const zstd = (zlib as unknown as { zstdCompress?: (buf: string, cb: (err: Error | null, out: Buffer) => void) => void }).zstdCompress;
if (typeof zstd === "function") COMPRESSORS.zstd = promisify(zstd) as Compress;

/** The encodings this process can send, best first. */
export const ENCODINGS = (["zstd", "br", "gzip"] as const).filter((e) => COMPRESSORS[e] !== undefined);

/** The best encoding an Accept-Encoding value allows (q=0 refuses one; `*` allows any), or undefined. */
export function negotiate(accept: string | undefined): Encoding | undefined {
  if (accept === undefined || accept === "") return undefined;
  const q = new Map<string, number>();
  for (const part of accept.toLowerCase().split(",")) {
    const [token, ...params] = part.trim().split(";");
    if (!token) continue;
    const weight = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    q.set(token.trim(), weight === undefined ? 1 : Number(weight));
  }
  let best: Encoding | undefined;
  let bestQ = 0;
  for (const e of ENCODINGS) {
    const weight = q.get(e) ?? q.get("*") ?? 0;
    if (weight > bestQ) {
      best = e;
      bestQ = weight;
    }
  }
  return best;
}

/** The request's Accept-Encoding, from node's own parsed headers when there (building a Headers costs). */
export function acceptEncoding(c: Context): string | undefined {
  const incoming = (c.env as { incoming?: { headers: Record<string, string | string[] | undefined> } } | undefined)?.incoming;
  if (incoming !== undefined) {
    const value = incoming.headers["accept-encoding"];
    return Array.isArray(value) ? value.join(",") : value;
  }
  return c.req.header("accept-encoding");
}

export class Compressor {
  /** Recently compressed bodies (the body string itself is the key: a cached answer is the same string). */
  private readonly recent = new Map<string, Map<Encoding, Promise<Buffer>>>();
  compressed = 0;

  constructor(
    /** Bodies shorter than this (bytes of UTF-16 length, close enough for JSON) are sent as they are; 0: never compress. */
    readonly minBytes: number,
    private readonly keep = 8,
  ) {}

  /** Whether a body of this length is compressed for a client that asks. */
  wants(length: number): boolean {
    return this.minBytes > 0 && length >= this.minBytes;
  }

  /** The encoding an answer of this length gets for this request, or undefined (small, or not asked for). */
  encodingFor(c: Context, length: number): Encoding | undefined {
    return this.wants(length) ? negotiate(acceptEncoding(c)) : undefined;
  }

  /** The answer: compressed when large and asked for, else as it is; `Vary` on every large one. */
  respond(c: Context, body: string, status: number, headers: Record<string, string>): Response | Promise<Response> {
    if (!this.wants(body.length)) return new Response(body, { status, headers });
    headers.vary = "accept-encoding";
    const encoding = negotiate(acceptEncoding(c));
    return this.respondAs(body, status, headers, encoding);
  }

  /** The answer in `encoding` (undefined: as it is); the caller has set Vary. */
  respondAs(body: string, status: number, headers: Record<string, string>, encoding: Encoding | undefined): Response | Promise<Response> {
    if (encoding === undefined) return new Response(body, { status, headers });
    return this.encode(body, encoding).then((bytes) => {
      headers["content-encoding"] = encoding;
      return new Response(bytes, { status, headers });
    });
  }

  private encode(body: string, encoding: Encoding): Promise<Buffer> {
    let forms = this.recent.get(body);
    if (forms === undefined) {
      forms = new Map();
      this.recent.set(body, forms);
      if (this.recent.size > this.keep) this.recent.delete(this.recent.keys().next().value!);
    }
    let bytes = forms.get(encoding);
    if (bytes === undefined) {
      this.compressed += 1;
      bytes = COMPRESSORS[encoding]!(body);
      forms.set(encoding, bytes);
      bytes.catch(() => forms.delete(encoding));
    }
    return bytes;
  }
}
