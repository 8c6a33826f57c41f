// Queries over the registry: the schema, a compiled form that matches entries without allocating, the
// canonical cache key, and the seed's immutable query builder. Pure: no clock, no I/O.
import { z } from "zod";
import { dnsLabelSchema, healthStatusSchema, LIMITS, tagSchema, versionMatcher, type HealthStatus, type ServiceEntry } from "../model/index.js";

export { versionMatcher };

export const serviceQuerySchema = z.strictObject({
  name: dnsLabelSchema.optional(),
  /** An exact version or a semver range (`^2.1`, `>=1.2 <2`). */
  version: z.string().trim().min(1, "must not be empty").max(256, "must be at most 256 characters").optional(),
  /** The instance must carry every one of these tags. */
  tags: z.array(tagSchema).max(LIMITS.tags, `at most ${LIMITS.tags} tags`).optional(),
  healthStatus: healthStatusSchema.optional(),
  nodeId: dnsLabelSchema.optional(),
  /** Every key must be present with exactly this value. */
  metadata: z.record(z.string().min(1).max(LIMITS.metadataKeyLength), z.string().max(LIMITS.metadataValueLength)).optional(),
});
export type ServiceQuery = z.input<typeof serviceQuerySchema>;
export type ParsedServiceQuery = z.output<typeof serviceQuerySchema>;

export interface CompiledQuery {
  readonly name: string | undefined;
  readonly tags: readonly string[];
  readonly nodeId: string | undefined;
  readonly healthStatus: HealthStatus | undefined;
  readonly metadata: readonly (readonly [string, string])[];
  readonly version: ((version: string) => boolean) | undefined;
  /** Canonical form: equal queries have equal keys whatever the order of their tags or metadata. */
  readonly key: string;
}

export function compileQuery(q: ParsedServiceQuery): CompiledQuery {
  const tags = q.tags ? [...new Set(q.tags)].sort() : [];
  const metadata = q.metadata
    ? Object.entries(q.metadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    : [];
  const key = JSON.stringify([q.name ?? null, q.version ?? null, tags, q.healthStatus ?? null, q.nodeId ?? null, metadata]);
  return {
    name: q.name,
    tags,
    nodeId: q.nodeId,
    healthStatus: q.healthStatus,
    metadata,
    version: q.version === undefined ? undefined : versionMatcher(q.version),
    key,
  };
}

export function matches(entry: ServiceEntry, q: CompiledQuery): boolean {
  if (q.name !== undefined && entry.name !== q.name) return false;
  if (q.nodeId !== undefined && entry.nodeId !== q.nodeId) return false;
  if (q.healthStatus !== undefined) {
    if (entry.healthStatus !== q.healthStatus) return false;
    // In maintenance: never among the healthy (or degraded) instances, whatever its checks say.
    if (entry.maintenance !== undefined && q.healthStatus !== "unhealthy" && q.healthStatus !== "unknown") return false;
  }
  for (const tag of q.tags) if (!entry.tags.includes(tag)) return false;
  for (const [k, v] of q.metadata) if (entry.metadata[k] !== v) return false;
  if (q.version !== undefined && !q.version(entry.version)) return false;
  return true;
}

/** The stable order of results: by name, then id. */
export function compareEntries(a: ServiceEntry, b: ServiceEntry): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** The seed's immutable query builder: every `with...` returns a new query. */
export class ServiceQueryBuilder {
  private constructor(private readonly q: Readonly<ServiceQuery>) {}

  static empty(): ServiceQueryBuilder {
    return new ServiceQueryBuilder({});
  }

  withName(name: string): ServiceQueryBuilder {
    return new ServiceQueryBuilder({ ...this.q, name });
  }
  withVersion(version: string): ServiceQueryBuilder {
    return new ServiceQueryBuilder({ ...this.q, version });
  }
  /** Sets the tags an instance must all carry (replacing earlier ones, as the seed's with_tags does). */
  withTags(tags: readonly string[]): ServiceQueryBuilder {
    return new ServiceQueryBuilder({ ...this.q, tags: [...tags] });
  }
  withHealthStatus(healthStatus: HealthStatus): ServiceQueryBuilder {
    return new ServiceQueryBuilder({ ...this.q, healthStatus });
  }
  withNode(nodeId: string): ServiceQueryBuilder {
    return new ServiceQueryBuilder({ ...this.q, nodeId });
  }
  withMetadata(key: string, value: string): ServiceQueryBuilder {
    return new ServiceQueryBuilder({ ...this.q, metadata: { ...this.q.metadata, [key]: value } });
  }

  /** The plain query object, as `discoverServices` and the API take it. */
  toQuery(): ServiceQuery {
    return structuredClone(this.q) as ServiceQuery;
  }
  toJSON(): ServiceQuery {
    return this.toQuery();
  }
}

export function newServiceQuery(): ServiceQueryBuilder {
  return ServiceQueryBuilder.empty();
}

/** Accepts a plain query or a builder. */
export function toPlainQuery(query: ServiceQuery | ServiceQueryBuilder | undefined): ServiceQuery {
  if (query === undefined) return {};
  return query instanceof ServiceQueryBuilder ? query.toQuery() : query;
}
