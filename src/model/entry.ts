// The one module that knows an entry's fields: what registering an input makes, whether two entries declare the
// same check, and whether an entry is what a file declares. A new field is added here and in the schemas.
import { isDeepStrictEqual } from "node:util";
import type { ParsedServiceInput, ServiceEntry } from "./schema.js";

/**
 * The registered entry is what registering the input would make (ignoring health, times and maintenance). An
 * input without nodeId matches any node: the registry fills in its own.
 */
export function entryMatches(entry: ServiceEntry, input: ParsedServiceInput): boolean {
  return (
    entry.id === input.id &&
    entry.name === input.name &&
    entry.version === input.version &&
    (input.nodeId === undefined || entry.nodeId === input.nodeId) &&
    entry.address === input.address &&
    entry.port === input.port &&
    entry.healthEndpoint === input.healthEndpoint &&
    isDeepStrictEqual({ ...entry.metadata }, { ...input.metadata }) &&
    isDeepStrictEqual([...entry.tags], [...input.tags]) &&
    entry.healthCheckInterval === input.healthCheckInterval &&
    entry.ttl === input.ttl &&
    (entry.tcpCheck === true) === (input.tcpCheck === true) &&
    entry.deregisterAfter === input.deregisterAfter &&
    entry.dnsTtl === input.dnsTtl
  );
}
