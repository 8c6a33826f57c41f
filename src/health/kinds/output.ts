// A check's output: what it saw, at most MAX_OUTPUT_BYTES (4 KB, as Consul's), and errors in one form.

export const MAX_OUTPUT_BYTES = 4096;

/** At most `limit` bytes of a body, as text; the rest is not read (the stream is destroyed). */
export async function readCapped(body: AsyncIterable<Buffer> & { destroy(): unknown }, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= limit) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, limit).toString("utf8");
}

/** An error as a check's output: its code (ECONNREFUSED, DEPTH_ZERO_SELF_SIGNED_CERT) and message. */
export function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string }).code ?? (err.cause as { code?: string } | undefined)?.code;
    return code ? `${code} ${err.message}` : err.message;
  }
  return String(err);
}

/** Text cut to `limit` bytes of UTF-8 (a cut character dropped). */
export function capText(text: string, limit: number): string {
  if (text.length <= limit / 4) return text;
  const bytes = Buffer.from(text, "utf8");
  return bytes.length <= limit ? text : bytes.subarray(0, limit).toString("utf8").replace(/\uFFFD$/, "");
}
