// model: the shapes everything shares. What a client sends (ServiceInput), what the registry holds (ServiceEntry),
// their limits and the zod helpers that turn bad input into one InvalidError; entry.ts is the one module that
// knows an entry's fields. Imports only leaves: every part may import it.
export {
  CHECK_DECLARED_FIELDS,
  CHECK_MANAGED_FIELDS,
  DECLARED_FIELDS,
  REDACTED,
  HEALTH_STATUSES,
  MANAGED_FIELDS,
  LIMITS,
  addressSchema,
  checkKind,
  dnsLabelSchema,
  hasCheck,
  healthStatusSchema,
  inService,
  isDnsTag,
  normaliseAddress,
  parseOrThrow,
  serviceEntrySchema,
  serviceIdSchema,
  serviceInputSchema,
  tagSchema,
  toIssues,
  versionSchema,
  type CheckKind,
  type HealthStatus,
  type ParsedServiceInput,
  type ServiceEntry,
  type ServiceInput,
} from "./schema.js";
export { carryHealth, entryMatches, freezeEntry, newEntry, publicEntry, sameCheck, storedEntry, uncheckedEntry, withResults, withoutManaged, type EntrySource, type NewEntryContext } from "./entry.js";
export { MAX_SELECTORS, route, routingPolicySchema, selectorOf, unmatchedSelectors, versionMatcher, weightedSequence, type Routed, type RoutedGroup, type RoutingPolicy, type RoutingSelector } from "./routing.js";
