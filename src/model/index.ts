// model: the shapes everything shares. What a client sends (ServiceInput), what the registry holds (ServiceEntry),
// their limits and the zod helpers that turn bad input into one InvalidError; entry.ts is the one module that
// knows an entry's fields. Imports only leaves: every part may import it.
export {
  DECLARED_FIELDS,
  HEALTH_STATUSES,
  MANAGED_FIELDS,
  LIMITS,
  addressSchema,
  checkKind,
  dnsLabelSchema,
  hasCheck,
  healthStatusSchema,
  inService,
  normaliseAddress,
  parseOrThrow,
  serviceEntrySchema,
  serviceIdSchema,
  serviceInputSchema,
  toIssues,
  versionSchema,
  type CheckKind,
  type HealthStatus,
  type ParsedServiceInput,
  type ServiceEntry,
  type ServiceInput,
} from "./schema.js";
export { carryHealth, entryMatches, freezeEntry, newEntry, sameCheck, storedEntry, withoutManaged, type NewEntryContext } from "./entry.js";
