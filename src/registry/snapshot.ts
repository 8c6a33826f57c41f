// Snapshots (issue 23): a whole copy of what this node keeps (its instances as stored, maintenance included, and
// the routing policies), as one JSON document that carries its format, version and a sha256 over its canonical
// body, so a truncated, corrupted or foreign file is refused before anything changes.
//
//   {"format":"homelab-discovery/registry-snapshot","version":1,"createdAt":"...","nodeId":"...",
//    "sha256":"<hex of the body's bytes as written>","body":{"entries":[...],"routing":{...}}}
//
// The body is written by JSON.stringify, and JSON.stringify(JSON.parse(x)) === x for such text, so the check is
// the hash of the parsed body serialised again: no byte-level parsing of the file.
import { createHash } from "node:crypto";
import { z } from "zod";
import { InvalidError } from "../lib/errors.js";
import { serviceEntrySchema, toIssues, type ServiceEntry } from "../model/index.js";

export const SNAPSHOT_FORMAT = "homelab-discovery/registry-snapshot";
export const SNAPSHOT_VERSION = 1;

export interface SnapshotBody {
  readonly entries: readonly ServiceEntry[];
  readonly routing: Readonly<Record<string, { split: unknown; updatedAt?: unknown }>>;
}

/** What a restore did, as PUT /v1/snapshot answers. */
export interface RestoreResult {
  /** Instances the snapshot put in place. */
  restored: number;
  /** Instances removed because the snapshot does not hold them. */
  removed: number;
  /** Instances left to their source (services files, containers) or to their owner node, by id, with why. */
  skipped: { id: string; reason: string }[];
  routingPolicies: number;
}

/** The snapshot document as text: the header, then the body whose hash the header carries. */
export function encodeSnapshot(body: SnapshotBody, meta: { nodeId: string; createdAt: string }): string {
  const text = JSON.stringify({ entries: body.entries, routing: body.routing });
  const sha256 = createHash("sha256").update(text).digest("hex");
  return `{"format":${JSON.stringify(SNAPSHOT_FORMAT)},"version":${SNAPSHOT_VERSION},"createdAt":${JSON.stringify(meta.createdAt)},"nodeId":${JSON.stringify(meta.nodeId)},"count":${body.entries.length},"sha256":"${sha256}","body":${text}}\n`;
}

const headerSchema = z.object({
  format: z.literal(SNAPSHOT_FORMAT, { error: `not a homelab-discovery snapshot (format must be ${SNAPSHOT_FORMAT})` }),
  version: z.literal(SNAPSHOT_VERSION, { error: `snapshot version must be ${SNAPSHOT_VERSION}` }),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  count: z.number().int().nonnegative(),
  body: z.object({ entries: z.array(z.unknown()), routing: z.record(z.string(), z.object({ split: z.unknown(), updatedAt: z.unknown().optional() })) }),
});

/** Checks a snapshot document whole (format, version, checksum, every entry against the schema): an InvalidError says what is wrong. */
export function decodeSnapshot(text: string): SnapshotBody {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new InvalidError(`invalid snapshot: not JSON, or truncated (${(err as Error).message})`);
  }
  const header = headerSchema.safeParse(doc);
  if (!header.success) {
    const issues = toIssues(header.error);
    throw new InvalidError(`invalid snapshot: ${issues.map((i) => (i.path.length ? `${i.path.join(".")}: ${i.message}` : i.message)).join("; ")}`, issues);
  }
  const { sha256, count, body } = header.data;
  const actual = createHash("sha256").update(JSON.stringify(body)).digest("hex");
  if (actual !== sha256) throw new InvalidError(`invalid snapshot: checksum mismatch (the body hashes to ${actual}, the header says ${sha256}): the file was changed or damaged`);
  if (body.entries.length !== count) throw new InvalidError(`invalid snapshot: ${body.entries.length} entries where the header says ${count}`);
  const entries: ServiceEntry[] = [];
  const seen = new Set<string>();
  body.entries.forEach((raw, index) => {
    const parsed = serviceEntrySchema.safeParse(raw);
    if (!parsed.success) {
      const issue = toIssues(parsed.error)[0];
      throw new InvalidError(`invalid snapshot: entries.${index}${issue?.path.length ? `.${issue.path.join(".")}` : ""}: ${issue?.message ?? "not a service entry"}`);
    }
    if (seen.has(parsed.data.id)) throw new InvalidError(`invalid snapshot: entries.${index}: id ${parsed.data.id} appears twice`);
    seen.add(parsed.data.id);
    entries.push(parsed.data as ServiceEntry);
  });
  return { entries, routing: body.routing };
}
